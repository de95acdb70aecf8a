"""The verdict on one metric of one subject: regression, improvement or ok.

Conditions 1 (beyond the tolerance) and 2 (outside the baseline runs' spread)
are judged here; condition 3 (beyond the candidate's own sampling noise) is a
:class:`Guard` (see :mod:`loadgen.judgement.noise`) the caller passes for the metrics that
have a per-request sample to bound. See :mod:`loadgen.judgement.comparison`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "Verdict",
    "ChangeKind",
    "Metric",
    "RESPONSE_TIME",
    "ERROR_RATE",
    "THROUGHPUT",
    "CPU",
    "MEMORY",
    "QUEUE",
    "METRICS",
    "EPS",
    "Guard",
    "relative",
    "judge",
]

Verdict = Literal["ok", "regression", "improvement", "new", "missing", "insufficient data"]
ChangeKind = Literal["relative", "absolute"]


@dataclass(frozen=True, slots=True)
class Metric:
    """A compared metric: how its change is measured and which way is worse."""

    name: str  #: JSON "metric", and the key of its tolerance
    unit: str  #: JSON "unit"
    kind: ChangeKind
    higher_is_worse: bool
    label: str  #: for people; latency is labelled by the compared percentile instead
    #: a per-request sample backs it, so condition 3 (the noise guard) applies
    sampled: bool = False
    floor: float = 0.0  #: an absolute change smaller than this never counts (queue length: 1 message)


RESPONSE_TIME = Metric("response_time", "ms", "relative", True, "latency", sampled=True)
ERROR_RATE = Metric("error_rate", "fraction", "absolute", True, "error rate", sampled=True)
THROUGHPUT = Metric("throughput", "req/s", "relative", False, "throughput")
CPU = Metric("cpu_usage", "percent", "relative", True, "CPU")
MEMORY = Metric("memory_usage", "bytes", "relative", True, "memory")
QUEUE = Metric("queue_length", "messages", "relative", True, "queue length", floor=1.0)

#: Metric names as they appear in rows (and as tolerance keys); the first three are per endpoint.
METRICS = tuple(m.name for m in (RESPONSE_TIME, ERROR_RATE, THROUGHPUT, CPU, MEMORY, QUEUE))

EPS = 1e-9  # changes are compared with this slack, so +20 % exactly is not "more than" 20 %


class Guard(Protocol):
    """Condition 3 for one row, given (regression?, baseline median, tolerance): None when the
    change is confirmed, else the "within noise: …" note that makes the row ok."""

    def __call__(self, regression: bool, median: float, tolerance: float, /) -> str | None: ...


def relative(base: float, cand: float) -> float:
    """``cand`` against ``base`` (0.2 = +20 %); from a baseline of 0: 0 or an infinite change."""
    if base == 0:
        return 0.0 if cand == 0 else math.copysign(math.inf, cand)
    return (cand - base) / abs(base)


def _spread_notes(m: Metric, base: Sequence[float], cand: float, noise: bool) -> tuple[bool, bool, list[str]]:
    """Condition 2 both ways: (worse than every baseline run, better than every one, notes)."""
    if len(base) == 1:
        # The comparison as a whole may have a noise estimate while this subject does not.
        return True, True, ["no noise estimate (1 baseline run)"] if noise else []
    lo, hi = min(base), max(base)
    if m.higher_is_worse:
        return cand > hi, cand < lo, []
    return cand < lo, cand > hi, []


def judge(
    m: Metric, base: Sequence[float], cand: float, tolerance: float, noise: bool, guard: Guard | None = None
) -> tuple[Verdict, float, list[str]]:
    """Verdict, change and notes for one metric of one subject (see :mod:`loadgen.judgement.comparison`)."""
    med = statistics.median(base)
    change = cand - med if m.kind == "absolute" else relative(med, cand)
    worse_by = change if m.higher_is_worse else -change  # > 0: worse than the median
    beyond_worse = worse_by > tolerance + EPS
    beyond_better = -worse_by > tolerance + EPS
    notes: list[str] = []
    if m.floor and abs(cand - med) < m.floor and (beyond_worse or beyond_better):
        beyond_worse = beyond_better = False
        notes.append(f"change below the {m.floor:g}-{m.unit.rstrip('s')} floor")
    outside_worse, outside_better, spread = _spread_notes(m, base, cand, noise)
    notes += spread
    if math.isinf(change):
        notes.append("baseline is 0")
    cases: tuple[tuple[Verdict, bool, bool], ...] = (
        ("regression", beyond_worse, outside_worse),
        ("improvement", beyond_better, outside_better),
    )
    for verdict, beyond, outside in cases:
        if beyond and outside:
            within_noise = guard(verdict == "regression", med, tolerance) if guard is not None else None
            if within_noise is None:
                return verdict, change, notes
            notes.append(within_noise)
            return "ok", change, notes
    if beyond_worse or beyond_better:
        notes.append("beyond the threshold but within the baseline runs' spread")
    return "ok", change, notes
