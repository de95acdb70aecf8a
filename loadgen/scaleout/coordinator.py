"""``loadgen run --workers N``: N engine processes on one host, merged into one run.

Each worker runs share ``i`` of ``N`` of the load (see ``Engine(part=...)``),
so the parts add up exactly to the single-process schedule. The coordinator
starts them, releases them together once every one has its users up, and
merges their intervals (exactly: HDR histograms add bucket by bucket) into the
one interval stream its sinks know: the live display, the store, ``/metrics``
and the thresholds. Only interval snapshots travel, once a second.

The control API steers the whole run here: a change is checked and recorded
against the whole run's schedule on the coordinator's thread, then sent to
every live worker, which applies its share (``Retarget``).

A worker that dies is reported with its share; the run goes on without it
(``--on-worker-failure continue``) or stops the others (``stop``); whatever
any worker measured and sent is kept.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from ..config import RunConfig
from ..diagnostics import MEASUREMENT, Diagnostics, Logged, WarningList, relog
from ..engine.engine import AdHocRequest, RunResult
from ..errors import RunError
from ..engine.recorder import IntervalSnapshot, Recorder
from .channel import ChildFailed, ChildProcess
from ..engine.steering import STOP_REASON, Action, Change, Refused, Steer, Steering, fixed_load
from .messages import Command, Finished, Interval, Ready, Retarget, WorkerJob
from ..scenario import Scenario
from ..sinks import IntervalSink
from .wire import Part, add_part_extras, merge_snapshots, part_warnings, snapshot_from_json
from ..engine.workload import Shape, shape_of

__all__ = ["Coordinator", "resolve_workers"]

_READY_TIMEOUT_S = 120.0
#: A worker still running this long after the run should have ended (its schedule, or a stop,
#: plus the graceful stop) is killed: past the engine's own last resort (10 s), so a worker
#: ends by itself when it can, and the run always ends when it cannot (a blocked, deaf loop).
_HARD_MARGIN_S = 15.0
#: After a second Ctrl-C, how long a worker gets to obey "kill" before it is killed.
_KILL_GRACE_S = 2.0
#: When the run is over (or failed), how long a worker still running gets to obey "kill".
_END_WAIT_S = 10.0


def resolve_workers(value: str | int | None) -> int:
    """``--workers``: a count, or ``auto`` for one per core."""
    from ..errors import UsageError

    if value is None:
        return 1
    if isinstance(value, str) and value.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--workers must be a number or 'auto', not {value!r}") from None
    if n < 1:
        raise UsageError("--workers must be at least 1")
    return n


class _Worker:
    def __init__(self, index: int, child: ChildProcess) -> None:
        self.index = index
        self.child = child
        self.ready = False
        self.part: Part | None = None
        self.dead = False
        self.last_index = -1

    def send(self, command: Command) -> None:
        self.child.send(command)


class Coordinator:
    """Runs one test in N worker processes; ``run()`` returns the merged RunResult.

    It stands in for the Engine towards the sinks (``recorder``, ``stop()``,
    ``stopping``, ``warnings``, ``model``, ``config``). Its warnings, the workers'
    and their scenario exceptions go to ``diagnostics`` (the session's), as the engine's do.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        workers: int,
        scenario_path: str | None = None,
        scenario: Scenario | None = None,
        adhoc: AdHocRequest | None = None,
        sinks: list[IntervalSink] | None = None,
        on_worker_failure: str = "continue",
        handle_signals: bool = True,
        diagnostics: Diagnostics | None = None,
    ) -> None:
        self.config = config
        self.scenario = scenario
        self.scenario_path = scenario_path
        self.adhoc = adhoc
        self.n = workers
        self.sinks = list(sinks or [])
        self.on_worker_failure = on_worker_failure
        self.handle_signals = handle_signals
        # Each worker caps its names; the cap applies again to their union.
        self.recorder = Recorder(max_names=config.max_names)
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.warnings = WarningList(self.diagnostics)  # what sinks read and append to
        self.model = config.model
        self.shape: Shape = shape_of(config)  # the whole run's, for target rates and the summary
        self._stopping = False
        self._stop_reason: str | None = None
        self._interrupted = False
        self._kill_at = float("inf")  # time.monotonic() past which running workers are killed
        self._msgs: queue.Queue[tuple[int, object | None]] = queue.Queue()  # None: a worker's output ended
        self._failed: ChildFailed | None = None
        self._workers: list[_Worker] = []
        self._pending: dict[int, dict[int, IntervalSnapshot]] = {}
        self._next = 0
        loadshape = scenario.shape.__name__ if scenario is not None and scenario.shape is not None else None
        self._steering = Steering(self.model, self.shape.stages, end_s=self.shape.duration_s,
                                  spawn_rate=config.spawn_rate, fixed=fixed_load(config, loadshape))
        self._went = 0.0  # time.monotonic() at "go": the run's clock starts
        self._over = False  # every worker finished: no change is taken any more
        self._users_now = 0  # the last merged interval's users
        self._steer = Steer(self._steering, clock=self._clock, running=lambda: self._went > 0 and not (
            self._stopping or self._over), post=self._post, apply=self._apply_change,
            users_now=lambda: self._users_now, relayed=True)

    # -- the engine's face towards sinks ---------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def stop(self, reason: str | None = None) -> None:
        """Stop every worker gracefully (thresholds' --abort-on-fail, Ctrl-C); ``reason``
        is the run's stop reason unless a worker gives its own."""
        if self._stopping:
            return
        self._stop_reason = reason
        self._stopping = True
        self._kill_at = min(self._kill_at, time.monotonic() + self.config.graceful_stop_s + _HARD_MARGIN_S)
        for w in self._workers:
            if not w.dead:
                w.send("stop")

    @property
    def steering(self) -> Steer:
        """Stop the run, or change its rate or user count, from any thread: the coordinator's
        thread checks and records each change and sends it to every worker."""
        return self._steer

    def _clock(self) -> float | None:
        return time.monotonic() - self._went if self._went else None

    def _post(self, fn: Callable[[], None]) -> None:
        if self._over:
            raise Refused("the run is over")
        self._msgs.put((-1, fn))  # the coordinator's thread runs it between the workers' messages

    def _apply_change(self, action: Action, value: float | None, at_s: float | None = None) -> Change:  # noqa: ARG002
        """On the coordinator's thread: record the change for the whole run and send it on, with its
        time: each worker applies it as of then, so their shares add up to the stages recorded."""
        if self._stopping or self._over:
            raise Refused("the run is already stopping")
        t = time.monotonic() - self._went
        change = self._steering.change(action, value, t)
        if action == "stop":
            self.stop(STOP_REASON)
            return change
        assert value is not None
        self.shape = Shape(self._steering.stages, self.shape.phases)
        for w in self._workers:
            if not w.dead and w.part is None:
                w.send(Retarget("rate" if action == "rate" else "users", value, change.at_s))
        return change

    # -- running ------------------------------------------------------------------
    def _start(self) -> None:
        for i in range(self.n):
            child = ChildProcess(
                "loadgen.scaleout.worker",
                name=f"loadgen-worker-{i}",
                on_message=lambda msg, i=i: self._msgs.put((i, msg)),
                on_end=lambda code, broken, i=i: self._msgs.put((i, None)),
            )
            self._workers.append(_Worker(i, child))
            child.send(WorkerJob(self.config, self.scenario_path, self.adhoc, (i, self.n)))

    def _share(self, w: _Worker) -> str:
        return f"worker {w.index + 1} of {self.n} (1/{self.n} of the load)"

    def _on_death(self, w: _Worker) -> None:
        w.dead = True
        code = w.child.wait()
        msg = f"{self._share(w)} died (exit code {code}) after {w.last_index + 1} interval(s); "
        if self.on_worker_failure == "stop" and not self._stopping:
            self.diagnostics.warn(msg + "the run was stopped (--on-worker-failure stop)", "workers")
            self.stop()
        else:
            self.diagnostics.warn(msg + "the run went on without its share", "workers")

    def _handle(self, i: int, msg: object | None) -> None:
        if i < 0:  # a control change, from the API's thread
            assert callable(msg)
            msg()
            return
        w = self._workers[i]
        if msg is None:
            if w.part is None and not w.dead:
                self._on_death(w)
        elif isinstance(msg, Interval):
            snap = snapshot_from_json(msg.snap)
            w.last_index = snap.index
            self._pending.setdefault(snap.index, {})[i] = snap
        elif isinstance(msg, Ready):
            w.ready = True
        elif isinstance(msg, Finished):
            w.part = msg.part
        elif isinstance(msg, ChildFailed):
            self._failed = msg
        elif isinstance(msg, Logged):
            relog(msg)

    def _flush(self, final: bool = False) -> None:
        """Emit every interval that each live worker has sent (all of them at the end)."""
        while self._pending:
            k = self._next
            have = self._pending.get(k)
            if have is None:
                if final and any(j > k for j in self._pending):
                    self._next += 1
                    continue
                return
            waiting = [w for w in self._workers if not w.dead and w.part is None and w.index not in have]
            if waiting and not final:
                return
            del self._pending[k]
            self._next += 1
            self._emit(merge_snapshots(list(have.values()), target_rate=self._target(have)))

    def _target(self, have: dict[int, IntervalSnapshot]) -> float | None:
        if self.model != "open":
            return None
        s = next(iter(have.values()))
        return self._steering.level((s.start_s + s.end_s) / 2)

    def _emit(self, snap: IntervalSnapshot) -> None:
        tot = self.recorder.totals
        self._users_now = snap.users
        self.recorder.fold_snapshot(snap)
        tot.add(snap)
        if snap.saturated:
            tot.saturated_intervals += 1
        if snap.stalled:
            tot.stalled_intervals += 1
        for sink in list(self.sinks):
            try:
                sink(snap, self)
            except Exception as exc:  # noqa: BLE001 - a broken sink must not end a run
                self.diagnostics.warn(f"a results sink failed: {type(exc).__name__}: {exc}", "sink")
                self.sinks.remove(sink)

    def run(self) -> RunResult:
        old = None
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, self._on_sigint)
            old_term = signal.signal(signal.SIGTERM, self._on_sigint)
        try:
            return self._run()
        finally:
            self._over = True
            self._refuse_pending()
            if old is not None:
                signal.signal(signal.SIGINT, old)
                signal.signal(signal.SIGTERM, old_term)
            for w in self._workers:
                if w.child.poll() is None:
                    w.child.stop(_END_WAIT_S, last="kill")

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self._stopping:
            self._kill_at = min(self._kill_at, time.monotonic() + _KILL_GRACE_S)
            for w in self._workers:
                w.send("kill")
            return
        self._interrupted = True
        self.stop()

    def _run(self) -> RunResult:
        self._start()
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not all(w.ready or w.dead for w in self._workers):
            try:
                i, msg = self._msgs.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RunError(f"the workers did not get ready within {_READY_TIMEOUT_S:g}s") from None
            self._handle(i, msg)
            if self._failed is not None:
                raise self._failed.error()
        alive = [w for w in self._workers if not w.dead]
        if not alive:
            raise RunError("every worker process died before the run started")
        started_at = time.time()
        # A scenario's LoadShape ends the run when its tick() says (bounded only by a --run-time given).
        shaped = self.scenario is not None and self.scenario.shape is not None and not self.config.run_time_given
        if not shaped:
            self._kill_at = min(self._kill_at, time.monotonic() + self.shape.duration_s
                                + self.config.graceful_stop_s + _HARD_MARGIN_S)
        self._went = time.monotonic()
        for w in alive:
            w.send("go")
        while not all(w.dead or w.part is not None for w in self._workers):
            self._kill_overdue()
            try:
                i, msg = self._msgs.get(timeout=0.5)
            except queue.Empty:
                continue
            self._handle(i, msg)
            self._flush()
        self._over = True  # changes still queued are refused as they are handled
        while not self._msgs.empty():
            self._handle(*self._msgs.get_nowait())
        self._flush(final=True)
        return self._result(started_at)

    def _refuse_pending(self) -> None:
        """Changes queued after the last messages were handled: each is refused, none waits in vain."""
        while True:
            try:
                i, msg = self._msgs.get_nowait()
            except queue.Empty:
                return
            if i < 0 and callable(msg):
                msg()

    def _kill_overdue(self) -> None:
        """Kill the workers still running past the run's hard end; each is then reported dead."""
        if time.monotonic() < self._kill_at:
            return
        self._kill_at = float("inf")
        for w in self._workers:
            if not w.dead and w.part is None:
                w.child.kill()

    def _result(self, started_at: float) -> RunResult:
        tot = self.recorder.totals
        parts = [w.part for w in self._workers if w.part is not None]
        said = self.diagnostics.texts(*MEASUREMENT)
        for w in part_warnings(parts, "workers"):
            if w not in said:
                self.diagnostics.warn(w, "workers")
        users_max = 0
        for p in parts:
            add_part_extras(self.recorder, p)
            for k, v in p["exceptions"].items():
                self.diagnostics.count("scenario", k, v)
            tot.cpu_s += p["cpu_s"]
            users_max += p["users_max"]
        interrupted = self._interrupted
        schedule_s = max((p["schedule_s"] for p in parts), default=1e-9)
        if self._steering.steered:  # what ran: the stages up to each change, then the change
            self.shape = Shape(self._steering.applied(schedule_s), self.shape.phases)
        # A stop the coordinator began (abort-on-fail) names itself: its workers only saw "stop".
        reason = self._stop_reason or next((p.get("stop_reason") for p in parts if p.get("stop_reason")), None)
        return RunResult(
            stop_reason="signal" if interrupted and reason is None else reason,
            recorder=self.recorder,
            config=self.config,
            shape=self.shape,
            model=self.model,
            started_at=started_at,
            duration_s=max((p["duration_s"] for p in parts), default=0.0),
            schedule_s=schedule_s,
            interrupted=interrupted,
            users_max=users_max,
            broke_at=next((p["broke_at"] for p in parts if p["broke_at"]), None),
            exceptions=self.diagnostics.counts("scenario"),
            warnings=self.diagnostics.texts(*MEASUREMENT),
            control=self._steering.changes,
        )
