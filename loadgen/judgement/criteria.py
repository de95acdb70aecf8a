"""In-run pass/fail criteria: what ``--threshold`` and a scenario's ``thresholds`` hold.

A criterion is a one-line condition in k6's spirit (users call it a
*threshold*, as k6 does, and every message says so): ``p95<300ms``,
``error_rate<1%``, ``GET /api/content: p99<=1s``, ``checks>99%``,
``failed_iterations==0`` (iterations that raised, ``on_start`` included; scoped by task
as in ``ContentUser.login: failed_iterations==0``), ``iteration_failure_rate<1%``. The CLI takes
them from ``--threshold`` (repeatable) or a scenario's
``options = {"thresholds": [...]}``; a failed one makes the run exit with
:data:`loadgen.errors.EXIT_FAILED`. They are judged by
:mod:`loadgen.judgement.evaluation`.

Values are normalised when parsed (latencies to milliseconds, rates to
fractions), with :class:`decimal.Decimal` arithmetic, so ``1.1s`` is exactly
``1100.0`` ms and ``p95==1100ms`` means what it says.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from ..errors import UsageError

__all__ = ["Criterion", "Op", "Kind", "OPERATORS", "parse_criterion", "parse_criteria"]

Op = Literal["<", "<=", ">", ">=", "==", "!="]
Kind = Literal["latency", "rate", "count", "rps"]

#: Comparison operators, longest first so that ``<=`` is never read as ``<``.
OPERATORS: tuple[Op, ...] = ("<=", ">=", "==", "!=", "<", ">")
_HOLDS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_LATENCY_WORDS = {"avg": "mean", "mean": "mean", "min": "min", "max": "max", "med": "p50"}
_KINDS: dict[str, Kind] = {
    "error_rate": "rate",
    "checks": "rate",
    "errors": "count",
    "requests": "count",
    "iterations": "count",
    "dropped_iterations": "count",
    "failed_iterations": "count",
    "iteration_failure_rate": "rate",
    "rps": "rps",
}
#: Metrics of the run as a whole: an iteration belongs to no single endpoint.
_RUN_WIDE_ONLY = frozenset({"iterations", "dropped_iterations"})
#: Metrics of failed iterations: their scope, if any, is a task (``ContentUser.login:``,
#: or ``ContentUser.on_start:``), as the summary's ``failed_iterations.by_task`` names it.
_TASK_SCOPED = frozenset({"failed_iterations", "iteration_failure_rate"})
# Milliseconds per unit; a bare number is milliseconds, as in k6. Both the micro
# sign (U+00B5) and the Greek mu (U+03BC) are accepted: keyboards give either.
_MS_PER_UNIT = {
    "": Decimal(1),
    "ms": Decimal(1),
    "s": Decimal(1000),
    "us": Decimal("0.001"),
    "\u00b5s": Decimal("0.001"),
    "\u03bcs": Decimal("0.001"),
}

_METRICS_HINT = (
    "p95, p(97.5), avg, min, max, med, error_rate, errors, requests, rps, iterations, dropped_iterations, "
    "failed_iterations, iteration_failure_rate or checks"
)
_OPS_HINT = "<, <=, >, >=, == or !="
_BODY_RE = re.compile(r"^(?P<metric>.*?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>.*)$", re.DOTALL)
_PERCENTILE_RE = re.compile(r"^p\s*(?:\(\s*(?P<paren>[^)]*?)\s*\)|(?P<bare>\S+))$")
_NUMBER_RE = re.compile(r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?)\s*(?P<unit>.*)$")


@dataclass(frozen=True)
class Criterion:
    """One parsed condition.

    ``value`` is normalised: milliseconds for latency metrics, a fraction for
    ``error_rate``, ``iteration_failure_rate`` and ``checks``, requests per second for ``rps``, a plain
    number for counts. ``metric`` is canonical: ``p95``, ``p99.9``, ``p97.5``,
    ``mean`` (for avg and mean), ``p50`` (for med), ``min``, ``max``, or the
    count and rate names as written. ``expr`` is the user's text (stripped) so
    reports quote exactly what was asked for.
    """

    expr: str
    endpoint: str | None
    metric: str
    op: Op
    value: float
    percentile: float | None = None  # for percentile metrics, e.g. 97.5

    @property
    def kind(self) -> Kind:
        """``latency``, ``rate``, ``count`` or ``rps``: how the value is read and judged."""
        return "latency" if self.metric in ("mean", "min", "max") or self.percentile is not None else _KINDS[self.metric]

    @property
    def task_scoped(self) -> bool:
        """Failed iterations: ``endpoint`` names a task, not an endpoint."""
        return self.metric in _TASK_SCOPED

    def holds(self, actual: float) -> bool:
        """Whether ``actual`` (in the units of ``value``) meets the condition."""
        return _HOLDS[self.op](actual, self.value)

    def __str__(self) -> str:
        return self.expr


def _bad(expr: str, what: str) -> UsageError:
    return UsageError(f"threshold {expr!r} {what}")


def _split_scope(expr: str) -> tuple[str | None, str]:
    """(endpoint or task scope, condition), split at the *last* colon: request names may hold
    colons (``GET http://host:8080/x: p95<1s``) while conditions never do."""
    scope_text, colon, body = expr.rpartition(":")
    if not colon:
        return None, body
    endpoint = scope_text.strip()
    if not endpoint:
        raise _bad(expr, "has a colon but no endpoint before it; write 'GET /path: p95<300ms' or drop the colon")
    body = body.strip()
    if not body:
        raise _bad(expr, "has no condition after the endpoint; write it as 'ENDPOINT: p95<300ms'")
    return endpoint, body


def _split_condition(expr: str, body: str) -> tuple[str, Op, str]:
    """(metric text, operator, value text) of ``METRIC OP VALUE``."""
    m = _BODY_RE.match(body)
    if m is None:
        if "=" in body:
            raise _bad(expr, "uses '=', which is not a comparison; write '==' (or <, <=, >, >=, !=)")
        raise _bad(expr, f"has no comparison operator; use {_OPS_HINT}, as in 'p95<300ms'")
    metric_text, op, value_text = m["metric"].strip(), m["op"], m["value"].strip()
    if not metric_text:
        raise _bad(expr, f"names no metric before {op!r}; use {_METRICS_HINT}")
    if metric_text[-1] in "=!":
        raise _bad(expr, f"has a malformed comparison operator; use {_OPS_HINT}")
    if not value_text:
        raise _bad(expr, f"has no value after {op!r}")
    return metric_text, op, value_text  # type: ignore[return-value]  # the regex admits only Op


def parse_criterion(text: str) -> Criterion:
    """Parse ``[ENDPOINT:] METRIC OP VALUE``; raise :class:`UsageError` in one sentence if it is wrong."""
    if not isinstance(text, str):
        raise UsageError(f"a threshold must be a string such as 'p95<300ms', not {type(text).__name__} {text!r}")
    expr = text.strip()
    if not expr:
        raise UsageError("a threshold is empty; write one such as 'p95<300ms'")
    endpoint, body = _split_scope(expr)
    metric_text, op, value_text = _split_condition(expr, body)
    metric, percentile, kind = _parse_metric(expr, metric_text)
    if endpoint is not None and metric in _RUN_WIDE_ONLY:
        raise _bad(expr, f"scopes {metric} to an endpoint, but {metric} count the run as a whole; drop '{endpoint}:'")
    value = _parse_value(expr, metric, kind, value_text)
    return Criterion(expr=expr, endpoint=endpoint, metric=metric, op=op, value=value, percentile=percentile)


def _parse_metric(expr: str, text: str) -> tuple[str, float | None, Kind]:
    word = text.lower()
    if word in _LATENCY_WORDS:
        metric = _LATENCY_WORDS[word]
        return metric, (50.0 if metric == "p50" else None), "latency"
    if word in _KINDS:
        return word, None, _KINDS[word]
    m = _PERCENTILE_RE.match(word)
    if m is None:
        raise _bad(expr, f"uses unknown metric {text!r}; use {_METRICS_HINT}")
    raw = m["paren"] if m["paren"] is not None else m["bare"]
    try:
        p = Decimal(raw)
    except InvalidOperation:
        if m["paren"] is None:  # "perc", "peak": not a percentile at all
            raise _bad(expr, f"uses unknown metric {text!r}; use {_METRICS_HINT}") from None
        raise _bad(expr, f"has percentile {text!r}, which is not a number; write p95, p99.9 or p(97.5)") from None
    if raw == "999" and m["bare"] is not None:
        p = Decimal("99.9")  # the summary document's name for p99.9
    if not p.is_finite() or not 0 <= p <= 100:
        raise _bad(expr, f"has percentile {text!r} outside 0 to 100; write p95, p99.9 or p(99.99)")
    return f"p{p.normalize():f}", float(p), "latency"


def _parse_value(expr: str, metric: str, kind: Kind, text: str) -> float:
    m = _NUMBER_RE.match(text)
    if m is None:
        raise _bad(expr, f"has value {text!r}, which does not start with a number")
    number = Decimal(m["num"])
    unit = m["unit"].strip()
    if number < 0:
        raise _bad(expr, f"has a negative value {text!r}")
    value = _VALUE_PARSERS[kind](expr, metric, number, unit, text)
    if not math.isfinite(value):
        raise _bad(expr, f"has value {text!r}, which is too large")
    return value


def _latency_value(expr: str, metric: str, number: Decimal, unit: str, text: str) -> float:
    if unit == "%":
        raise _bad(expr, f"gives a percentage for the latency {metric}; give a time such as 300ms, 1.5s or 800us")
    factor = _MS_PER_UNIT.get(unit)
    if factor is None:
        raise _bad(expr, f"has unknown time unit {unit!r}; use ms, s or us (a bare number is milliseconds)")
    return float(number * factor)


def _rate_value(expr: str, metric: str, number: Decimal, unit: str, text: str) -> float:
    if unit == "%":
        if number > 100:
            raise _bad(expr, f"has rate {text!r} above 100%")
        return float(number / 100)
    if unit:
        raise _bad(expr, f"gives {metric} a unit {unit!r}; write a percentage such as 1% or a fraction such as 0.01")
    if number > 1:
        raise _bad(expr, f"has rate {text!r} above 1; write a percentage such as {number}% or a fraction up to 1")
    return float(number)


def _rps_value(expr: str, metric: str, number: Decimal, unit: str, text: str) -> float:
    if unit not in ("", "/s"):
        raise _bad(expr, f"gives rps a unit {unit!r}; write requests per second as a plain number such as 50")
    return float(number)


def _count_value(expr: str, metric: str, number: Decimal, unit: str, text: str) -> float:
    if unit == "%":
        hint = "; error_rate is the share of errors" if metric == "errors" else ""
        raise _bad(expr, f"gives a percentage for the count {metric}, which is a plain number{hint}")
    if unit:
        raise _bad(expr, f"gives the count {metric} a unit {unit!r}; counts are plain whole numbers")
    if number != number.to_integral_value():
        raise _bad(expr, f"compares the count {metric} with {text!r}, which is not a whole number")
    return float(number)


_VALUE_PARSERS: dict[Kind, Callable[[str, str, Decimal, str, str], float]] = {
    "latency": _latency_value,
    "rate": _rate_value,
    "rps": _rps_value,
    "count": _count_value,
}


def parse_criteria(items: Iterable[str]) -> tuple[Criterion, ...]:
    """Parse every expression, in order.

    ``items`` is what ``--threshold`` collects or a scenario's
    ``options["thresholds"]``, which must be a list of strings: a bare string
    (which would otherwise be read character by character), a mapping, or
    anything else is refused with a :class:`UsageError`.
    """
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise UsageError(
            f"thresholds must be a list of strings such as ['p95<300ms', 'error_rate<1%'], not {type(items).__name__}"
        )
    out = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"thresholds must be a list of strings, but it holds {type(item).__name__} {item!r}")
        out.append(parse_criterion(item))
    return tuple(out)
