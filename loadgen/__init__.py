"""loadgen: an async HTTP load generator with honest latencies and a regression gate.

The public scenario API is what this module exports; everything else is private.
"""

from ._version import __version__
from .errors import LoadgenError, RunError, ScenarioError, UsageError
from .feeder import CSVFeeder
from .http.client import Client
from .http.response import Response
from .scenario import User, between, constant, task

__all__ = [
    "__version__",
    "User",
    "task",
    "between",
    "constant",
    "CSVFeeder",
    "Client",
    "Response",
    "LoadgenError",
    "UsageError",
    "ScenarioError",
    "RunError",
]
