"""Collectors in a child process, so a busy event loop cannot starve them (and they cannot slow it).

Why: a collector thread inside loadgen shares the GIL with the engine. Every
``/proc`` read releases the GIL, and getting it back from a busy thread takes
up to the switch interval (5 ms), so a round that took 15 ms alone took about
3 s beside a spinning main thread on the development machine: the samples
came late and sparse exactly when the generator was working hardest. In a
child process the sources run at full speed; the parent only receives one
batch per interval in a relay thread and hands it to the sinks there.

The child is ``python -m loadgen.collectors.child``, over loadgen's one
child-process channel (:mod:`loadgen.scaleout.channel`): it gets a
:class:`CollectorJob`, sends a :class:`Round` per interval, and stops when its
input closes, so it cannot outlive a killed parent. It runs in its own
session, so Ctrl-C reaches only loadgen, which stops it. Its log records may come
as :class:`~loadgen.diagnostics.Logged` messages: they are logged again here, where
the run captures them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from loadgen.collectors.base import Sample
from loadgen.collectors.runner import RunnerBase, Sink, SourceError, deliver
from loadgen.collectors.spec import QueueSpec, ServiceSpec
from loadgen.diagnostics import Diagnostics, Logged, relog
from loadgen.scaleout.channel import ChildProcess

__all__ = ["CollectorJob", "ProcessCollectorRunner", "Round"]

log = logging.getLogger("loadgen.collectors")


@dataclass(frozen=True, slots=True)
class CollectorJob:
    """What the collector process samples, and how often."""

    services: tuple[ServiceSpec, ...]
    queues: tuple[QueueSpec, ...]
    include_generator: bool
    parent_pid: int  #: loadgen's process: the "generator" service
    interval_s: float
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Round:
    """One interval's samples, and every source that has failed so far."""

    samples: list[Sample]
    errors: dict[str, SourceError]


class ProcessCollectorRunner(RunnerBase):
    """Same interface as CollectorRunner, built from specs; the sampling happens in a child process.

    ``sinks`` are called in this process, from the relay thread. ``stop()``
    asks the child to finish, waits at most ``stop_timeout_s`` in all, and
    kills the child (by its pid) if it has not exited by then.
    """

    def __init__(
        self,
        services: Iterable[ServiceSpec] = (),
        queues: Iterable[QueueSpec] = (),
        sinks: Iterable[Sink] = (),
        *,
        include_generator: bool = True,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        stop_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        diagnostics: Diagnostics | None = None,
    ) -> None:
        super().__init__(sinks, interval_s=interval_s, stop_timeout_s=stop_timeout_s, clock=clock,
                         diagnostics=diagnostics)
        self.services = tuple(services)
        self.queues = tuple(queues)
        self.include_generator = include_generator
        self.timeout_s = timeout_s
        self._stopping = threading.Event()
        self._ended = threading.Event()  # the child's output has ended
        self._child: ChildProcess | None = None

    @property
    def _started(self) -> bool:
        return self._child is not None

    def _begin(self) -> None:
        """The child, and the relay thread that reads it."""
        self._child = ChildProcess(
            "loadgen.collectors.child",
            name="loadgen-collectors-relay",
            on_message=self._on_round,
            on_end=self._on_end,
        )
        self._child.send(CollectorJob(self.services, self.queues, self.include_generator, os.getpid(),
                                      self.interval_s, self.timeout_s))  # a child that died at once: on_end says so

    def stop(self) -> bool:
        """Stop the child and the relay thread within ``stop_timeout_s``; True if both ended in time."""
        self._stopping.set()
        child = self._child
        if child is None:
            return True
        deadline = time.monotonic() + self.stop_timeout_s
        clean = child.stop(self.stop_timeout_s)  # closing its input is the child's signal to stop
        if not clean:
            log.warning(
                "the collector process (pid %d) did not stop within %.3g s; it was killed",
                child.pid,
                self.stop_timeout_s,
            )
        return child.join_reader(max(0.1, deadline - time.monotonic())) and clean

    @property
    def running(self) -> bool:
        return self._child is not None and not self._ended.is_set()

    @property
    def pid(self) -> int | None:
        """The child's process id (None before start)."""
        return None if self._child is None else self._child.pid

    def _on_round(self, message: object) -> None:
        if isinstance(message, Logged):
            relog(message)
            return
        if not isinstance(message, Round):
            self._errors.failed("collector:process", f"the collector process sent a {type(message).__name__}.")
            return
        self.rounds += 1
        self._errors.replace_all(message.errors, keep=lambda name: name.startswith(("sink:", "collector:")))
        deliver(message.samples, self._sinks, self._errors)

    def _on_end(self, exit_code: int | None, broken: Exception | None) -> None:
        if broken is not None:
            self._errors.failed(
                "collector:process", f"the collector process sent a broken frame ({type(broken).__name__})."
            )
        if not self._stopping.is_set():
            self._errors.failed(
                "collector:process",
                f"the collector process exited unexpectedly (exit code {exit_code}); see its stderr.",
            )
        self._ended.set()
