"""What the collector tests share: a password to look for in messages, polling, ports, one sample."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from loadgen.collectors import Source

from loadgen.samples import QueueSample

#: A password the tests put in URLs; no message, repr or display may show it.
SECRET = "s3cr3t-Pa55"


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll until ``predicate()`` holds or ``timeout`` seconds pass (then one last look)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def free_port() -> int:
    """A loopback port nothing listens on (for a while): a free one, or one to find closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_queue_sample(source: Source) -> QueueSample:
    """The single queue sample a queue source returns per sample()."""
    [sample] = source.sample()
    assert isinstance(sample, QueueSample)
    return sample
