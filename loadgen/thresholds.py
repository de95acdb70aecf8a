"""Pass/fail criteria on a run, checked at its end and, for ``--abort-on-fail``, every second.

A threshold is a one-line condition in k6's spirit: ``p95<300ms``,
``error_rate<1%``, ``GET /api/content: p99<=1s``, ``checks>99%``,
``failed_iterations==0`` (iterations that raised, ``on_start`` included; scoped by task
as in ``ContentUser.login: failed_iterations==0``), ``iteration_failure_rate<1%``. The CLI takes
them from ``--threshold`` (repeatable) or a scenario's
``options = {"thresholds": [...]}``; a failed one makes the run exit with
:data:`loadgen.errors.EXIT_FAILED`.

Why these choices:

* Values are normalised when parsed (latencies to milliseconds, rates to
  fractions), with :class:`decimal.Decimal` arithmetic, so ``1.1s`` is exactly
  ``1100.0`` ms and ``p95==1100ms`` means what it says.
* Latency figures come from :func:`loadgen.histogram.summarize_ms` -- the very
  function the summary table and the JSON document use -- whenever it reports
  the statistic asked for, so a threshold can never disagree with the numbers
  printed next to it. Other percentiles use
  :func:`~loadgen.histogram.percentile_us`, clamped into [min, max] the same way.
* A threshold that has nothing to judge does not pass silently at the end of a
  run: an endpoint scope with no requests (most often a typo), a latency with
  no timed responses, a check rate with no checks all *fail* when
  ``final=True``. During the run they are only "not decided yet".
* Counts only grow during a run, so a mid-run ``requests>1000`` is not failed
  merely because the run is young, while ``errors<10`` is failed for good as
  soon as the tenth error lands; the average rate (``rps``) is judged at the
  end only. Latency and rate thresholds are judged as they stand, as k6 does.
  Without this, ``--abort-on-fail`` would stop every run at its first second.
* Evaluation works on the cumulative totals the recorder keeps anyway
  (:class:`loadgen.recorder.Totals`), so checking a handful of thresholds once
  a second costs a few histogram scans and nothing per request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.markup import escape

from . import histogram as hdr
from .errors import UsageError
from .recorder import Endpoint, EndpointInterval, IntervalSnapshot, Recorder

if TYPE_CHECKING:  # the engine imports far more than thresholds need at run time
    from .engine import Engine

__all__ = [
    "Threshold",
    "ThresholdResult",
    "ThresholdSink",
    "parse_threshold",
    "parse_thresholds",
    "evaluate",
    "render",
    "results_to_json",
    "OPERATORS",
]

Op = Literal["<", "<=", ">", ">=", "==", "!="]
Kind = Literal["latency", "rate", "count", "rps"]

#: Comparison operators, longest first so that ``<=`` is never read as ``<``.
OPERATORS: tuple[Op, ...] = ("<=", ">=", "==", "!=", "<", ">")
_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
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
_METHOD_RE = re.compile(r"^([A-Z]+)\s+(\S.*)$")


@dataclass(frozen=True)
class Threshold:
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

    def __str__(self) -> str:
        return self.expr


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold judged against the run so far.

    ``actual`` is in the units of ``threshold.value`` (ms, fraction, count,
    req/s), or None when there was nothing to measure. ``pending`` is True
    when, mid-run, the outcome is not decided yet (no data so far, a count
    still short of a lower bound, the average rate): such a result has
    ``passed`` True because it is not failing, and it never is pending when
    evaluated with ``final=True``.
    """

    threshold: Threshold
    actual: float | None
    passed: bool
    detail: str
    pending: bool = False


# -- parsing -------------------------------------------------------------------


def _bad(expr: str, what: str) -> UsageError:
    return UsageError(f"threshold {expr!r} {what}")


def parse_threshold(text: str) -> Threshold:
    """Parse ``[ENDPOINT:] METRIC OP VALUE``; raise :class:`UsageError` in one sentence if it is wrong.

    The endpoint scope is split off at the *last* colon, because request names
    may hold colons (``GET http://host:8080/x: p95<1s``) while conditions never do.
    """
    if not isinstance(text, str):
        raise UsageError(f"a threshold must be a string such as 'p95<300ms', not {type(text).__name__} {text!r}")
    expr = text.strip()
    if not expr:
        raise UsageError("a threshold is empty; write one such as 'p95<300ms'")
    scope_text, colon, body = expr.rpartition(":")
    endpoint: str | None = None
    if colon:
        endpoint = scope_text.strip()
        if not endpoint:
            raise _bad(expr, "has a colon but no endpoint before it; write 'GET /path: p95<300ms' or drop the colon")
        body = body.strip()
        if not body:
            raise _bad(expr, "has no condition after the endpoint; write it as 'ENDPOINT: p95<300ms'")
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
    metric, percentile, kind = _parse_metric(expr, metric_text)
    if endpoint is not None and metric in _RUN_WIDE_ONLY:
        raise _bad(expr, f"scopes {metric} to an endpoint, but {metric} count the run as a whole; drop '{endpoint}:'")
    value = _parse_value(expr, metric, kind, value_text)
    return Threshold(expr=expr, endpoint=endpoint, metric=metric, op=op, value=value, percentile=percentile)  # type: ignore[arg-type]


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
    pf = float(p)
    return f"p{p.normalize():f}", pf, "latency"


def _parse_value(expr: str, metric: str, kind: Kind, text: str) -> float:
    value = _parse_number(expr, metric, kind, text)
    if not math.isfinite(value):
        raise _bad(expr, f"has value {text!r}, which is too large")
    return value


def _parse_number(expr: str, metric: str, kind: Kind, text: str) -> float:
    m = _NUMBER_RE.match(text)
    if m is None:
        raise _bad(expr, f"has value {text!r}, which does not start with a number")
    number = Decimal(m["num"])
    unit = m["unit"].strip()
    if number < 0:
        raise _bad(expr, f"has a negative value {text!r}")
    if kind == "latency":
        if unit == "%":
            raise _bad(expr, f"gives a percentage for the latency {metric}; give a time such as 300ms, 1.5s or 800us")
        factor = _MS_PER_UNIT.get(unit)
        if factor is None:
            raise _bad(expr, f"has unknown time unit {unit!r}; use ms, s or us (a bare number is milliseconds)")
        return float(number * factor)
    if kind == "rate":
        if unit == "%":
            if number > 100:
                raise _bad(expr, f"has rate {text!r} above 100%")
            return float(number / 100)
        if unit:
            raise _bad(expr, f"gives {metric} a unit {unit!r}; write a percentage such as 1% or a fraction such as 0.01")
        if number > 1:
            raise _bad(expr, f"has rate {text!r} above 1; write a percentage such as {number}% or a fraction up to 1")
        return float(number)
    if kind == "rps":
        if unit not in ("", "/s"):
            raise _bad(expr, f"gives rps a unit {unit!r}; write requests per second as a plain number such as 50")
        return float(number)
    # counts
    if unit == "%":
        hint = "; error_rate is the share of errors" if metric == "errors" else ""
        raise _bad(expr, f"gives a percentage for the count {metric}, which is a plain number{hint}")
    if unit:
        raise _bad(expr, f"gives the count {metric} a unit {unit!r}; counts are plain whole numbers")
    if number != number.to_integral_value():
        raise _bad(expr, f"compares the count {metric} with {text!r}, which is not a whole number")
    return float(number)


def parse_thresholds(items: Iterable[str]) -> tuple[Threshold, ...]:
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
        out.append(parse_threshold(item))
    return tuple(out)


# -- evaluation ------------------------------------------------------------------


class _View:
    """What one scope (the whole run, an endpoint key, or a name over all methods) did so far.

    Built per :func:`evaluate` call and shared by the thresholds of that scope;
    the histogram merge and the summary are computed only when a threshold asks.
    """

    def __init__(self, recorder: Recorder, endpoint: str | None) -> None:
        self.endpoint = endpoint
        tot = recorder.totals
        if endpoint is None:
            self._intervals: Sequence[EndpointInterval] = (tot.overall,)
            self._endpoints: Sequence[Endpoint] = tuple(recorder.endpoints())
            return
        live = tuple(recorder.endpoints())
        key = _key_form(endpoint)
        if key in tot.endpoints or any(ep.key == key for ep in live):
            # An exact "METHOD name" key wins over a request name that happens to read the same.
            found = tot.endpoints.get(key)
            self._intervals = (found,) if found is not None else ()
            self._endpoints = tuple(ep for ep in live if ep.key == key)
        else:
            self._intervals = tuple(ei for ei in tot.endpoints.values() if ei.name == endpoint)
            self._endpoints = tuple(ep for ep in live if ep.name == endpoint)

    @cached_property
    def requests(self) -> int:
        return sum(ei.requests for ei in self._intervals)

    @cached_property
    def errors(self) -> int:
        return sum(ei.errors for ei in self._intervals)

    @cached_property
    def latency(self) -> HdrHistogram:
        if len(self._intervals) == 1:
            return self._intervals[0].latency
        merged = hdr.new_histogram()
        for ei in self._intervals:
            hdr.merge(merged, ei.latency)
        return merged

    @cached_property
    def summary(self) -> dict[str, float]:
        return hdr.summarize_ms(self.latency)

    @cached_property
    def checks(self) -> tuple[int, int]:
        passes = fails = 0
        for ep in self._endpoints:
            for p, f in ep.checks.values():
                passes += p
                fails += f
        return passes, fails


def _key_form(endpoint: str) -> str:
    """``"GET   /x"`` -> ``"GET /x"``: the recorder's key spacing, for a scope typed loosely."""
    m = _METHOD_RE.match(endpoint)
    return f"{m[1]} {m[2]}" if m else endpoint


def evaluate(
    thresholds: Iterable[Threshold], recorder: Recorder, elapsed_s: float, *, final: bool
) -> list[ThresholdResult]:
    """Judge each threshold on the recorder's cumulative totals (``recorder.totals``).

    ``elapsed_s`` is the time the load was applied so far (the summary's ``load_s``,
    ``RunResult.schedule_s``, at the end; an interval's ``end_s`` during the run);
    ``rps`` is requests over it, as in the summary.
    With ``final=False`` a result only fails when the run so far already fails
    it in a way the rest of the run cannot undo for counts, or as it stands for
    latencies and rates; see the module docstring.
    """
    views: dict[str | None, _View] = {}
    out = []
    for t in thresholds:
        if t.metric in _TASK_SCOPED:  # scoped by task, not endpoint
            out.append(_judge_failed_iterations(t, recorder, final))
            continue
        view = views.get(t.endpoint)
        if view is None:
            view = views[t.endpoint] = _View(recorder, t.endpoint)
        out.append(_judge(t, view, recorder, elapsed_s, final))
    return out


def _judge_failed_iterations(t: Threshold, recorder: Recorder, final: bool) -> ThresholdResult:
    """Iterations that ended in an exception (on_start included), of one task or all.

    The rate divides by the iterations started plus the failed ``on_start`` runs (a user
    whose login fails starts no iteration, and that must not read as no data)."""
    tot = recorder.totals
    failed = tot.failed_iterations
    on_start = sum(n for task, n in failed.items() if task.endswith(".on_start"))
    if t.endpoint is None:
        n = sum(failed.values())
    else:
        n = failed.get(t.endpoint, 0)
    on = f" of {t.endpoint}" if t.endpoint is not None else ""
    if t.metric == "failed_iterations":
        return _compare(t, float(n), f"failed_iterations{on} = {n:,}", final)
    attempts = tot.iterations + on_start
    if attempts == 0:
        return _no_data(t, "no iterations", final)
    actual = n / attempts
    return _compare(t, actual, f"iteration_failure_rate{on} = {actual:.2%} ({n:,} of {attempts:,})", final)


def _judge(t: Threshold, view: _View, recorder: Recorder, elapsed_s: float, final: bool) -> ThresholdResult:
    where = f" to {t.endpoint}" if t.endpoint is not None else ""
    if t.endpoint is not None and view.requests == 0:
        return _no_data(t, f"no requests to {t.endpoint}", final)
    kind = t.kind
    metric = t.metric
    if kind == "latency":
        if view.requests == 0:
            return _no_data(t, "no requests", final)
        hist = view.latency
        if not hist.total_count:
            return _no_data(t, f"no timed responses{where}", final)
        # Percentiles clamp exactly as the summary's do, so a threshold equals the printed figure.
        actual = hdr.percentile_ms(hist, t.percentile) if t.percentile is not None else view.summary[metric]
        return _compare(t, actual, f"{metric} = {_num(actual)} ms", final)
    if metric == "error_rate":
        n = view.requests
        if n == 0:
            return _no_data(t, "no requests", final)
        actual = view.errors / n
        return _compare(t, actual, f"error_rate = {actual:.2%} ({view.errors:,} of {n:,})", final)
    if metric == "checks":
        passes, fails = view.checks
        if passes + fails == 0:
            on = f" on {t.endpoint}" if t.endpoint is not None else ""
            return _no_data(t, f"no checks ran{on}", final)
        actual = passes / (passes + fails)
        return _compare(t, actual, f"checks = {actual:.2%} ({passes:,} of {passes + fails:,} passed)", final)
    if metric == "rps":
        if elapsed_s <= 0:
            return _no_data(t, "no time elapsed", final)
        actual = view.requests / elapsed_s
        return _compare(t, actual, f"rps = {actual:,.2f}/s", final)
    tot = recorder.totals
    count = {
        "requests": lambda: view.requests,
        "errors": lambda: view.errors,
        "iterations": lambda: tot.iterations,
        "dropped_iterations": lambda: tot.dropped_iterations,
    }[metric]()
    return _compare(t, float(count), f"{metric} = {count:,}", final)


def _no_data(t: Threshold, detail: str, final: bool) -> ThresholdResult:
    # At the end, nothing to judge is a failure: a typo in a scope must not pass.
    if final:
        return ThresholdResult(t, None, False, detail)
    return ThresholdResult(t, None, True, f"{detail} yet", pending=True)


def _compare(t: Threshold, actual: float, detail: str, final: bool) -> ThresholdResult:
    passed = _COMPARE[t.op](actual, t.value)
    if final or passed:
        return ThresholdResult(t, actual, passed, detail)
    kind = t.kind
    if kind == "rps":
        # The average rate drifts with ramps and spikes: only the whole run decides it.
        return ThresholdResult(t, actual, True, f"{detail} so far", pending=True)
    if kind == "count":
        # Counts only grow: an upper bound crossed stays crossed, a lower bound may yet be reached.
        decided = t.op in ("<", "<=") or (t.op == "==" and actual > t.value)
        if not decided:
            return ThresholdResult(t, actual, True, f"{detail} so far", pending=True)
    return ThresholdResult(t, actual, False, detail)


def _num(v: float) -> str:
    """A millisecond figure to the µs the histograms resolve, without trailing zeros."""
    s = f"{v:,.3f}".rstrip("0").rstrip(".")
    return s or "0"


# -- abort on fail -----------------------------------------------------------------


class ThresholdSink:
    """An engine sink for ``--abort-on-fail``: stop the run at the first failed threshold.

    Once a second (it is called with each interval snapshot, never per
    request) it evaluates the thresholds with ``final=False`` on the engine's
    recorder. At the first failure it warns, keeps the failing results
    (``aborted`` the first, ``failures`` all of that interval, ``aborted_at_s``
    when) and calls ``engine.stop()``, which lets in-flight requests finish
    within the graceful stop. It never judges the snapshot emitted after the
    run has already stopped: that run was not aborted, and the final
    evaluation reports its outcome.
    """

    def __init__(self, thresholds: Iterable[Threshold]) -> None:
        self.thresholds: tuple[Threshold, ...] = tuple(thresholds)
        self.aborted: ThresholdResult | None = None
        self.failures: tuple[ThresholdResult, ...] = ()
        self.aborted_at_s: float | None = None

    def __call__(self, snap: IntervalSnapshot, engine: Engine) -> None:
        if self.aborted is not None or not self.thresholds or engine.stopping:
            return
        results = evaluate(self.thresholds, engine.recorder, snap.end_s, final=False)
        failed = tuple(r for r in results if not r.passed)
        if not failed:
            return
        first = failed[0]
        self.aborted, self.failures, self.aborted_at_s = first, failed, snap.end_s
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        engine.warnings.append(
            f"threshold {first.threshold.expr} failed at {snap.end_s:.0f}s ({first.detail}){more}: run aborted"
        )
        engine.stop()


# -- reporting ----------------------------------------------------------------------


def render(results: Iterable[ThresholdResult], console: Console) -> None:
    """One line per threshold: a mark, the expression as written, and what was measured."""
    for r in results:
        if r.pending:
            mark = "[yellow]…[/yellow]"
        elif r.passed:
            mark = "[green]✓[/green]"
        else:
            mark = "[bold red]✗[/bold red]"
        console.print(f"{mark} {escape(r.threshold.expr)}  [dim]{escape(r.detail)}[/dim]", highlight=False)


def results_to_json(results: Iterable[ThresholdResult]) -> list[dict[str, Any]]:
    """The summary document's ``thresholds`` list.

    ``value`` and ``actual`` are in normalised units: ms for latencies, a
    fraction for ``error_rate`` and ``checks``, req/s for ``rps``; ``actual``
    is null when there was nothing to measure.
    """
    return [
        {
            "expr": r.threshold.expr,
            "endpoint": r.threshold.endpoint,
            "metric": r.threshold.metric,
            "op": r.threshold.op,
            "value": r.threshold.value,
            "actual": r.actual,
            "passed": r.passed,
        }
        for r in results
    ]
