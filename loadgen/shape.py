"""Programmable load shapes: a class whose ``tick()`` says how many users should run.

A scenario file may define one :class:`LoadShape` subclass; the closed model
then follows it instead of ``--users``/``--stages``: ``tick()`` is asked once a
second and returns ``(users, spawn_rate)``, or None to end the run. Users are
started or stopped towards the answer at ``spawn_rate`` a second, as Locust's
``LoadTestShape`` does. ``--run-time``, when given, still bounds the run.
"""

from __future__ import annotations

import math
from time import perf_counter

from .config import MAX_USERS, Stage
from .errors import ScenarioError

__all__ = ["LoadShape", "ShapeDriver", "TICK_S"]

#: How often ``tick()`` is asked (Locust: once a second).
TICK_S = 1.0


class LoadShape:
    """Subclass it and define ``tick(self) -> tuple[int, float] | None``."""

    def __init__(self) -> None:
        self._t0 = perf_counter()

    def reset_time(self) -> None:
        """Count :meth:`get_run_time` from now."""
        self._t0 = perf_counter()

    def get_run_time(self) -> float:
        """Seconds since the run started."""
        return perf_counter() - self._t0

    def tick(self) -> tuple[int, float] | None:
        """``(users, spawn_rate)`` for now, or None to end the run."""
        raise NotImplementedError(f"{type(self).__name__} must define tick()")


class ShapeDriver:
    """Asks a shape once a second and moves the user level towards its answer at its spawn rate.

    :meth:`level` is called by the engine's user tick (every 50 ms) with the
    run's time; it returns the level to hold, or None once the shape ended the
    run. What the shape asked is kept as stages (:attr:`stages`) for the summary.
    """

    def __init__(self, shape: LoadShape) -> None:
        self.shape = shape
        self.name = type(shape).__name__
        self._next_tick = 0.0
        self._base = 0.0  # the level when the last answer came
        self._base_t = 0.0
        self._target = 0.0
        self._rate = math.inf
        self._last_t = 0.0
        self.stages: list[Stage] = []
        self.ended = False

    def level(self, t: float) -> float | None:
        if self.ended:
            return None
        if t >= self._next_tick:
            self._ask(t)
            if self.ended:
                return None
        return self._level(t)

    def _level(self, t: float) -> float:
        gap = self._target - self._base
        if gap == 0 or math.isinf(self._rate):
            return self._target
        moved = self._rate * (t - self._base_t)
        return self._target if moved >= abs(gap) else self._base + math.copysign(moved, gap)

    def _ask(self, t: float) -> None:
        self._next_tick = t + TICK_S
        answer = self.shape.tick()
        if answer is None:
            self.ended = True
            self._record(t)
            return
        users, rate = self._check(answer)
        now = self._level(t)
        self._record(t)
        self._base, self._base_t, self._target, self._rate = now, t, float(users), rate

    def _record(self, t: float) -> None:
        """Close the stage since the last answer: from there to now, at the level reached."""
        if t > self._last_t or not self.stages:
            self.stages.append(Stage(max(0.0, t - self._last_t), self._level(t)))
        self._last_t = t

    def _check(self, answer: object) -> tuple[int, float]:
        bad = ScenarioError(f"{self.name}.tick() returned {answer!r}; it must return (users, spawn_rate) or None")
        if not isinstance(answer, tuple) or len(answer) not in (2, 3):
            raise bad
        users, rate = answer[0], answer[1]
        if isinstance(users, bool) or not isinstance(users, (int, float)) or not isinstance(rate, (int, float)):
            raise bad
        if not (0 <= users <= MAX_USERS and rate > 0):
            raise bad
        if len(answer) == 3 and answer[2] is not None:
            raise ScenarioError(f"{self.name}.tick() names user classes; loadgen's shapes set the user count only "
                                "(the classes share it by weight)")
        return int(users), float(rate)
