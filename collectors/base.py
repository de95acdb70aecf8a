"""What every collector source is: a named thing the runner asks for samples.

A source is used by one thread only (the runner's), so it may keep the state
it needs between samples (previous counters, an open socket) on itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from loadgen.redact import scrub
from loadgen.samples import QueueSample, ResourceSample

__all__ = ["Sample", "Source", "SourceFailure"]

#: One reading a collector hands to the sinks.
Sample = ResourceSample | QueueSample


class SourceFailure(Exception):
    """A source could not be read this time; the message is one sentence, already free of secrets."""


class Source(ABC):
    """A collector source: ``sample()`` returns this period's readings or raises SourceFailure."""

    #: "resource:LABEL" or "queue:LABEL"; unique within one runner.
    name: str

    def __init__(self, name: str, secrets: Iterable[str] = ()) -> None:
        self.name = name
        self._secrets = tuple(s for s in secrets if s)

    def sample(self) -> list[Sample]:
        """This period's readings (maybe none); every failure becomes a SourceFailure without secrets."""
        try:
            return self._sample()
        except SourceFailure as exc:
            raise SourceFailure(scrub(str(exc), self._secrets)) from None
        except Exception as exc:  # a source bug or a surprise from a library: report, never leak
            message = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            raise SourceFailure(f"{self.name} failed unexpectedly: {message}") from None

    @abstractmethod
    def _sample(self) -> list[Sample]:
        """Read the source once."""

    def close(self) -> None:
        """Release connections; called by the thread that sampled, after the last sample."""
