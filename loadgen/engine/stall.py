"""The event-loop stall monitor and the engine's watchdog.

The monitor is a loop callback every 10 ms that appends how late it fired to
``Recorder.stall_buf`` (100 appends a second, whatever the load): a late tick
means the loop was blocked, and every request in flight meanwhile was charged
that wait. The watchdog is a thread that reads the monitor's heartbeat. While
the loop is late it samples the main thread's stack, to name a call in the
scenario file that holds the loop; and when the run must end (a signal, the
schedule, the deadline) but the loop cannot react, it interrupts the main
thread by raising :class:`StopRun` in it, out of ``time.sleep`` or a busy loop.
"""

from __future__ import annotations

import asyncio
import linecache
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from time import perf_counter_ns
from types import FrameType
from typing import Any

__all__ = ["StopRun", "StallMonitor", "Watchdog", "TICK_S"]

TICK_S = 0.01
_TICK_NS = 10_000_000
_WATCH_S = 0.02  # the watchdog's period while the loop is late: two samples name a blocking call
#: Its period while the loop keeps time. Each wake-up takes the GIL from a busy loop: at 50 a
#: second the watchdog and the monitor cost the ad-hoc closed loop about 0.27 µs a request
#: (2.4 %, 90k req/s, 4 rounds interleaved); 10 a second still reacts to a signal or the
#: deadline well within the half second the engine allows the loop (_UNRESPONSIVE_NS).
_IDLE_WATCH_S = 0.1
#: The idle period is drawn from 0.5-1.5 times that: a fixed one can lock in phase with a
#: scenario that blocks periodically (sleep 100 ms per iteration) and never see it late.
_IDLE_JITTER = (0.5, 1.5)
#: The loop is late by this much: look at what the main thread runs.
_SAMPLE_AFTER_NS = 25_000_000
_FORCE_EVERY_NS = 1_000_000_000
#: Signal the watchdog sends the main thread to break a blocking call (EINTR, then our handler).
_FORCE_SIGNAL = signal.SIGUSR1
#: Frames in these directories are the generator's own work (a burst), not a scenario's blocking call.
_OWN_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep  # type: ignore[arg-type]
    for m in (sys.modules[__name__.rpartition(".")[0]], asyncio)
)


class StopRun(BaseException):
    """Raised in the main thread to end a scenario call that holds the loop; ``args[0]``: why.

    A ``BaseException``: a scenario's ``except Exception`` must not swallow it.
    """


class StallMonitor:
    """Appends the lateness (ns) of a 10 ms loop tick to ``recorder.stall_buf``; see the module docstring."""

    __slots__ = ("_loop", "_recorder", "_due", "_handle", "beat_ns")

    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: Any) -> None:
        self._loop = loop
        self._recorder = recorder
        self._handle: asyncio.TimerHandle | None = None
        self.beat_ns = self._due = perf_counter_ns()

    def start(self) -> None:
        now = perf_counter_ns()
        self.beat_ns = now
        self._due = now + _TICK_NS
        self._handle = self._loop.call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        now = perf_counter_ns()
        late = now - self._due
        # The recorder swaps its buffer every second: look it up each time.
        self._recorder.stall_buf.append(late if late > 0 else 0)
        self.beat_ns = now
        self._due = now + _TICK_NS
        self._handle = self._loop.call_later(TICK_S, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Watchdog:
    """A thread watching the monitor's heartbeat (see the module docstring).

    ``check(now_ns, stale_ns)`` is called from the thread every 100 ms (20 ms
    while the loop is late) with how
    long the loop has not ticked; it returns a reason to interrupt the main
    thread (``StopRun(reason)`` is raised there, at most once a second) or None.
    ``blocked`` maps a label of a scenario call seen holding the loop
    (``time.sleep(0.1) in U.slow (s.py:7)``) to how many samples saw it.
    """

    def __init__(self, monitor: StallMonitor, scenario_file: str, shown: str,
                 check: Callable[[int, int], str | None]) -> None:
        self._monitor = monitor
        self._file = scenario_file
        self._shown = shown
        self._check = check
        self.blocked: dict[str, int] = {}
        # The innermost frame the last sample saw, held: see _sample.
        self._last_leaf: FrameType | None = None
        self._armed: str | None = None
        self._forced_ns = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadgen-watchdog", daemon=True)
        self._main = threading.main_thread().ident
        self._old_handler: Any = None
        self._can_force = threading.current_thread() is threading.main_thread()

    def start(self) -> None:
        if self._can_force:
            self._old_handler = signal.signal(_FORCE_SIGNAL, self._on_force)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (idempotent); an interrupt already on its way is ignored from now on."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._armed = None
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._last_leaf = None  # a held frame keeps its locals alive
        if self._can_force:
            signal.signal(_FORCE_SIGNAL, self._old_handler if self._old_handler is not None else signal.SIG_DFL)

    def take_blocked(self) -> dict[str, int]:
        """The blocking calls seen since the last call (off the hot path: once an interval)."""
        b, self.blocked = self.blocked, {}
        return b

    # -- the thread ---------------------------------------------------------
    def _run(self) -> None:
        jitter = random.Random()
        period = _IDLE_WATCH_S
        while not self._stop.wait(period):
            now = perf_counter_ns()
            stale = now - self._monitor.beat_ns
            if stale > _SAMPLE_AFTER_NS:
                self._sample()
                period = _WATCH_S
            else:
                self._last_leaf = None
                period = _IDLE_WATCH_S * jitter.uniform(*_IDLE_JITTER)
            try:
                reason = self._check(now, stale)
            except Exception:  # the engine is tearing down; nothing to enforce
                reason = None
            if reason and now - self._forced_ns >= _FORCE_EVERY_NS:
                self._forced_ns = now
                self._force(reason)

    def _force(self, reason: str) -> None:
        if not self._can_force or self._main is None:
            return
        self._armed = reason
        try:
            signal.pthread_kill(self._main, _FORCE_SIGNAL)
        except (OSError, ValueError):
            pass

    def _on_force(self, signum: int, frame: Any) -> None:
        # Runs in the main thread, inside whatever holds the loop.
        reason, self._armed = self._armed, None
        if reason and not self._stop.is_set():
            raise StopRun(reason)

    def _sample(self) -> None:
        """Note a scenario call that holds the loop: the same innermost frame in two samples running.

        The frame itself is kept until the next sample, not its id: Python builds frame objects
        on demand and frees them when the call returns, so in a burst the next user's call to
        the same function got the freed one's address, and an id compared equal for two calls
        (seen: a burst of 3,000 users named ``await self.client.get(...)`` a blocking call)."""
        leaf = sys._current_frames().get(self._main)  # type: ignore[arg-type]
        if leaf is None:
            self._last_leaf = None
            return
        same, self._last_leaf = leaf is self._last_leaf, leaf
        if not same:
            return  # first look at this stall, or the loop is busy with one thing after another
        name = leaf.f_code.co_filename
        if name != self._file and name.startswith(_OWN_DIRS):
            return  # the generator's own work: a burst or CPU, not a blocking call
        f = leaf
        while f is not None and f.f_code.co_filename != self._file:
            f = f.f_back
        if f is None:
            return
        src = linecache.getline(self._file, f.f_lineno).strip()
        if len(src) > 60:
            src = src[:57] + "..."
        label = f"{src} in {f.f_code.co_qualname} ({self._shown}:{f.f_lineno})"
        self.blocked[label] = self.blocked.get(label, 0) + 1
