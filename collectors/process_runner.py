"""Collectors in a child process, so a busy event loop cannot starve them (and they cannot slow it).

Why: a collector thread inside loadgen shares the GIL with the engine. Every
``/proc`` read releases the GIL, and getting it back from a busy thread takes
up to the switch interval (5 ms), so a round that took 15 ms alone took about
3 s beside a spinning main thread on the development machine: the samples
came late and sparse exactly when the generator was working hardest. In a
child process the sources run at full speed; the parent only receives one
batch per interval in a relay thread and hands it to the sinks there.

The child is ``python -m loadgen.collectors.child`` (not multiprocessing: its
"spawn" re-imports the parent's ``__main__``, which breaks scripts without an
``if __name__ == "__main__"`` guard). It runs in its own session, so Ctrl-C
reaches only loadgen, which stops it; it exits by itself when its stdin
closes, so it cannot outlive a killed parent.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable

from loadgen.collectors.frames import read_frame, write_frame
from loadgen.collectors.runner import ErrorLog, Sink, SourceError, deliver
from loadgen.collectors.spec import QueueSpec, ServiceSpec

__all__ = ["ProcessCollectorRunner"]

log = logging.getLogger("loadgen.collectors")


class ProcessCollectorRunner:
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
    ) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0):
            raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s}")
        self.services = tuple(services)
        self.queues = tuple(queues)
        self.include_generator = include_generator
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._sinks: list[Sink] = list(sinks)
        self._errors = ErrorLog(clock, interval_s)
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.rounds = 0  #: batches received from the child

    def add_sink(self, sink: Sink) -> None:
        if self._thread is not None:
            raise RuntimeError("add sinks before starting the collector runner")
        self._sinks.append(sink)

    def start(self) -> None:
        """Start the child and the relay thread (once)."""
        if self._thread is not None:
            raise RuntimeError("the collector runner was already started")
        process = subprocess.Popen(
            [sys.executable, "-m", "loadgen.collectors.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdin is not None
        config = {
            "services": self.services,
            "queues": self.queues,
            "include_generator": self.include_generator,
            "parent_pid": os.getpid(),
            "interval_s": self.interval_s,
            "timeout_s": self.timeout_s,
        }
        self._process = process
        try:
            write_frame(process.stdin, config)
        except OSError:  # the child died at once; the relay thread reports it
            pass
        self._thread = threading.Thread(target=self._relay, name="loadgen-collectors-relay", daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """Stop the child and the relay thread within ``stop_timeout_s``; True if both ended in time."""
        self._stopping.set()
        process, thread = self._process, self._thread
        if process is None:
            return True
        deadline = time.monotonic() + self.stop_timeout_s
        if process.stdin is not None:
            try:
                process.stdin.close()  # the child's signal to stop
            except OSError:
                pass
        clean = True
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            clean = False
            log.warning(
                "the collector process (pid %d) did not stop within %.3g s; killing it",
                process.pid,
                self.stop_timeout_s,
            )
            process.kill()
            process.wait(1.0)
        if thread is not None:
            thread.join(max(0.1, deadline - time.monotonic()))
            clean = clean and not thread.is_alive()
        if process.stdout is not None and (thread is None or not thread.is_alive()):
            process.stdout.close()
        return clean

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        """The child's process id (None before start)."""
        return None if self._process is None else self._process.pid

    @property
    def errors(self) -> dict[str, SourceError]:
        """A snapshot of every source (and sink) that failed at least once, by name."""
        return self._errors.snapshot()

    def __enter__(self) -> ProcessCollectorRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _relay(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        while True:
            try:
                batch, errors = read_frame(process.stdout)
            except (EOFError, OSError, ValueError):
                break  # the child has stopped (or died)
            except Exception as exc:  # an undecodable frame: report once, stop relaying
                self._errors.failed(
                    "collector:process", f"the collector process sent a broken frame ({type(exc).__name__})."
                )
                break
            self.rounds += 1
            self._errors.replace_all(errors, keep=lambda name: name.startswith(("sink:", "collector:")))
            deliver(batch, self._sinks, self._errors)
        if not self._stopping.is_set():
            code = process.poll()
            self._errors.failed(
                "collector:process",
                f"the collector process exited unexpectedly (exit code {code}); see its stderr.",
            )
