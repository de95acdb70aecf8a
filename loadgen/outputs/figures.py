"""The figures of the findings as people read them, the same in the markdown, in JUnit and
in the notifications: a threshold's actual value and limit in its unit, a compared metric's
cells exactly as ``loadgen compare`` prints them (:mod:`loadgen.judgement.render`)."""

from __future__ import annotations

import dataclasses
import re

from ..findings import MetricChange, ThresholdResult
from ..judgement import render
from ..judgement.comparison import ComparisonRow
from ..judgement.criteria import OPERATORS

__all__ = ["as_row", "change", "tolerance", "number", "value", "movement", "describe", "unit_heading",
           "threshold_value", "threshold_limit", "threshold_outcome", "threshold_subject"]

_LATENCY = re.compile(r"p\d+(?:\.\d+)?|mean|min|max")
_RATES = frozenset({"error_rate", "checks", "iteration_failure_rate"})


def as_row(c: MetricChange) -> ComparisonRow:
    """The comparison row a compared metric came from, for :mod:`~loadgen.judgement.render`'s cells
    (``from_json`` also restores a change "from 0", which the summary document stores as null)."""
    return ComparisonRow.from_json({**dataclasses.asdict(c), "baseline_min": None, "baseline_max": None})


# A summary read from a database may carry a unit this version does not know: its
# figures are then shown bare rather than not at all.
def number(unit: str, v: float | None) -> str:
    """A table cell in the unit its heading names (``–`` for none)."""
    try:
        return render.number(unit, v)
    except KeyError:
        return "–" if v is None else render.sig(v)


def value(unit: str, v: float | None) -> str:
    """A figure with its unit: ``12.1 ms``, ``0.41 %``."""
    try:
        return render.value(unit, v)
    except KeyError:
        return "–" if v is None else f"{render.sig(v)} {unit}".rstrip()


def unit_heading(unit: str) -> str:
    try:
        return render.unit_heading(unit)
    except KeyError:
        return unit


def change(c: MetricChange) -> str:
    """``+156 %``, ``+1.50 pp``, ``from 0`` or ``–``."""
    return render.change_text(as_row(c))


def tolerance(c: MetricChange) -> str:
    """``+20 %``, ``-20 %`` (throughput), ``+1.00 pp`` (the error rate)."""
    return render.tolerance_text(as_row(c))


def movement(c: MetricChange) -> str:
    """``12.1 ms → 31.0 ms (+156 %, threshold +20 %)``: baseline, candidate, change and tolerance."""
    return f"{value(c.unit, c.baseline)} → {value(c.unit, c.candidate)} ({change(c)}, threshold {tolerance(c)})"


def describe(c: MetricChange) -> str:
    """``p95 of GET /x 12.1 ms → 31.0 ms (+156 %, threshold +20 %)``, as ``loadgen compare`` says it."""
    return f"{c.label} of {c.subject} {movement(c)}"


# --- thresholds (their values are normalised: ms, a fraction, req/s, a count) ---------


def _kind(metric: str) -> str:
    if _LATENCY.fullmatch(metric):
        return "ms"
    if metric in _RATES:
        return "fraction"
    return "req/s" if metric == "rps" else "count"


def _plain(v: float) -> str:
    """A limit as the user is likely to have written it: ``100``, ``0.5``, ``1,000``."""
    return f"{int(v):,}" if v.is_integer() and abs(v) < 1e15 else f"{v:,.6g}"


def threshold_value(t: ThresholdResult) -> str:
    """What was measured, in the threshold's unit: ``123 ms``, ``0.41 %``, ``20.5 req/s``, ``3``."""
    if t.actual is None:
        return "–"
    kind = _kind(t.metric)
    return _plain(t.actual) if kind == "count" else value(kind, t.actual)


def threshold_limit(t: ThresholdResult) -> str:
    """The condition: ``< 100 ms``, ``<= 1 %``, ``>= 20 req/s``, ``== 0``."""
    kind = _kind(t.metric)
    if kind == "ms":
        shown = f"{_plain(t.value)} ms"
    elif kind == "fraction":
        shown = f"{_plain(round(100 * t.value, 9))} %"
    elif kind == "req/s":
        shown = f"{_plain(t.value)} req/s"
    else:
        shown = _plain(t.value)
    op = t.op if t.op in OPERATORS else "?"  # a stored summary is read, not trusted
    return f"{op} {shown}"


def threshold_subject(t: ThresholdResult) -> str:
    """``p95``, or ``p95 of GET /x`` for a threshold scoped to an endpoint (or a task)."""
    return f"{t.metric} of {t.endpoint}" if t.endpoint else t.metric


def threshold_outcome(t: ThresholdResult) -> str:
    """One sentence: ``p95 was 123 ms, the limit is < 100 ms`` (or that nothing was measured)."""
    if t.actual is None:
        why = "" if t.passed else " (a threshold with nothing to judge fails)"
        return f"{threshold_subject(t)}: nothing was measured{why}"
    verb = "met" if t.passed else "not met"
    return f"{threshold_subject(t)} was {threshold_value(t)}; the limit {threshold_limit(t)} is {verb}"
