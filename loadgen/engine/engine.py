"""The engine: runs users against a target in the open or the closed model.

Open model: a scheduler callback walks the intended start times of
:func:`loadgen.engine.workload.arrival_times` and hands each arrival, at its time, to
an idle user of a pool bounded by ``max_inflight``. An arrival that finds the
pool busy is *dropped* and counted, never queued: a queue would delay it and
the delay would vanish from the numbers. Users are coroutines that live for
the whole run (one task per request starves completions under overload, as
measured in issue 2), so past capacity the engine keeps its bound and counts.

Closed model: ``users`` coroutines loop over their tasks with think time; a
tick adds (or retires) users to follow the target user count (the stages, or a
scenario's :class:`~loadgen.shape.LoadShape`). A user that raises ``StopUser``
ends and is not replaced; the other control exceptions are no failures.

A scenario's hook listeners (:mod:`loadgen.engine.hooks`) are installed for the
run: ``test_start`` fires before the first user starts, ``test_stop`` after the
last one stopped; users get a client that reports to ``events.request`` only
when that hook has listeners.

Every second :meth:`Recorder.snapshot` closes an interval and the engine
hands the snapshot to its sinks (the live display, later the store and the
metrics endpoint).

The control API steers a run through :attr:`Engine.steering` (:mod:`.steering`):
a change is applied on the loop; a new rate replaces the rest of the open
model's schedule (the arrival process goes on, the planned end stays), a new
user count the closed model's, and the stages that ran become the run's shape.

A run always ends: a stall monitor and a watchdog thread (:mod:`loadgen.engine.stall`)
stop it when the schedule, a signal or the deadline says so even while a
scenario blocks the loop; users still busy when the graceful stop is over are
cancelled (their requests are recorded as ``cutoff``) and those that ignore the
cancellation are abandoned, so ``run()`` returns within run time + graceful
stop + a few seconds whatever the scenario or the target does.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import math
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from . import histogram as hdr
from ..config import MAX_DURATION_S, RunConfig
from ..control import StopUser, TaskControl
from ..diagnostics import MEASUREMENT, Diagnostics, WarningList
from ..errors import EXIT_RUN, UsageError
from ..http.client import Client, FixedRequest
from ..http.settings import http_session
from ..http.limits import Limits
from .recorder import IntervalSnapshot, Recorder
from ..scenario import Scenario, UserTasks
from ..shape import ShapeDriver
from ..sinks import IntervalSink
from ..tasksets import leave_sets
from .hooks import RunHooks
from .mix import UserMix
from .stall import StallMonitor, StopRun, Watchdog
from .steering import STOP_REASON, Action, Change, Refused, Steer, Steering, fixed_load
from .workload import Phase, Shape, arrival_times, count_until, shape_of

__all__ = ["Engine", "RunResult", "AdHocRequest"]

_INTERVAL_S = 1.0
_USER_TICK_S = 0.05
_TICK_S = 0.001  # the open-model scheduler's finest wake-up
#: An interval is "saturated" when the generator, not the target, limits it.
SATURATED_CPU_PERCENT = 95.0
SATURATED_LAG_MS = 10.0
SATURATED_BUSY_LAG_MS = 2.0
#: An interval is "stalled" when the loop was blocked this long at least once: every request
#: in flight then was charged up to that much of the generator's own delay. 30 ms is 30 times
#: uvloop's timer resolution and well above OS scheduling noise on a busy machine, and it is
#: the order of what a burst of a few thousand requests or one ``time.sleep`` costs the loop.
STALL_MS = 30.0
#: After the graceful stop, how long cancelled users get to finish (twice: a cancelled user's
#: on_stop may start a request of its own), before a user that ignores cancellation is abandoned.
_CANCEL_WAIT_S = 1.0
#: The open model starts users before the clock; it waits at most this for their connects and
#: on_start (a target that never accepts must not delay the start by the connect timeout).
_PREALLOCATE_WAIT_S = 2.0
#: The watchdog interrupts the main thread when the loop has not ticked for this long while the
#: run should be ending (a signal, the schedule's end, the graceful stop's end).
_UNRESPONSIVE_NS = 500_000_000
#: Last resort (CLI only): a scenario that swallows every interruption and holds the loop this
#: long past the graceful stop ends the process, without a summary, rather than never.
_GIVE_UP_NS = 10_000_000_000
_SIGNAL_EXITS = (SystemExit, KeyboardInterrupt, StopRun)
#: Likely causes of a stalled interval (IntervalSnapshot.stall_cause); a blocking call is named.
_CAUSE_BLOCKING = "a blocking call in the scenario"
_CAUSE_BURST = "a burst: many users sent in the same instant, more than the loop could send in time"
_CAUSE_CPU = "CPU: the generator's core was saturated"
_CAUSE_OWN = "the generator's own work once a second (interval snapshot and results sinks)"
_YIELD_EVERY = 64  # closed users without think time yield to the loop once every this many iterations


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (another libc, another OS)."""
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


#: Every second the loop allocates interval histograms (16-224 KiB) that the store's writer
#: thread and the /metrics server free, and glibc keeps the holes: a soak with both grew
#: 3.45 MB/min at 3,000 req/s with no Python object growing (tracemalloc flat). Trimming
#: every 10 intervals took it to about 1.2 MB/min, for 0.14 ms (median; 0.45 max) a call;
#: between trims the heap still swung by 10 MB (73-84 MB RSS within 8 minutes at 2,860/s),
#: so an hour's RSS read at one instant said more about the trim's phase than about growth.
#: Trimming every interval costs the loop at most 0.05 % of its time.
_malloc_trim = _find_malloc_trim()


def _quiet_abandoned(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The closed loop's handler: users abandoned for ignoring cancellation were warned about."""
    if "Task was destroyed" not in str(context.get("message", "")):
        loop.default_exception_handler(context)


@dataclass(frozen=True)
class AdHocRequest:
    """The single request of ad-hoc mode (``--url``)."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class RunResult:
    """What a finished run hands to the summary."""

    recorder: Recorder
    config: RunConfig
    shape: Shape
    model: str
    started_at: float  # wall clock, seconds since the epoch
    duration_s: float
    schedule_s: float  # time arrivals (or users) were active, for achieved rates
    interrupted: bool
    users_max: int
    broke_at: dict[str, Any] | None
    exceptions: dict[str, int]
    warnings: list[str]
    #: Why the run ended when it was not its schedule: "signal", "abort-on-fail", "stress step broke",
    #: "scenario raised SystemExit at FILE:LINE", "deadline"; None when the schedule ended it.
    stop_reason: str | None = None
    #: What the control API changed, in order (the stages that ran are then ``shape``).
    control: tuple[Change, ...] = ()


class _Slot:
    """An open-model user waiting for its next arrival."""

    __slots__ = ("user", "fut")

    def __init__(self, user: Any) -> None:
        self.user = user
        self.fut: asyncio.Future[int] | None = None


class _FixedUser:
    """The user of ad-hoc mode: one prebuilt request per iteration."""

    __slots__ = ("client", "index")

    def __init__(self, client: Client, index: int) -> None:
        self.client = client
        self.index = index


class Engine:
    """Runs one load test; see the module docstring."""

    def __init__(
        self,
        config: RunConfig,
        *,
        scenario: Scenario | None = None,
        adhoc: AdHocRequest | None = None,
        sinks: list[IntervalSink] | None = None,
        handle_signals: bool = True,
        last_resort: bool | None = None,
        part: tuple[int, int] = (0, 1),
        start_gate: Callable[[], Awaitable[None]] | None = None,
        diagnostics: Diagnostics | None = None,
        shared_control: bool = False,
    ) -> None:
        """``part=(i, n)`` runs share ``i`` of ``n`` of the load (worker processes and
        shards): every n-th arrival from the i-th, and the matching share of users, so
        the parts add up exactly to the whole. ``start_gate`` is awaited once users are
        ready and before the clock starts: the parts of a run start together.
        ``diagnostics``: the run's, where the engine's warnings and the scenario's
        exceptions go (the session's; an engine of its own without one).
        ``shared_control``: a coordinator steers every part of the run together (a worker);
        otherwise a part (a shard) takes no control, which would change its share alone."""
        if (scenario is None) == (adhoc is None):
            raise ValueError("exactly one of scenario and adhoc")
        if not 0 <= part[0] < part[1]:
            raise ValueError(f"part {part[0]} of {part[1]}")
        self.part = part
        self._start_gate = start_gate
        self.config = config
        self.scenario = scenario
        self.adhoc = adhoc
        self.sinks = list(sinks or [])
        self.handle_signals = handle_signals
        # The watchdog's os._exit for a scenario that ignores every interruption: only where
        # this process is the run's own (the CLI, or a worker, whose coordinator counts it dead).
        self.last_resort = handle_signals if last_resort is None else last_resort
        self.recorder = Recorder(max_names=config.max_names)
        limits = Limits(max_head_bytes=config.max_head_bytes, max_body_bytes=config.max_body_bytes,
                        max_decoded_bytes=config.max_decoded_bytes)
        self.session = http_session(config, self.recorder, limits)
        self.stop_reason: str | None = None
        self.shape = self._shape()
        self.model = config.model
        self._max_inflight = max(1, self._share(config.max_inflight))
        self.users = 0  # live users
        self.inflight = 0  # users busy with an iteration
        self.users_max = 0
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.warnings = WarningList(self.diagnostics)  # what sinks read and append to
        self._driver: ShapeDriver | None = None  # a scenario's LoadShape, driving the closed model
        self._gone = 0  # closed-model users that raised StopUser: they are not replaced
        if scenario is not None:
            self.scenario = scenario = self._prepare(scenario)
        self.broke_at: dict[str, Any] | None = None
        loadshape = self._driver.name if self._driver is not None else None
        self._steering = Steering(self.model, self.shape.stages, end_s=self._planned_s(),
                                  spawn_rate=config.spawn_rate, fixed=fixed_load(config, loadshape))
        self._steer = Steer(
            self._steering, clock=self._clock, running=lambda: self._t0 > 0 and not self._stopping,
            post=self._post, apply=self._apply_change, users_now=lambda: self.users,
            refuse=None if part[1] == 1 or shared_control else
            "this is one shard (--shard) of a run split across hosts: control would change its part alone")
        self._seed = config.seed
        self._rng = random.Random(config.seed)
        self._user_count = 0
        self._stopping = False
        self._interrupted = False
        self._done: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sleeping: set[asyncio.Task[Any]] = set()
        self._retire = 0
        self._t0 = 0
        self._schedule_end_ns = 0
        self._phase_i = 0
        self._phase_acc: dict[str, Any] = {}
        self._fixed: FixedRequest | None = None
        self._idle: list[_Slot] = []
        # Timer handles exist once the run is under way; a signal may come before.
        self._tick_handle: asyncio.Handle | None = None
        self._user_handle: asyncio.Handle | None = None
        self._end_handle: asyncio.Handle | None = None
        self._interval_handle: asyncio.Handle | None = None
        self._host = config.host or (scenario.host if scenario else None)
        self._mix = UserMix(scenario, self._rng, self._share, self.model == "closed") if scenario else None
        self._hooks = (RunHooks(scenario, config, self._host, self._exception, self.diagnostics.warn)
                       if scenario else None)
        self._scenario_file = str(Path(scenario.path).resolve()) if scenario else ""
        self._monitor: StallMonitor | None = None
        self._watchdog: Watchdog | None = None
        self._signal_ns = 0  # a signal the loop has not handled yet, since (perf_counter_ns)
        self._overdue = False
        self._finished = False
        self._abandoned = 0  # users that ignored cancellation, left behind at the end
        self._stall_causes: dict[str, int] = {}  # cause -> stalled intervals
        self._own_work_ns = 0  # how long the last interval's snapshot and sinks held the loop

    # -- shape ------------------------------------------------------------
    def _share(self, total: int) -> int:
        """This part's share of ``total`` (users, slots): the parts' shares sum to ``total``."""
        i, n = self.part
        return total // n + (1 if i < total % n else 0)

    def _shape(self) -> Shape:
        return shape_of(self.config)

    def _prepare(self, scenario: Scenario) -> Scenario:
        """The tasks the tags select (classes left with none are dropped, with a warning); a LoadShape."""
        scenario, dropped = scenario.prepare(self.config)
        for text in dropped:
            self.diagnostics.warn(text)
        if scenario.shape is not None:
            try:
                self._driver = ShapeDriver(scenario.shape())
            except Exception as exc:
                raise UsageError(f"{scenario.path}: {scenario.shape.__name__}() raised {type(exc).__name__}: "
                                 f"{exc}") from None
        return scenario

    def _planned_s(self) -> float:
        """How long the schedule runs: a LoadShape's run ends when its tick() says, or at a --run-time given."""
        if self._driver is None:
            return self.shape.duration_s
        return self.config.run_time_s if self.config.run_time_given else MAX_DURATION_S

    def _level(self, t: float) -> float | None:
        """The closed model's user count at ``t`` s; None once a LoadShape ended the run."""
        if self._driver is None:
            return self._steering.level(t)
        try:
            return self._driver.level(t)
        except Exception as exc:
            self._exception(exc)
            if self.stop_reason is None:
                self.stop_reason = f"{self._driver.name}.tick() raised {type(exc).__name__}"
            return None

    # -- running ------------------------------------------------------------
    def run(self) -> RunResult:
        """Run to the end on a new uvloop event loop (blocking)."""
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency
            loop = asyncio.new_event_loop()
        # Not asyncio.run or Runner: at exit they cancel every task left and wait for it
        # without a bound, so a scenario that swallows CancelledError would keep the process
        # alive for ever. run_async gives each user a bounded chance; the rest are abandoned.
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(self.run_async())
        finally:
            try:
                if not self._abandoned:  # running the loop again would resume them
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.set_exception_handler(_quiet_abandoned)
                asyncio.set_event_loop(None)
                loop.close()

    async def run_async(self) -> RunResult:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = asyncio.Event()
        old_handlers = self._install_signals()
        try:
            return await self._run(loop)
        finally:
            if self._hooks is not None:
                self._hooks.close()
            self._finished = True
            if self._watchdog is not None:
                self._watchdog.stop()
            for sig, old in old_handlers.items():
                signal.signal(sig, old)

    def _install_signals(self) -> dict[int, Any]:
        """SIGINT/SIGTERM handlers at the Python level, not the loop's: they run even while a
        scenario blocks the loop, and tell the watchdog to break the blocking call."""
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._py_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _py_signal(self, signum: int, frame: Any) -> None:
        if not self._signal_ns:
            self._signal_ns = perf_counter_ns()
        self._loop.call_soon_threadsafe(self._on_signal)

    async def _run(self, loop: asyncio.AbstractEventLoop) -> RunResult:
        if self.scenario is not None:
            for ts in self.scenario.task_sets:
                wt = ts.user_class.wait_time
                if hasattr(wt, "seed"):
                    wt.seed(self._seed)  # type: ignore[union-attr]
        else:
            a = self.adhoc
            assert a is not None
            self._fixed = FixedRequest(self.recorder, a.url, a.method, a.headers, a.body)
        self.session.start()
        if self._hooks is not None:
            await self._hooks.start(self._done)
        if self.model == "open":
            await self._preallocate()
        if self._start_gate is not None:
            await self._start_gate()
        started_at = time.time()
        self._t0 = t0 = perf_counter_ns()
        self.recorder.start(t0)
        self._schedule_end_ns = t0 + int(self._planned_s() * 1e9)
        if self._driver is not None:
            self._driver.shape.reset_time()
        self._interval_handle = loop.call_later(_INTERVAL_S, self._interval, 1)
        self._monitor = StallMonitor(loop, self.recorder)
        self._monitor.start()
        self._watchdog = Watchdog(
            self._monitor, self._scenario_file, self.scenario.path if self.scenario else "", self._watch
        )
        self._watchdog.start()
        if self.model == "open":
            self._arrivals = arrival_times(
                self.shape.stages, poisson=self.config.arrival == "poisson", seed=self._seed
            )
            i, n = self.part
            if n > 1:
                # Every part walks the same schedule (same seed) and keeps every n-th
                # arrival: the parts together are exactly the single-process schedule.
                self._arrivals = itertools.islice(self._arrivals, i, None, n)
            self._next_ns = self._advance()
            self._tick_handle = loop.call_soon(self._tick)
        else:
            self._user_tick()
        # The open model ends when its schedule is spent (see _tick), so that arrivals
        # due in the last millisecond are not cut off by a timer racing the scheduler.
        self._end_handle = None if self.model == "open" else loop.call_later(self._planned_s(), self.stop)
        try:
            await self._done.wait()
            await self._drain()
            if self._hooks is not None:
                await self._hooks.stop(max(1.0, self.config.graceful_stop_s))
        finally:
            self._finished = True  # users left now are abandoned; the watchdog stands down
            self._monitor.stop()
            self._watchdog.stop()
            for h in (self._interval_handle, self._end_handle, self._tick_handle, self._user_handle):
                if h is not None:
                    h.cancel()
        t_end = perf_counter_ns()
        snap = self.recorder.snapshot(t_end)  # the last, partial interval
        self._emit(snap)
        self.session.close()
        schedule_ns = min(self._stop_ns, self._schedule_end_ns) - t0
        if self._driver is not None:
            self.shape = Shape(tuple(self._driver.stages))  # what the LoadShape asked for, for the summary
        elif self._steering.steered:  # what ran: the stages up to each change, then the change
            self.shape = Shape(self._steering.applied(max(schedule_ns, 0) / 1e9), self.shape.phases)
        self._warn_at_end()
        return RunResult(
            recorder=self.recorder,
            config=self.config,
            shape=self.shape,
            model=self.model,
            started_at=started_at,
            duration_s=(t_end - t0) / 1e9,
            schedule_s=max(schedule_ns, 1) / 1e9,
            interrupted=self._interrupted,
            users_max=self.users_max,
            broke_at=self.broke_at,
            exceptions=self.diagnostics.counts("scenario"),
            warnings=self.diagnostics.texts(*MEASUREMENT),
            stop_reason=self.stop_reason,
            control=self._steering.changes,
        )

    _stop_ns = 1 << 62

    # -- steering (the control API) -----------------------------------------------
    @property
    def steering(self) -> Steer:
        """Stop the run, or change its rate (open model) or user count (closed), from any thread."""
        return self._steer

    def _clock(self) -> float | None:
        """Seconds into the run (from any thread); None before it started."""
        return (perf_counter_ns() - self._t0) / 1e9 if self._t0 else None

    def _post(self, fn: Callable[[], None]) -> None:
        if not self._t0:
            raise Refused("the run has not started yet")
        if self._finished:
            raise Refused("the run is over")
        self._loop.call_soon_threadsafe(fn)  # RuntimeError once the loop has closed

    def _apply_change(self, action: Action, value: float | None, at_s: float | None = None) -> Change:
        """On the loop: apply a control change now (``at_s``: as of then, a worker's: see
        _rearrive); Refused when it does not apply."""
        if self._stopping or self._finished:
            raise Refused("the run is already stopping")
        t = (perf_counter_ns() - self._t0) / 1e9 if at_s is None else at_s
        first = None  # the number of the next constant arrival not yet started, in the schedule so far
        if action == "rate" and self.model == "open" and self._next_ns and self.config.arrival != "poisson":
            first = round(count_until(self._steering.stages, (self._next_ns - self._t0) / 1e9))
        change = self._steering.change(action, value, t)
        if action == "stop":
            self.stop(STOP_REASON)
            return change
        self.shape = Shape(self._steering.stages, self.shape.phases)  # target rates follow the change
        if self.model == "open":
            self._rearrive(change.at_s, first)
        else:
            if self._user_handle is not None:
                self._user_handle.cancel()
            self._user_tick()  # the level moves now, not at the next tick
        return change

    def _rearrive(self, t: float, first: int | None = None) -> None:
        """The open model after a change at ``t`` s: arrivals due by then are still dispatched,
        the rest come from the changed schedule (same arrival process, same end).

        A worker applies a change at the whole run's time of it, which its own clock may have
        passed by a fraction of a millisecond: the constant arrivals it started since then keep
        their numbers (``first``, the next one's), and the changed schedule goes on after them,
        so the workers' shares still add up exactly to the stages the run records (at 100,000/s
        applying each change when its message came, as before, left 32-135 of 140,000 out)."""
        due: list[float] = []
        until = self._t0 + int(t * 1e9)
        nxt = self._next_ns
        while nxt and nxt <= until:
            due.append((nxt - self._t0) / 1e9)
            nxt = self._advance()
        c = self.config
        tail = self._steering.arrivals(t, poisson=c.arrival == "poisson", seed=self._seed, part=self.part,
                                       first=first)
        self._arrivals = itertools.chain(due, tail)
        for h in (self._tick_handle, self._end_handle):
            if h is not None:
                h.cancel()
        self._end_handle = None
        self._next_ns = self._advance()
        self._tick_handle = self._loop.call_soon(self._tick)

    @property
    def stopping(self) -> bool:
        """True once stop() was called (schedule spent, Ctrl-C, a broken stress step, an abort)."""
        return self._stopping

    def stop(self, reason: str | None = None) -> None:
        """Stop new arrivals and iterations; in-flight work may finish (graceful stop).
        ``reason`` (a sink's: ``abort-on-fail``) becomes the run's stop reason unless one is set."""
        if self._stopping:
            return
        if reason is not None and self.stop_reason is None:
            self.stop_reason = reason
        self._stopping = True
        self._stop_ns = perf_counter_ns()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        if self.model == "open":
            for slot in self._idle:
                if slot.fut is not None and not slot.fut.done():
                    slot.fut.set_result(-1)
            self._idle.clear()
        for t in list(self._sleeping):
            t.cancel()  # users in think time have nothing in flight
        assert self._done is not None
        self._done.set()

    def _on_signal(self) -> None:
        self._signal_ns = 0
        if self.stop_reason is None:
            self.stop_reason = "signal"
        if self._stopping:
            self.cancel_all()  # a second Ctrl-C: stop now
            return
        self.interrupt()

    def interrupt(self) -> None:
        """Stop gracefully, marking the run interrupted (Ctrl-C, or a coordinator's stop)."""
        if self.stop_reason is None and not self._stopping:
            self.stop_reason = "signal"
        self._interrupted = True
        self.stop()

    def stop_threadsafe(self, *, now: bool = False) -> None:
        """Stop from another thread (a worker's commands): gracefully, or at once with ``now``.

        Like a signal: the watchdog breaks a scenario that holds the loop if the
        loop does not take the call within half a second.
        """
        if not self._signal_ns:
            self._signal_ns = perf_counter_ns()
        self._loop.call_soon_threadsafe(self._stop_requested, now)

    def _stop_requested(self, now: bool) -> None:
        self._signal_ns = 0
        if now:
            self.cancel_all()
        else:
            self.interrupt()

    def _deadline_stop(self) -> None:
        """The watchdog's: the schedule's end timer did not fire on time (a blocked loop)."""
        if self.model == "open" and not self._stopping and self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick()  # every arrival due is dispatched or dropped first: the count stays exact
        if not self._stopping:
            if self.stop_reason is None:
                self.stop_reason = "deadline"
            self.stop()

    def _watch(self, now: int, stale: int) -> str | None:
        """Called by the watchdog thread every 100 ms (20 ms while the loop is late): a reason to break the main thread out of
        what holds the loop (``stale`` ns without a tick), or None. Reads state, queues calls."""
        if self._finished:
            return None
        held = stale > _UNRESPONSIVE_NS
        if self.last_resort and stale > _GIVE_UP_NS:
            base = self._stop_ns if self._stopping else self._schedule_end_ns
            if self._signal_ns:  # a signal the held loop never saw counts as the stop
                base = min(base, self._signal_ns)
            if now > base + int(self.config.graceful_stop_s * 1e9) + _GIVE_UP_NS:
                os.write(2, b"loadgen: the scenario holds the event loop and ignores every interruption "
                            b"(it catches BaseException); exiting without a summary\n")
                os._exit(EXIT_RUN)
        if self._signal_ns and now - self._signal_ns > _UNRESPONSIVE_NS:
            return "signal" if held else None
        if not self._stopping:
            if now < self._schedule_end_ns + 1_000_000_000:
                return None
            if not self._overdue:
                self._overdue = True
                self._loop.call_soon_threadsafe(self._deadline_stop)
        elif now < self._stop_ns + int(self.config.graceful_stop_s * 1e9) + _UNRESPONSIVE_NS:
            return None
        if not held:
            return None
        if self.stop_reason is None:
            self.stop_reason = "deadline"
        return "deadline"

    def cancel_all(self) -> None:
        """Stop at once: cancel every user, in flight or not."""
        if not self._stopping:
            self.interrupt()
        for t in list(self._tasks):
            t.cancel()

    async def _drain(self) -> None:
        """Let busy users finish for the graceful stop; then cancel them (a request in flight
        records itself as ``cutoff``) and wait for that, so their rows are in before the
        final snapshot; users that ignore cancellation are abandoned, never waited for."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=self.config.graceful_stop_s)
        if not pending:
            return
        busy = len(pending)
        # Twice: a cancelled user's on_stop may start a request of its own.
        for _ in range(2):
            for t in pending:
                t.cancel()
            _, pending = await asyncio.wait(pending, timeout=_CANCEL_WAIT_S)
            if not pending:
                break
        self.diagnostics.warn(
            f"{busy} user(s) were still busy after the graceful stop "
            f"of {self.config.graceful_stop_s:g}s and were cancelled"
        )
        if pending:
            self._abandoned = len(pending)
            self.diagnostics.warn(
                f"{len(pending)} user(s) ignored cancellation and were abandoned: a scenario that "
                "catches asyncio.CancelledError (or BaseException) must raise it again"
            )

    # -- users ------------------------------------------------------------
    def _new_user(self) -> tuple[Any, UserTasks | None]:
        # Indices are unique across the parts of a run (their seeds and feeders differ).
        index = self._user_count * self.part[1] + self.part[0]
        self._user_count += 1
        if self._mix is None or self._hooks is None:
            return _FixedUser(Client(self.session, None), index), None
        ts = self._mix.pick()
        user = ts.user_class(self._hooks.client(self.session, self._host, ts.user_class.http2), index)
        user.environment = self._hooks.environment
        user.random.seed(None if self._seed is None else self._seed * 1_000_003 + index)
        return user, ts

    def _spawn(self, coro: Any) -> None:
        t = self._loop.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        self.users += 1
        if self.users > self.users_max:
            self.users_max = self.users

    def _exception(self, exc: BaseException) -> None:
        # Scenario files are imported by their resolved path, so frames name it as is:
        # compare strings rather than resolving paths (file-system calls) per exception.
        where = ""
        if self.scenario is not None:
            for fr in traceback.extract_tb(exc.__traceback__):
                if fr.filename == self._scenario_file:
                    where = f"{self.scenario.path}:{fr.lineno}: "
        self.diagnostics.count("scenario", f"{where}{type(exc).__name__}: {exc}")

    def _failed(self, ts: UserTasks, fn: Any, exc: Exception) -> bool:
        """An iteration ended in an exception: counted per task (only on failure). True: the user
        raised StopUser and stops for good; the other control exceptions are not failures either."""
        if isinstance(exc, TaskControl):
            return isinstance(exc, StopUser)
        self._exception(exc)
        name = getattr(fn, "task_name", None) or getattr(fn, "__name__", "task")
        self.recorder.fail_iteration(f"{ts.user_class.__name__}.{name}")
        return False

    def _escape(self, exc: BaseException) -> None:
        """A scenario raised SystemExit or KeyboardInterrupt: end the run cleanly, naming where.

        A :class:`StopRun` is the watchdog breaking a blocking call: what comes next (stop,
        cancel) is already queued on the loop, and the user that held it just ends.
        """
        if isinstance(exc, StopRun):
            return
        if self.stop_reason is None:
            line = None
            for fr in traceback.extract_tb(exc.__traceback__):
                if fr.filename == self._scenario_file:
                    line = fr.lineno
            where = self.scenario.path if self.scenario is not None else "?"
            self.stop_reason = f"scenario raised {type(exc).__name__} at {where}" + (f":{line}" if line else "")
        self.interrupt()

    async def _start_user(self, user: Any) -> bool | None:
        """Whether the user started; None: its on_start raised StopUser (it stops for good)."""
        if isinstance(user, _FixedUser):
            return True
        try:
            await user.on_start()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, TaskControl):
                return None if isinstance(exc, StopUser) else True
            self._exception(exc)
            self.recorder.fail_iteration(f"{type(user).__name__}.on_start")
            return False
        except _SIGNAL_EXITS as exc:
            self._escape(exc)
            return False

    async def _stop_user(self, user: Any) -> None:
        if isinstance(user, _FixedUser) or self._finished:
            # Finished: an abandoned user closed at garbage collection must not suspend.
            user.client.close()
            return
        try:
            await leave_sets(user, self._exception)
            await user.on_stop()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self._exception(exc)
        except _SIGNAL_EXITS as exc:
            self._escape(exc)
        finally:
            user.client.close()

    # -- closed model ---------------------------------------------------------
    def _user_tick(self) -> None:
        if self._stopping:
            return
        t = (perf_counter_ns() - self._t0) / 1e9
        level = self._level(t)
        if level is None:
            self.stop()
            return
        want = self._share(math.ceil(level - 1e-9))
        if self._mix is not None and self._mix.capacity is not None:
            want = min(want, self._mix.capacity)
        have = self.users - self._retire + self._gone
        for _ in range(want - have):
            user, ts = self._new_user()
            self._spawn(self._closed_user(user, ts))
        if want < have:
            self._retire += have - want
            for task in list(self._sleeping)[: have - want]:
                task.cancel()
        self._user_handle = self._loop.call_later(_USER_TICK_S, self._user_tick)

    async def _closed_user(self, user: Any, ts: UserTasks | None) -> None:
        me = asyncio.current_task()
        rec = self.recorder
        gone = False  # StopUser: the user ends for good and is not replaced
        try:
            while not (started := await self._start_user(user)):
                # A user whose on_start failed keeps its place and tries again after a
                # pause: respawning it at once would turn a bad login into a flood.
                if self._stopping:
                    return
                if started is None:
                    gone = True
                    return
                if self._retire:
                    self._retire -= 1
                    return
                self._sleeping.add(me)  # type: ignore[arg-type]
                try:
                    await asyncio.sleep(ts.user_class.wait_time(user) if ts and ts.user_class.wait_time else 1.0)
                except asyncio.CancelledError:
                    if not (self._stopping or self._retire):
                        raise
                finally:
                    self._sleeping.discard(me)  # type: ignore[arg-type]
            if ts is None:
                # Ad-hoc mode, the hottest loop: in-flight is "every user" here and
                # iterations are added up once, not counted per request.
                send, req = user.client.send_fixed, self._fixed
                n = 0
                try:
                    while not self._stopping and not self._retire:
                        n += 1
                        await send(req)
                finally:
                    rec.iterations += n
                if self._retire and not self._stopping:
                    self._retire -= 1
                return
            wait = ts.wait
            spins = 0
            while not self._stopping:
                if self._retire:
                    self._retire -= 1
                    break
                rec.iterations += 1
                self.inflight += 1
                fn = ts.pick(user)
                try:
                    await fn(user)
                except Exception as exc:  # CancelledError is not an Exception: it passes
                    if self._failed(ts, fn, exc):
                        gone = True
                        return
                    spins = _YIELD_EVERY - 1  # it may have raised before its first await
                except _SIGNAL_EXITS as exc:
                    self._escape(exc)
                    return
                finally:
                    self.inflight -= 1
                delay = wait(user) if wait is not None and not self._stopping else 0
                if delay > 0:
                    self._sleeping.add(me)  # type: ignore[arg-type]
                    try:
                        await asyncio.sleep(delay)
                    except asyncio.CancelledError:
                        if not (self._stopping or self._retire):
                            raise
                    finally:
                        self._sleeping.discard(me)  # type: ignore[arg-type]
                else:
                    # Without think time, a task that never suspends (it raises or returns
                    # before any await) would hold the loop for ever: yield now and then.
                    spins += 1
                    if spins >= _YIELD_EVERY:
                        spins = 0
                        await asyncio.sleep(0)
        finally:
            self.users -= 1
            self._gone += gone
            if ts is not None and self._mix is not None:
                self._mix.release(ts)
            await self._stop_user(user)

    # -- open model ---------------------------------------------------------
    def _advance(self) -> int:
        nxt = next(self._arrivals, None)
        if nxt is None:
            return 0
        return self._t0 + int(nxt * 1e9)

    def _tick(self) -> None:
        if self._stopping:
            return
        now = perf_counter_ns()
        nxt = self._next_ns
        rec = self.recorder
        lag = rec.lag_buf
        idle = self._idle
        while nxt and nxt <= now:
            lag.append(now - nxt)
            rec.iterations += 1
            if idle:
                slot = idle.pop()
                self.inflight += 1
                slot.fut.set_result(nxt)  # type: ignore[union-attr]
            elif self.users < self._max_inflight:
                self.inflight += 1
                user, ts = self._new_user()
                self._spawn(self._open_user(_Slot(user), ts, nxt))
            else:
                rec.iterations -= 1
                rec.dropped += 1
            nxt = self._advance()
        self._next_ns = nxt
        if not nxt:
            # The schedule is spent: stop at its planned end (at once if that has passed).
            self._tick_handle = None
            self._end_handle = self._loop.call_later(
                max(0.0, (self._schedule_end_ns - perf_counter_ns()) / 1e9), self.stop
            )
            return
        delay = (nxt - perf_counter_ns()) / 1e9
        # uvloop's timers have 1 ms resolution: waking sooner than that for the next
        # arrival would spin the loop and burn a core at moderate rates. Arrivals due
        # within the next millisecond are dispatched together (the lag is measured).
        self._tick_handle = self._loop.call_later(delay if delay > _TICK_S else _TICK_S, self._tick)

    async def _preallocate(self) -> None:
        """Start users (on_start, and in ad-hoc mode a connection) before the clock starts.

        Creating users on demand costs the loop a connect each; done in the middle
        of a burst it slows the loop just when it is needed, and arrivals drop.
        Like k6's preAllocatedVUs: ``--users`` in the open model, else enough for
        10 ms of the peak rate.
        """
        c = self.config
        peak = max((st.target for st in self.shape.stages), default=0.0)
        n = c.preallocated_users if c.preallocated_users is not None else math.ceil(peak * 0.01)
        n = max(0, min(self._share(n), self._max_inflight))

        async def one() -> None:
            user, ts = self._new_user()
            if not await self._start_user(user):
                await self._stop_user(user)
                return
            fixed = self._fixed
            if fixed is not None:
                try:
                    await user.client.preconnect(fixed.origin, bare=not fixed.head)
                except asyncio.CancelledError:
                    user.client.close()
                    raise
            if self._stopping:
                await self._stop_user(user)
                return
            self._spawn(self._open_user(_Slot(user), ts, None, started=True))

        tasks = [self._loop.create_task(one()) for _ in range(n)]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_PREALLOCATE_WAIT_S)
            for t in pending:
                # A target slow to accept: these users join when they can, and the end of
                # the run cancels them like any busy user (they are not users yet).
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
        await asyncio.sleep(0)  # let every new user reach its idle wait

    async def _open_user(self, slot: _Slot, ts: UserTasks | None, intended: int | None, started: bool = False) -> None:
        """An open-model user: serve arrivals until the run stops (``intended`` None: start idle)."""
        user = slot.user
        client = user.client
        loop = self._loop
        idle = self._idle
        try:
            if not started and not await self._start_user(user):
                self.inflight -= 1
                return
            fixed = self._fixed
            while True:
                if intended is None:
                    slot.fut = fut = loop.create_future()
                    idle.append(slot)
                    intended = await fut
                    if intended < 0:
                        break
                client.intend(intended)
                if ts is None:
                    try:
                        await client.send_fixed(fixed)  # type: ignore[arg-type]
                    except Exception as exc:  # CancelledError is not an Exception: it passes
                        self._exception(exc)
                    except _SIGNAL_EXITS as exc:
                        self._escape(exc)
                        break
                    finally:
                        self.inflight -= 1
                else:
                    fn = ts.pick(user)
                    try:
                        await fn(user)
                    except Exception as exc:  # CancelledError is not an Exception: it passes
                        if self._failed(ts, fn, exc):
                            break  # StopUser: this user ends; the pool starts another when arrivals need one
                    except _SIGNAL_EXITS as exc:
                        self._escape(exc)
                        break
                    finally:
                        self.inflight -= 1
                if self._stopping:
                    break
                intended = None
        finally:
            self.users -= 1
            if ts is not None and self._mix is not None:
                self._mix.release(ts)
            await self._stop_user(user)

    # -- intervals ------------------------------------------------------------
    def _interval(self, k: int) -> None:
        t = perf_counter_ns()
        snap = self.recorder.snapshot(t)
        self._emit(snap)
        if _malloc_trim is not None:  # every interval: see _malloc_trim
            _malloc_trim(0)
        # The generator's own once-a-second work holds the loop too; the stall it causes
        # shows in the next interval, which names it rather than blaming a burst.
        due = self._t0 + int((k + 1) * _INTERVAL_S * 1e9)
        self._own_work_ns = perf_counter_ns() - t
        self._interval_handle = self._loop.call_later(
            max(0.0, (due - perf_counter_ns()) / 1e9), self._interval, k + 1
        )

    def _emit(self, snap: IntervalSnapshot) -> None:
        snap.users = self.users
        # Ad-hoc closed users are always in flight; their loop does not count it (hot path).
        snap.inflight = self.users if self.model == "closed" and self.scenario is None else self.inflight
        mid = (snap.start_s + snap.end_s) / 2
        snap.target_rate = self._steering.level(mid) if self.model == "open" else None
        lag_p99_ms = hdr.percentile_ms(snap.lag, 99)
        # CPU over a sliver of an interval (the last one) says nothing.
        busy = snap.cpu_percent >= SATURATED_CPU_PERCENT and snap.duration_s >= 0.5 * _INTERVAL_S
        if self.model == "open":
            # A busy core that still starts arrivals on time is keeping up.
            saturated = (
                snap.dropped_iterations > 0
                or lag_p99_ms > SATURATED_LAG_MS
                or (busy and lag_p99_ms > SATURATED_BUSY_LAG_MS)
            )
        else:
            saturated = busy
        snap.saturated = saturated
        if saturated:
            self.recorder.totals.saturated_intervals += 1
        self._mark_stall(snap, busy)
        self._check_phase(snap)
        stopping = self._stopping
        for sink in list(self.sinks):
            try:
                sink(snap, self)
            except Exception as exc:  # a broken display must not end a run
                self.diagnostics.warn(f"a results sink failed: {type(exc).__name__}: {exc}", "sink")
                self.sinks.remove(sink)
        if self._stopping and not stopping and self.stop_reason is None:
            self.stop_reason = "stopped by a results sink"

    def _mark_stall(self, snap: IntervalSnapshot, busy: bool) -> None:
        """Mark an interval whose loop stalled long enough to distort latencies, with the likely cause."""
        blocked = self._watchdog.take_blocked() if self._watchdog is not None else {}
        h = snap.stall
        if not h.total_count or h.get_max_value() < STALL_MS * 1000:
            self._own_work_ns = 0
            return
        snap.stalled = True
        self.recorder.totals.stalled_intervals += 1
        own, self._own_work_ns = self._own_work_ns, 0
        if blocked:
            cause = f"{_CAUSE_BLOCKING}: {max(blocked, key=blocked.__getitem__)}"
        elif own >= 0.8 * h.get_max_value() * 1000:
            cause = _CAUSE_OWN
        elif busy:
            cause = _CAUSE_CPU
        else:
            # The loop was late but never held by one call, its core not saturated over the
            # second: many users sent in the same instant and the loop needed that long.
            cause = _CAUSE_BURST
        snap.stall_cause = cause
        self._stall_causes[cause] = self._stall_causes.get(cause, 0) + 1

    def _check_phase(self, snap: IntervalSnapshot) -> None:
        """For stress runs: evaluate each step as it ends; stop at the first that breaks."""
        if self.config.test_type != "stress" or self.config.stages or self.broke_at is not None:
            return
        phases = self.shape.phases
        if self._phase_i >= len(phases):
            return
        acc = self._phase_acc
        if not acc:
            acc.update(requests=0, errors=0, latency=hdr.new_histogram())
        acc["requests"] += snap.overall.requests
        acc["errors"] += snap.overall.errors
        hdr.merge(acc["latency"], snap.overall.latency)
        phase: Phase = phases[self._phase_i]
        if snap.end_s + 0.05 < phase.end_s and not self._stopping:
            return
        n = acc["requests"]
        err = acc["errors"] / n if n else 0.0
        p95 = hdr.percentile_ms(acc["latency"], 95)
        reason = None
        if err > self.config.break_error_rate:
            reason = f"error rate {err:.1%} > {self.config.break_error_rate:.1%}"
        elif p95 > self.config.break_p95_ms:
            reason = f"p95 {p95:.1f} ms > {self.config.break_p95_ms:g} ms"
        if reason:
            if self.stop_reason is None and not self._stopping:
                self.stop_reason = "stress step broke"
            self.broke_at = {
                "step": self._phase_i + 1,
                "phase": phase.name,
                "target": phase.target,
                "reason": reason,
                "error_rate": err,
                "p95_ms": p95,
            }
            self.stop()
        self._phase_i += 1
        self._phase_acc = {}

    def _warn_at_end(self) -> None:
        """What only the whole run shows: a saturated generator, a stalled loop, requests not sent."""
        w = self.diagnostics
        tot = self.recorder.totals
        blocking = any(c.startswith(_CAUSE_BLOCKING) for c in self._stall_causes)
        if tot.saturated_intervals:
            lag = tot.lag
            lag_p99 = hdr.percentile_ms(lag, 99)
            if blocking:
                advice = "a blocking call in the scenario held the loop (see below)"
            elif tot.dropped_iterations and lag_p99 <= SATURATED_LAG_MS:
                # Arrivals started on time but found every slot busy: the target is slower
                # than the rate needs, not the generator short of CPU.
                advice = (f"all {self._max_inflight} slots were busy: the target answers slower than the "
                          "rate needs; raise --max-inflight")
            else:
                advice = "add --workers or machines"
            w.warn(
                f"the generator itself was the bottleneck in {tot.saturated_intervals} of "
                f"{tot.intervals} interval(s) (dropped iterations {tot.dropped_iterations}, "
                f"dispatch lag p99 {lag_p99:.1f} ms, or its CPU at {SATURATED_CPU_PERCENT:.0f} % "
                f"of a core): its numbers are suspect; {advice}"
            )
        if self._stall_causes:
            worst = tot.stall.get_max_value() / 1000 if tot.stall.total_count else 0.0
            causes: dict[str, int] = {}
            places = sorted((c for c in self._stall_causes if c.startswith(_CAUSE_BLOCKING)),
                            key=lambda c: -self._stall_causes[c])
            for cause, n in self._stall_causes.items():
                if cause.startswith(_CAUSE_BLOCKING):  # one warning for every blocking place
                    cause = places[0] + (f" (and {len(places) - 1} more place(s))" if len(places) > 1 else "")
                causes[cause] = causes.get(cause, 0) + n
            for cause, n in sorted(causes.items(), key=lambda kv: -kv[1]):
                if cause.startswith(_CAUSE_BLOCKING):
                    advice = ("use await asyncio.sleep() and the user's self.client instead of blocking "
                              "calls (time.sleep, requests, a synchronous driver)")
                elif cause == _CAUSE_BURST:
                    advice = ("spread the users' think time (between() rather than constant()), "
                              "run fewer users, or add --workers")
                elif cause == _CAUSE_OWN:
                    advice = "name requests so fewer endpoint rows are kept (name=, --max-names), or add --workers"
                else:
                    advice = "add --workers or machines"
                w.warn(
                    f"the event loop stalled (up to {worst:.0f} ms) in {n} of {tot.intervals} interval(s), "
                    f"likely cause {cause}: latencies then include the generator's own delay; {advice}"
                )
        errors = getattr(self.session, "request_errors", None) or {}
        for msg, n in errors.items():
            w.warn(f"{n} request(s) were not sent: {msg}")

