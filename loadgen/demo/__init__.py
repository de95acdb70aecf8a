"""A demo marketing-content platform for loadgen to run load against.

It lets load tests control the target's behaviour (latency, errors, stalls,
job backlog) and check the generator's request count against the target's.
"""

from loadgen.demo.app import RunningDemo, ThreadedDemo, make_app, serve, start
from loadgen.demo.config import CONTENT_TYPES, DemoConfig

__all__ = [
    "CONTENT_TYPES",
    "DemoConfig",
    "RunningDemo",
    "ThreadedDemo",
    "make_app",
    "serve",
    "start",
]
