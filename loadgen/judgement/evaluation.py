"""Judging in-run criteria on a run's cumulative totals, at its end or while it runs.

Why these choices:

* Latency figures come from :func:`loadgen.engine.histogram.summarize_ms` -- the very
  function the summary table and the JSON document use -- whenever it reports
  the statistic asked for, so a criterion can never disagree with the numbers
  printed next to it. Other percentiles use
  :func:`~loadgen.engine.histogram.percentile_ms`, clamped into [min, max] the same way.
* A criterion that has nothing to judge does not pass silently at the end of a
  run: an endpoint scope with no requests (most often a typo), a latency with
  no timed responses, a check rate with no checks all *fail* when
  ``final=True``. During the run they are only "not decided yet".
* Counts only grow during a run, so a mid-run ``requests>1000`` is not failed
  merely because the run is young, while ``errors<10`` is failed for good as
  soon as the tenth error lands; the average rate (``rps``) is judged at the
  end only. Latency and rate criteria are judged as they stand, as k6 does.
  Without this, ``--abort-on-fail`` would stop every run at its first second.
* Evaluation works on the cumulative totals the recorder keeps anyway
  (:class:`loadgen.engine.recorder.Totals`), so checking a handful of criteria once
  a second costs a few histogram scans and nothing per request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hdrh.histogram import HdrHistogram

from ..engine import histogram as hdr
from ..engine.recorder import Endpoint, EndpointInterval, Recorder
from .criteria import Criterion

__all__ = ["CriterionResult", "evaluate", "results_to_json"]

_METHOD_RE = re.compile(r"^([A-Z]+)\s+(\S.*)$")


@dataclass(frozen=True)
class CriterionResult:
    """A criterion judged against the run so far.

    ``actual`` is in the units of ``criterion.value`` (ms, fraction, count,
    req/s), or None when there was nothing to measure. ``pending`` is True
    when, mid-run, the outcome is not decided yet (no data so far, a count
    still short of a lower bound, the average rate): such a result has
    ``passed`` True because it is not failing, and it never is pending when
    evaluated with ``final=True``.
    """

    criterion: Criterion
    actual: float | None
    passed: bool
    detail: str
    pending: bool = False


class _View:
    """What one scope (the whole run, an endpoint key, or a name over all methods) did so far.

    Built per :func:`evaluate` call and shared by the criteria of that scope;
    the histogram merge and the summary are computed only when a criterion asks.
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
    criteria: Iterable[Criterion], recorder: Recorder, elapsed_s: float, *, final: bool
) -> list[CriterionResult]:
    """Judge each criterion on the recorder's cumulative totals (``recorder.totals``).

    ``elapsed_s`` is the time the load was applied so far (the summary's ``load_s``,
    ``RunResult.schedule_s``, at the end; an interval's ``end_s`` during the run);
    ``rps`` is requests over it, as in the summary.
    With ``final=False`` a result only fails when the run so far already fails
    it in a way the rest of the run cannot undo for counts, or as it stands for
    latencies and rates; see the module docstring.
    """
    views: dict[str | None, _View] = {}
    out = []
    for c in criteria:
        if c.task_scoped:
            out.append(_judge_failed_iterations(c, recorder, final))
            continue
        view = views.get(c.endpoint)
        if view is None:
            view = views[c.endpoint] = _View(recorder, c.endpoint)
        out.append(_judge(c, view, recorder, elapsed_s, final))
    return out


def _judge_failed_iterations(c: Criterion, recorder: Recorder, final: bool) -> CriterionResult:
    """Iterations that ended in an exception (on_start included), of one task or all.

    The rate divides by the iterations started plus the failed ``on_start`` runs (a user
    whose login fails starts no iteration, and that must not read as no data)."""
    tot = recorder.totals
    failed = tot.failed_iterations
    on_start = sum(n for task, n in failed.items() if task.endswith(".on_start"))
    n = sum(failed.values()) if c.endpoint is None else failed.get(c.endpoint, 0)
    on = f" of {c.endpoint}" if c.endpoint is not None else ""
    if c.metric == "failed_iterations":
        return _outcome(c, float(n), f"failed_iterations{on} = {n:,}", final)
    attempts = tot.iterations + on_start
    if attempts == 0:
        return _no_data(c, "no iterations", final)
    actual = n / attempts
    return _outcome(c, actual, f"iteration_failure_rate{on} = {actual:.2%} ({n:,} of {attempts:,})", final)


def _judge(c: Criterion, view: _View, recorder: Recorder, elapsed_s: float, final: bool) -> CriterionResult:
    if c.endpoint is not None and view.requests == 0:
        return _no_data(c, f"no requests to {c.endpoint}", final)
    if c.kind == "latency":
        return _judge_latency(c, view, final)
    if c.kind == "rate":
        return _judge_rate(c, view, final)
    if c.metric == "rps":
        if elapsed_s <= 0:
            return _no_data(c, "no time elapsed", final)
        actual = view.requests / elapsed_s
        return _outcome(c, actual, f"rps = {actual:,.2f}/s", final)
    tot = recorder.totals
    count = {
        "requests": lambda: view.requests,
        "errors": lambda: view.errors,
        "iterations": lambda: tot.iterations,
        "dropped_iterations": lambda: tot.dropped_iterations,
    }[c.metric]()
    return _outcome(c, float(count), f"{c.metric} = {count:,}", final)


def _judge_latency(c: Criterion, view: _View, final: bool) -> CriterionResult:
    if view.requests == 0:
        return _no_data(c, "no requests", final)
    if not view.latency.total_count:
        where = f" to {c.endpoint}" if c.endpoint is not None else ""
        return _no_data(c, f"no timed responses{where}", final)
    # Percentiles clamp exactly as the summary's do, so a criterion equals the printed figure.
    actual = hdr.percentile_ms(view.latency, c.percentile) if c.percentile is not None else view.summary[c.metric]
    return _outcome(c, actual, f"{c.metric} = {_ms(actual)} ms", final)


def _judge_rate(c: Criterion, view: _View, final: bool) -> CriterionResult:
    """``error_rate`` or ``checks`` (``iteration_failure_rate`` is task scoped)."""
    if c.metric == "error_rate":
        n = view.requests
        if n == 0:
            return _no_data(c, "no requests", final)
        actual = view.errors / n
        return _outcome(c, actual, f"error_rate = {actual:.2%} ({view.errors:,} of {n:,})", final)
    passes, fails = view.checks
    if passes + fails == 0:
        on = f" on {c.endpoint}" if c.endpoint is not None else ""
        return _no_data(c, f"no checks ran{on}", final)
    actual = passes / (passes + fails)
    return _outcome(c, actual, f"checks = {actual:.2%} ({passes:,} of {passes + fails:,} passed)", final)


def _no_data(c: Criterion, detail: str, final: bool) -> CriterionResult:
    # At the end, nothing to judge is a failure: a typo in a scope must not pass.
    if final:
        return CriterionResult(c, None, False, detail)
    return CriterionResult(c, None, True, f"{detail} yet", pending=True)


def _outcome(c: Criterion, actual: float, detail: str, final: bool) -> CriterionResult:
    passed = c.holds(actual)
    if final or passed:
        return CriterionResult(c, actual, passed, detail)
    if c.kind == "rps":
        # The average rate drifts with ramps and spikes: only the whole run decides it.
        return CriterionResult(c, actual, True, f"{detail} so far", pending=True)
    if c.kind == "count":
        # Counts only grow: an upper bound crossed stays crossed, a lower bound may yet be reached.
        decided = c.op in ("<", "<=") or (c.op == "==" and actual > c.value)
        if not decided:
            return CriterionResult(c, actual, True, f"{detail} so far", pending=True)
    return CriterionResult(c, actual, False, detail)


def _ms(v: float) -> str:
    """A millisecond figure to the µs the histograms resolve, without trailing zeros."""
    s = f"{v:,.3f}".rstrip("0").rstrip(".")
    return s or "0"


def results_to_json(results: Iterable[CriterionResult]) -> list[dict[str, Any]]:
    """The summary document's ``thresholds`` list.

    ``value`` and ``actual`` are in normalised units: ms for latencies, a
    fraction for ``error_rate`` and ``checks``, req/s for ``rps``; ``actual``
    is null when there was nothing to measure.
    """
    return [
        {
            "expr": r.criterion.expr,
            "endpoint": r.criterion.endpoint,
            "metric": r.criterion.metric,
            "op": r.criterion.op,
            "value": r.criterion.value,
            "actual": r.actual,
            "passed": r.passed,
        }
        for r in results
    ]
