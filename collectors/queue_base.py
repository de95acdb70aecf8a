"""What the queue sources share: a spec, a deadline per sample, a wall clock, and the period.

The period between two readings is measured on the monotonic clock, so a
wall-clock step (NTP) cannot turn a counter's increase into a wild rate.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar, Generic, TypedDict, TypeVar

from loadgen.collectors.base import Source
from loadgen.collectors.httpget import http_get
from loadgen.collectors.spec import QueueSpec

__all__ = ["HTTPQueueSource", "Period", "QueueOptions", "QueueSource", "per_second"]

SpecT = TypeVar("SpecT", bound=QueueSpec)


class QueueOptions(TypedDict, total=False):
    """What every queue source takes besides its spec (a subclass passes them on unread)."""

    timeout_s: float  #: bounds one sample's network round
    clock: Callable[[], float]  #: the wall clock that stamps samples


class Period:
    """Seconds since the previous reading: None at the first one."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: float | None = None

    def next(self) -> float | None:
        """Mark a reading now and return the time since the previous one."""
        now, last = time.monotonic(), self._last
        self._last = now
        return None if last is None else now - last


def per_second(delta: float | None, elapsed: float | None) -> float | None:
    """A counter's increase as a rate; None when either is unknown or the period is empty."""
    if delta is None or not elapsed or elapsed <= 0:
        return None
    return delta / elapsed


class QueueSource(Source, Generic[SpecT]):
    """A source for one queue, named ``queue:LABEL``; the spec's password is scrubbed from every failure."""

    #: The spec this source reads; build.queue_source picks the source by it.
    reads: ClassVar[type[QueueSpec]]

    def __init__(
        self,
        spec: SpecT,
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(f"queue:{spec.label}", secrets=[spec.password or ""])
        self.spec = spec
        self._timeout_s = timeout_s
        self._clock = clock


class HTTPQueueSource(QueueSource[SpecT]):
    """A queue source that reads an HTTP endpoint with the spec's credentials."""

    @property
    @abstractmethod
    def _what(self) -> str:
        """How failures name the endpoint, credentials masked."""

    def _get(self, url: str, accept: str) -> bytes:
        return http_get(
            url,
            username=self.spec.username,
            password=self.spec.password,
            timeout_s=self._timeout_s,
            accept=accept,
            what=self._what,
        )
