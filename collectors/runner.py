"""The collector thread: samples every source each interval and hands the batch to the sinks.

Runs beside the load, off the hot path, in one daemon thread. A failing
source (or sink) is logged once, counted, exposed in :attr:`CollectorRunner.errors`
(and, in a run, reported to its :class:`~loadgen.diagnostics.Diagnostics`), and
tried again next interval; it never stops the others.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Self

from loadgen.collectors.base import Sample, Source, SourceFailure
from loadgen.diagnostics import Diagnostic, Diagnostics

__all__ = ["BufferSink", "CollectorRunner", "ErrorLog", "RunnerBase", "Sink", "SourceError", "deliver"]

log = logging.getLogger("loadgen.collectors")

#: Receives each interval's samples, in the collector thread: keep it quick and thread-safe.
Sink = Callable[[list[Sample]], None]


@dataclass(frozen=True, slots=True)
class SourceError:
    """What went wrong with one source (or sink) during the run."""

    source: str  #: the source's name ("queue:content") or "sink:NAME"
    message: str  #: the first failure, one sentence
    count: int  #: failed samples so far
    first_ts: float  #: wall clock of the first failure
    last_ts: float  #: wall clock of the latest failure
    last_message: str  #: the latest failure (often the same as ``message``)
    failing: bool  #: whether the latest attempt failed (False once it recovered)

    def sentence(self) -> str:
        """The failure as the run's summary warns of it."""
        return f"collector {self.source} failed {self.count} time(s): {self.message}"


class BufferSink:
    """A thread-safe hand-off: the collector thread appends, any other thread ``drain()`` s.

    Bounded: past ``maxlen`` samples the oldest are dropped and counted in ``dropped``.
    """

    def __init__(self, maxlen: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._samples: deque[Sample] = deque(maxlen=maxlen)
        self.dropped = 0

    def __call__(self, batch: list[Sample]) -> None:
        with self._lock:
            maxlen = self._samples.maxlen or 0
            self.dropped += max(0, len(self._samples) + len(batch) - maxlen)
            self._samples.extend(batch)

    def drain(self) -> list[Sample]:
        """Every sample received since the last drain, oldest first."""
        with self._lock:
            out = list(self._samples)
            self._samples.clear()
        return out


class ErrorLog:
    """Thread-safe record of failing sources and sinks: the first failure is logged, repeats are
    counted; the table is kept as it stands in ``diagnostics`` (source ``collector``) when given."""

    def __init__(self, clock: Callable[[], float] = time.time, retry_s: float = 1.0,
                 diagnostics: Diagnostics | None = None) -> None:
        self._clock = clock
        self._retry_s = retry_s
        self._diagnostics = diagnostics
        self._lock = threading.Lock()
        self._errors: dict[str, SourceError] = {}

    def _report(self) -> None:
        """Under the lock, so the diagnostics never take an older table after a newer one."""
        if self._diagnostics is not None:
            self._diagnostics.replace(
                "collector", {name: Diagnostic("collector", e.sentence()) for name, e in self._errors.items()})

    def snapshot(self) -> dict[str, SourceError]:
        with self._lock:
            return dict(self._errors)

    def replace_all(self, errors: dict[str, SourceError], keep: Callable[[str], bool]) -> None:
        """Take ``errors`` (from a child process) while keeping the local entries ``keep`` selects."""
        with self._lock:
            local = {k: v for k, v in self._errors.items() if keep(k)}
            self._errors = {**errors, **local}
            self._report()

    def failed(self, name: str, message: str) -> None:
        now = self._clock()
        with self._lock:
            previous = self._errors.get(name)
            if previous is None:
                self._errors[name] = SourceError(name, message, 1, now, now, message, True)
            else:
                self._errors[name] = replace(
                    previous, count=previous.count + 1, last_ts=now, last_message=message, failing=True
                )
            self._report()
        if previous is None:
            log.warning(
                "collector %s: %s (retrying every %.3g s; repeats are counted, not logged)",
                name,
                message,
                self._retry_s,
            )

    def succeeded(self, name: str) -> None:
        with self._lock:
            previous = self._errors.get(name)
            if previous is None or not previous.failing:
                return
            self._errors[name] = replace(previous, failing=False)
        log.info("collector %s recovered after %d failed sample(s)", name, previous.count)


def deliver(batch: list[Sample], sinks: Iterable[Sink], errors: ErrorLog) -> None:
    """Hand ``batch`` to every sink (each gets its own list); a failing sink is recorded, never raised."""
    if not batch:
        return
    for sink in sinks:
        try:
            sink(list(batch))
        except Exception as exc:
            name = f"sink:{getattr(sink, '__qualname__', None) or type(sink).__qualname__}"
            errors.failed(name, f"{name} failed: {type(exc).__name__}: {exc}")


class RunnerBase(ABC):
    """What both collector runners (this thread's and the child process's) share: the
    sampling interval, the sinks, the failures, and being a context manager."""

    def __init__(self, sinks: Iterable[Sink], *, interval_s: float, stop_timeout_s: float,
                 clock: Callable[[], float], diagnostics: Diagnostics | None) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0):
            raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s}")
        self.interval_s = interval_s
        self.stop_timeout_s = stop_timeout_s
        self._sinks: list[Sink] = list(sinks)
        self._errors = ErrorLog(clock, interval_s, diagnostics)
        self.rounds = 0  #: sampling rounds done (or received)

    @property
    @abstractmethod
    def _started(self) -> bool: ...

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def stop(self) -> bool: ...

    def start(self) -> None:
        """Start sampling (once)."""
        if self._started:
            raise RuntimeError("the collector runner was already started")
        self._begin()

    def add_sink(self, sink: Sink) -> None:
        """Add a sink; only before start()."""
        if self._started:
            raise RuntimeError("add sinks before starting the collector runner")
        self._sinks.append(sink)

    @property
    def errors(self) -> dict[str, SourceError]:
        """A snapshot of every source (and sink) that failed at least once, by name."""
        return self._errors.snapshot()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CollectorRunner(RunnerBase):
    """Samples ``sources`` every ``interval_s`` seconds in a daemon thread and calls each sink with the batch.

    The first round runs at once (it primes the CPU baselines and counters;
    resource sources return nothing from it). ``stop()`` waits at most
    ``stop_timeout_s``: a source stuck in a network call past that is left to
    finish in the background (the thread is a daemon and exits after it).

    Beside a busy event loop in the same process the thread is starved of the
    GIL (each ``/proc`` read waits up to 5 ms to get it back); ``loadgen run``
    should use :class:`~loadgen.collectors.process_runner.ProcessCollectorRunner`.
    """

    def __init__(
        self,
        sources: Iterable[Source],
        sinks: Iterable[Sink] = (),
        *,
        interval_s: float = 1.0,
        stop_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        diagnostics: Diagnostics | None = None,
    ) -> None:
        super().__init__(sinks, interval_s=interval_s, stop_timeout_s=stop_timeout_s, clock=clock,
                         diagnostics=diagnostics)
        self.sources: tuple[Source, ...] = tuple(sources)
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"collector source names must be unique, got {names}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------

    @property
    def _started(self) -> bool:
        return self._thread is not None

    def _begin(self) -> None:
        """The sampling thread."""
        self._thread = threading.Thread(target=self._run, name="loadgen-collectors", daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """Ask the thread to stop and join it for at most ``stop_timeout_s``; True if it ended."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(self.stop_timeout_s)
        if thread.is_alive():
            log.warning(
                "the collector thread did not stop within %.3g s; leaving it to finish", self.stop_timeout_s
            )
            return False
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- sampling ---------------------------------------------------------------

    def sample_once(self) -> list[Sample]:
        """One round in the caller's thread (for a runner that was not started): every source, then the sinks."""
        if self.running:
            raise RuntimeError("sample_once() is for a runner that is not running")
        batch = self._round()
        self._deliver(batch)
        return batch

    def close(self) -> None:
        """Close the sources (after sample_once() use; the thread does this itself when it stops)."""
        for source in self.sources:
            self._close(source)

    def _run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                self._deliver(self._round())
                next_at += self.interval_s
                now = time.monotonic()
                if next_at <= now:  # a slow round: skip the ticks it overran instead of bursting
                    next_at += math.ceil((now - next_at) / self.interval_s + 1e-9) * self.interval_s
                self._stop.wait(next_at - now)
        except BaseException:  # a bug in the runner itself: say so, never take the process down
            log.exception("the collector thread failed")
        finally:
            self.close()

    def _round(self) -> list[Sample]:
        batch: list[Sample] = []
        for source in self.sources:
            if self._stop.is_set() and self._thread is not None:
                break
            try:
                samples = source.sample()
            except SourceFailure as exc:
                self._errors.failed(source.name, str(exc))
                continue
            except Exception as exc:  # Source.sample wraps everything; this guards foreign Source classes
                self._errors.failed(source.name, f"{source.name} failed unexpectedly: {type(exc).__name__}")
                continue
            self._errors.succeeded(source.name)
            batch.extend(samples)
        self.rounds += 1
        return batch

    def _deliver(self, batch: list[Sample]) -> None:
        deliver(batch, self._sinks, self._errors)

    @staticmethod
    def _close(source: Source) -> None:
        try:
            source.close()
        except Exception:  # closing is best effort
            log.debug("closing collector %s failed", source.name, exc_info=True)
