"""loadgen: an async HTTP load generator with honest latencies and a regression gate.

The public scenario API is what this module exports; everything else is private.
"""

from . import events
from ._version import __version__
from .control import InterruptTaskSet, RescheduleTask, StopUser
from .errors import LoadgenError, RunError, ScenarioError, UsageError
from .feeder import CSVFeeder
from .http.client import Client
from .http.response import Response
from .scenario import User, between, constant, task
from .shape import LoadShape
from .tags import tag
from .tasksets import SequentialTaskSet, TaskSet
from .waits import constant_pacing, constant_throughput

__all__ = [
    "__version__",
    "User",
    "task",
    "tag",
    "TaskSet",
    "SequentialTaskSet",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "StopUser",
    "RescheduleTask",
    "InterruptTaskSet",
    "LoadShape",
    "events",
    "CSVFeeder",
    "Client",
    "Response",
    "LoadgenError",
    "UsageError",
    "ScenarioError",
    "RunError",
]
