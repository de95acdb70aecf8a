"""Workloads: when iterations are *intended* to start, and how many users run.

The open model never looks at when the previous iteration finished: its
intended start times are a pure function of the schedule (and the seed), so a
stalled target cannot slow the arrivals down and hide in the numbers.

A schedule is a piecewise-linear curve of a target value over time (an
arrival rate for the open model, a user count for the closed model), given as
:class:`~loadgen.config.Stage` segments starting from zero. Zero-length stages
are instant jumps, which is how stress steps and spikes are drawn.

Arrivals of a piecewise-linear rate ``r(t)`` are placed where the cumulative
count ``N(t) = ∫ r`` crosses event numbers ``k``: ``k = 0, 1, 2, …`` for
constant spacing, and the partial sums of unit exponentials for Poisson (the
time-rescaling theorem turns a unit-rate Poisson process into one of rate
``r(t)``). Both are therefore exact, not approximated by ticks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..config import RunConfig, Stage

__all__ = [
    "Phase",
    "Shape",
    "arrival_times",
    "count_until",
    "level_at",
    "shape_for",
    "shape_of",
]


@dataclass(frozen=True)
class Phase:
    """A named part of a shaped run (a stress step, the spike), for reporting."""

    name: str
    start_s: float
    end_s: float
    target: float


@dataclass(frozen=True)
class Shape:
    """The curve a run follows, plus the named phases it is made of."""

    stages: tuple[Stage, ...]
    phases: tuple[Phase, ...] = ()

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.stages)


def _segments(stages: Sequence[Stage], start: float) -> Iterator[tuple[float, float, float, float]]:
    """Yield (t_start, duration, from, to) for each stage."""
    t = 0.0
    level = start
    for st in stages:
        yield t, st.duration_s, level, st.target
        t += st.duration_s
        level = st.target


def level_at(stages: Sequence[Stage], t: float, *, start: float = 0.0) -> float:
    """The curve's value at ``t`` seconds (the rate, or the user count)."""
    level = start
    for t0, d, a, b in _segments(stages, start):
        if t < t0 + d:
            return a + (b - a) * (t - t0) / d if d > 0 else b
        level = b
    return level


def count_until(stages: Sequence[Stage], t: float, *, start: float = 0.0) -> float:
    """``N(t)``: the integral of the rate curve from 0 to ``t``."""
    total = 0.0
    for t0, d, a, b in _segments(stages, start):
        if d <= 0:
            continue
        tau = min(max(t - t0, 0.0), d)
        total += a * tau + (b - a) * tau * tau / (2 * d)
        if t <= t0 + d:
            break
    return total


def arrival_times(
    stages: Sequence[Stage],
    *,
    poisson: bool = False,
    seed: int | None = None,
    start: float = 0.0,
) -> Iterator[float]:
    """Intended start times, in seconds from the run's start, in ascending order.

    Constant arrivals put event ``k`` (from 0) where ``N(t) = k``: a flat
    100/s gives exactly 0.00, 0.01, 0.02, … Poisson arrivals put events where
    ``N(t)`` reaches the running sum of unit exponentials drawn from
    ``random.Random(seed)``, so a seed reproduces a schedule exactly.
    """
    rng = random.Random(seed)
    expovariate = rng.expovariate
    k = expovariate(1.0) if poisson else 0.0
    base = 0.0  # N at the start of the current segment
    for t0, d, a, b in _segments(stages, start):
        if d <= 0:
            continue
        seg_total = a * d + (b - a) * d / 2
        slope = (b - a) / d
        end = base + seg_total
        if slope == 0.0:
            if a > 0:
                inv = 1.0 / a
                while k < end:
                    yield t0 + (k - base) * inv
                    k += expovariate(1.0) if poisson else 1.0
        else:
            while k < end:
                delta = k - base
                # Root of slope/2·τ² + a·τ − delta = 0, in the form that stays
                # accurate when a is 0 or slope is negative.
                disc = a * a + 2.0 * slope * delta
                tau = 2.0 * delta / (a + math.sqrt(disc if disc > 0 else 0.0)) if delta > 0 else 0.0
                yield t0 + min(tau, d)
                k += expovariate(1.0) if poisson else 1.0
        base = end


def shape_for(
    test_type: str,
    target: float,
    duration_s: float,
    *,
    ramp_s: float = 0.0,
    steps: int = 5,
) -> Shape:
    """The named shape of a test type, for a target (rate or users) and a length.

    - ``load``: ramp up over ``ramp_s`` (0 = start at the target), then hold.
    - ``stress``: ``steps`` equal steps up to the target; the engine stops at
      the step where errors or latency cross their limit.
    - ``soak``: a short ramp (5 % of the run, at most 5 min), then a long hold.
    - ``spike``: a base of a fifth of the target for 30 %, a sudden burst to
      the target for 20 %, then back to the base for the recovery.
    """
    D = duration_s
    if test_type == "load":
        ramp = min(ramp_s, D)
        stages = ((Stage(ramp, target),) if ramp > 0 else (Stage(0.0, target),)) + (
            Stage(D - ramp, target),
        )
        return Shape(stages, (Phase("ramp-up", 0, ramp, target), Phase("hold", ramp, D, target)) if ramp else (Phase("hold", 0, D, target),))
    if test_type == "stress":
        step_d = D / steps
        stages: list[Stage] = []
        phases: list[Phase] = []
        for i in range(1, steps + 1):
            level = target * i / steps
            stages += [Stage(0.0, level), Stage(step_d, level)]
            phases.append(Phase(f"step {i}", (i - 1) * step_d, i * step_d, level))
        return Shape(tuple(stages), tuple(phases))
    if test_type == "soak":
        ramp = min(0.05 * D, 300.0)
        return Shape(
            (Stage(ramp, target), Stage(D - ramp, target)),
            (Phase("ramp-up", 0, ramp, target), Phase("hold", ramp, D, target)),
        )
    if test_type == "spike":
        base = target / 5
        a, b = 0.3 * D, 0.5 * D
        return Shape(
            (
                Stage(0.0, base),
                Stage(a, base),
                Stage(0.0, target),
                Stage(b - a, target),
                Stage(0.0, base),
                Stage(D - b, base),
            ),
            (Phase("base", 0, a, base), Phase("spike", a, b, target), Phase("recovery", b, D, base)),
        )
    raise ValueError(f"unknown test type {test_type!r}")


def shape_of(config: RunConfig) -> Shape:
    """The whole run's load over time: explicit stages, else the test type's shape."""
    if config.stages:
        return Shape(config.stages)
    if config.model == "open":
        assert config.rate is not None
        return shape_for(config.test_type, config.rate, config.run_time_s)
    if config.test_type == "load":
        return shape_for("load", config.users, config.run_time_s, ramp_s=config.users / config.spawn_rate)
    return shape_for(config.test_type, config.users, config.run_time_s)
