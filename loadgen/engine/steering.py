"""Steering a run while it runs: the control API's changes (stop, a new rate, a new user
count), the schedule they leave, and the record of what was applied.

:class:`Steering` is pure logic: the schedule as it now stands (stages, as
:mod:`loadgen.engine.workload` draws them), each change cutting it at the time
it was made and replacing what remained (a new rate holds until the planned end;
a new user count is reached at ``--spawn-rate`` and then held). What ran is the
original stages up to the first change, then each change in turn:
:meth:`Steering.applied` is that, for the summary. At most :data:`MAX_CHANGES`
changes of the load are taken in a run, so the record and the schedule stay bounded.

:class:`Steer` is the thread-safe face of it that the control API holds: it
hands a change to the thread that owns the run (the engine's event loop, the
coordinator's thread) and gives back a future of the applied :class:`Change`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal, Union

from ..config import RunConfig, Stage
from .workload import count_until, level_at

__all__ = ["Action", "Change", "ControlState", "MAX_CHANGES", "Refused", "STOP_REASON", "Steer", "Steering",
           "cut", "fixed_load"]

Action = Literal["stop", "rate", "users"]
#: The most changes of the load (rate or users) one run takes; a stop is always taken.
MAX_CHANGES = 1_000
#: The run's stop reason when the control API stopped it.
STOP_REASON = "stopped from the control API"
_EPS_S = 1e-9


class Refused(Exception):
    """A change that cannot be applied now; its text is one sentence for the caller."""


@dataclass(frozen=True)
class Change:
    """One change applied to a run, ``at_s`` seconds into it (the run's clock)."""

    at_s: float
    action: Action
    value: float | None = None  # the rate (/s) or the user count; None for a stop
    source: str = "api"

    def to_json(self) -> dict[str, Union[str, float, int]]:
        """``{"at_s", "action", "rate"|"users", "source"}``: one entry of the summary's ``control``."""
        doc: dict[str, Union[str, float, int]] = {"at_s": round(self.at_s, 3), "action": self.action}
        if self.action == "rate" and self.value is not None:
            doc["rate"] = self.value
        elif self.action == "users" and self.value is not None:
            doc["users"] = int(self.value)
        doc["source"] = self.source
        return doc


@dataclass(frozen=True)
class ControlState:
    """What the control API shows of a run: its model, the load it is set to now, what can be changed."""

    model: str
    running: bool
    can: tuple[str, ...]  # what a call may do now: "stop", and "rate" (open) or "users" (closed)
    why: str | None  # why less than that can be done now, or None
    rate: float | None  # open model: the target rate now
    users: int | None  # closed model: the target user count now
    changes: tuple[Change, ...]


def fixed_load(config: RunConfig, loadshape: str | None) -> str | None:
    """Why a run's load cannot be changed while it runs (it can still be stopped), or None;
    ``loadshape``: the name of the scenario's LoadShape class, when it has one."""
    if loadshape is not None:
        return f"the scenario's LoadShape ({loadshape}) sets the user count"
    if config.test_type == "stress" and not config.stages:
        return "a stress run's steps are what it measures; stop it rather than change its load"
    return None


def cut(stages: Sequence[Stage], t: float) -> list[Stage]:
    """The stages from 0 to ``t`` s: whole ones, then the one running at ``t`` ended there at the
    level it reached (a jump at exactly ``t`` is kept: it applies from ``t``, as in level_at)."""
    out: list[Stage] = []
    t0, level = 0.0, 0.0
    for st in stages:
        if t0 + st.duration_s <= t:
            out.append(st)
            t0 += st.duration_s
            level = st.target
            continue
        if t > t0:
            d = t - t0
            out.append(Stage(d, level + (st.target - level) * d / st.duration_s))
        break
    return out


def _compact(stages: list[Stage]) -> tuple[Stage, ...]:
    """Consecutive instant jumps collapse into the last one (only it shows in level_at)."""
    out: list[Stage] = []
    for st in stages:
        if out and st.duration_s <= 0 and out[-1].duration_s <= 0:
            out[-1] = st
        else:
            out.append(st)
    return tuple(out)


class Steering:
    """A run's schedule as changes leave it, and the record of the changes (see the module docstring).

    Written by the one thread that owns the run; read from any: every field is replaced
    whole (the record only grows), so a reader sees one state or the next, never a mix.
    """

    def __init__(self, model: str, stages: Sequence[Stage], *, end_s: float, spawn_rate: float,
                 fixed: str | None = None) -> None:
        """``end_s``: the planned end (a change holds until then); ``fixed``: why the rate or
        user count cannot be changed in this run (a LoadShape sets it, a stress run's steps);
        it can still be stopped."""
        self.model = model
        self.stages: tuple[Stage, ...] = tuple(stages)  # the whole schedule as it now stands
        self.end_s = end_s
        self.spawn_rate = spawn_rate
        self.fixed = fixed
        self._changes: list[Change] = []
        self._loads = 0  # changes of the load (not stops)
        # The schedule from the last change on (when, its stages, the level it starts from), one
        # value: level_at over this short tail, not over every stage so far.
        self._tail: tuple[float, tuple[Stage, ...], float] = (0.0, self.stages, 0.0)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(self._changes)

    @property
    def steered(self) -> bool:
        """Whether a change replaced the schedule (a stop alone does not)."""
        return self._loads > 0

    @property
    def knob(self) -> str:
        """What sets this model's load: ``rate`` (open) or ``users`` (closed)."""
        return "rate" if self.model == "open" else "users"

    def level(self, t: float) -> float:
        """The schedule's value at ``t`` s: the target rate, or the user count."""
        at, tail, start = self._tail
        if t >= at:
            return level_at(tail, t - at, start=start)
        return level_at(self.stages, t)

    def why_not(self, t: float) -> str | None:
        """Why the load cannot be changed at ``t`` s, or None."""
        if self.fixed is not None:
            return self.fixed
        if t >= self.end_s:
            return "the run's schedule is over"
        if self._loads >= MAX_CHANGES:
            return f"this run has taken {MAX_CHANGES:,} changes of its load, the most one run records"
        return None

    def change(self, action: Action, value: float | None, t: float, *, source: str = "api") -> Change:
        """Apply ``action`` at ``t`` s: record it and, for a rate or a user count, replace the
        schedule from ``t`` on; :class:`Refused` when it does not apply to this run now."""
        if action == "stop":
            return self._record(Change(t, "stop", None, source))
        if action != self.knob:
            other = "open" if action == "rate" else "closed"
            raise Refused(f"the {self.model} model's load is its {self.knob}: {action} applies to the {other} "
                          f"model only")
        why = self.why_not(t)
        if why is not None:
            raise Refused(why)
        assert value is not None
        t = max(t, self._tail[0])  # a change given its time (a worker's) never cuts before the last one
        now = self.level(t)
        left = self.end_s - t
        tail: tuple[Stage, ...]
        if action == "rate":
            tail = (Stage(0.0, value), Stage(left, value))
        else:
            ramp = abs(value - now) / self.spawn_rate if self.spawn_rate > 0 else 0.0
            if ramp >= left and ramp > 0:  # the planned end comes first: the ramp is cut there
                tail = (Stage(left, now + (value - now) * left / ramp),)
            else:
                tail = (Stage(ramp, value), Stage(left - ramp, value))
        self.stages = _compact([*cut(self.stages, t), *tail])
        self._tail = (t, tail, now)
        self._loads += 1
        return self._record(Change(t, action, float(value), source))

    def _record(self, change: Change) -> Change:
        self._changes.append(change)
        return change

    def applied(self, end_s: float) -> tuple[Stage, ...]:
        """The stages that actually ran, until the load ended at ``end_s`` s."""
        return _compact(cut(self.stages, end_s + _EPS_S))

    def arrivals(self, t: float, *, poisson: bool, seed: int | None, part: tuple[int, int],
                 first: int | None = None) -> Iterator[float]:
        """Intended start times (s, ascending) after the last change, made at ``t``, up to the planned end.

        Constant arrivals go on counting where the schedule before the change left off (event
        ``k`` where the cumulative count reaches ``k``), so they are exactly what
        :func:`~loadgen.engine.workload.arrival_times` gives for the changed stages after ``t``;
        Poisson arrivals draw afresh from a generator seeded by the run's seed and the change's
        number. ``part=(i, n)`` keeps every n-th from the i-th, as the engine splits arrivals.
        ``first``: the number of the first constant arrival not yet started (a change applied
        after its time, as a worker may: those before it ran on the schedule before the change).
        """
        rate = self.level(t + _EPS_S)
        i, n = part
        if rate <= 0:
            return
        if not poisson:
            done = count_until(self.stages, t)  # events 0..floor(done) were due by t
            k = math.floor(done + _EPS_S) + 1
            if first is not None:
                k = max(k, first)
            k += (i - k) % n
            while True:
                at = t + (k - done) / rate
                if at >= self.end_s:
                    return
                yield at
                k += n
        rng = random.Random(None if seed is None else f"{seed}/{len(self._changes)}")
        s, j = 0.0, 0
        while True:
            s += rng.expovariate(1.0)
            at = t + s / rate
            if at >= self.end_s:
                return
            if j % n == i:
                yield at
            j += 1

    def state(self, t: float | None, *, running: bool, users_now: int | None = None) -> ControlState:
        """What the control API shows at ``t`` s (None: not started); ``users_now``: the live
        user count, shown when a LoadShape sets it."""
        at = 0.0 if t is None else t
        why = "the run has not started yet" if t is None else None if running else "the run is over or stopping"
        can: tuple[str, ...] = ()
        if running:
            why = self.why_not(at)
            can = ("stop",) if why is not None else ("stop", self.knob)
        rate = self.level(at) if self.model == "open" else None
        users = None
        if self.model == "closed":
            users = users_now if self.fixed is not None and users_now is not None else math.ceil(self.level(at) - 1e-9)
        return ControlState(model=self.model, running=running, can=can, why=why, rate=rate, users=users,
                            changes=self.changes)


class Steer:
    """The thread-safe face of a run's :class:`Steering`, which the control API holds.

    ``post`` runs a callable on the thread that owns the run (raising RuntimeError when
    that thread is gone); ``apply`` applies a change there and returns it. ``relayed``: the
    change is handed on (to workers) rather than applied when the future resolves.
    ``refuse``: why this run takes no control at all (a shard runs only its part).
    """

    def __init__(self, steering: Steering, *, clock: Callable[[], float | None], running: Callable[[], bool],
                 post: Callable[[Callable[[], None]], None],
                 apply: Callable[[Action, float | None, float | None], Change],
                 users_now: Callable[[], int] | None = None, relayed: bool = False,
                 refuse: str | None = None) -> None:
        self.steering = steering
        self._clock, self._running, self._post, self._apply = clock, running, post, apply
        self._users_now = users_now
        self.relayed = relayed
        self.refuse = refuse

    def state(self) -> ControlState:
        """The run's control state now (from any thread)."""
        st = self.steering.state(self._clock(), running=self._running(),
                                 users_now=self._users_now() if self._users_now is not None else None)
        if self.refuse is not None:
            return ControlState(st.model, st.running, (), self.refuse, st.rate, st.users, st.changes)
        return st

    def submit(self, action: Action, value: float | None, at_s: float | None = None) -> Future[Change]:
        """Hand ``action`` to the run's thread (from any thread); the future holds the applied
        :class:`Change`, or raises :class:`Refused`. Cancelling it before it runs withdraws it.
        ``at_s``: when the change was made in the whole run (a worker's, from its coordinator);
        None: now."""
        fut: Future[Change] = Future()
        if self.refuse is not None:
            fut.set_exception(Refused(self.refuse))
            return fut
        if self._clock() is None:
            fut.set_exception(Refused("the run has not started yet"))
            return fut
        if not self._running():
            fut.set_exception(Refused("the run is over or already stopping"))
            return fut

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return  # the caller gave up waiting: the change is not applied
            try:
                fut.set_result(self._apply(action, value, at_s))
            except Refused as exc:
                fut.set_exception(exc)
            except Exception as exc:  # a change must never take the run down
                fut.set_exception(Refused(f"the change could not be applied: {type(exc).__name__}: {exc}"))

        try:
            self._post(run)
        except RuntimeError:  # the run's loop has closed
            if fut.set_running_or_notify_cancel():
                fut.set_exception(Refused("the run is over"))
        except Refused as exc:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(exc)
        return fut
