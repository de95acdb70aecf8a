"""Regression check: a candidate run against the last K runs of a baseline version.

The *threshold* of a metric below is its tolerance in :class:`~loadgen.judgement.tolerances.Tolerances`
(users set them in a *thresholds file*, so messages keep that word).

**Baseline.** The baseline is the newest K completed runs of the baseline
version for the same scenario and test type (K is ``baseline_runs``, 3 by
default; the newest by start time are kept if more are given, and the
candidate run itself is never part of its own baseline). For every metric and
subject (endpoint, service or queue) the *baseline value* is the **median** of
the baseline runs' values, and the *change* is the candidate's value against
that median: relative (``candidate / median - 1``) for latency, throughput,
CPU, memory and queue length; absolute (``candidate - median``, in fractions,
so 0.01 is one percentage point) for the error rate.

**Verdict.** A change is a **regression** when all three hold:

1. it is worse than the threshold allows (strictly more than it);
2. the candidate lies outside the baseline runs' own spread: it is worse than
   *every one* of the baseline runs, so run-to-run noise of the size already
   seen between baseline runs can never fail the check; and
3. for latency and the error rate, it is beyond the threshold *with
   confidence* (``confidence``, 0.99 by default) given the candidate's number
   of requests, so the candidate's own sampling noise cannot fail the check:

   - *latency*: a one-sided lower confidence bound on the candidate's true
     percentile, read exactly from its HDR histogram, must itself be beyond
     the threshold (bound > baseline median x (1 + threshold)). The bound is an
     order statistic, valid whatever the latency distribution: of n requests,
     the number at or below the true q-quantile xi is B ~ Binomial(n, q), and
     the r-th fastest request is above xi exactly when B <= r - 1. Taking
     r - 1 as the largest k with P(B <= k) <= 1 - confidence, the r-th fastest
     request is at or below xi with at least that confidence (it is read as
     the lower edge of its histogram bucket, erring low by at most the
     histogram's 0.1 % resolution). The tails are summed exactly in floating
     point (``math.lgamma``, no scipy). For a p95 at 99 % this is the 25th
     fastest of 30 requests, the 89th of 100, the 933rd of 1,000.
   - *error rate*: a one-sided binomial test against the baseline runs' pooled
     error rate p0 (all their errors / all their requests): e errors in n
     candidate requests must be improbable at a true rate of p0 + threshold,
     P(Binomial(n, p0 + threshold) >= e) < 1 - confidence.

With a single baseline run there is no spread to judge the noise by:
conditions 1 and 3 apply and the result says "no noise estimate (1 baseline
run)". Symmetrically, a change is an **improvement** when it is better than
the baseline median by more than the threshold, better than every baseline
run and, for latency and the error rate, better with confidence: the mirrored
*upper* bound (the s-th fastest request, s the smallest rank with
P(B >= s) <= 1 - confidence; a p95 has none below 90 requests, so no latency
improvement is claimed there) must be below median x (1 - threshold), and
P(Binomial(n, p0 - threshold) <= e) < 1 - confidence (never when
p0 <= threshold). Anything else is **ok**; a change beyond the threshold but
inside the baseline spread is ok with a note saying so, and one that fails
only condition 3 is ok with a note such as "within noise: 99 % lower bound
21.3 ms is inside the threshold (24.0 ms)". Throughput, CPU, memory and queue
length are one figure per run with no per-request sample to bound: conditions
1 and 2 only. Worse means higher for latency, error rate, CPU, memory and
queue length, and lower for throughput.

**Metrics.** Per endpoint (``"METHOD name"``) and for ``total``: latency at the
chosen percentile (``percentile``, p95 by default; ms, from the run's merged
HDR histogram, the same figure the run summary prints), the error rate
(errors / requests) and throughput (requests / run duration). Per monitored
service: CPU (the mean CPU % over the run) and memory (peak RSS). Per queue:
the mean queue length. An endpoint, service or queue only in the candidate is
**new**, one only in the baseline is **missing**; neither is a regression.
Latency of an endpoint with fewer than ``min_requests`` (30) requests in the
candidate or in the baseline median is **insufficient data**, not a
regression: condition 3 covers the candidate's noise, but not the baseline
median's, which with so few requests lets false alarms back in (see Limits).

**Zero baselines.** A relative change from a baseline of 0 is 0 when the
candidate is 0 too, and infinite (beyond any threshold) when the candidate is
above 0; the JSON report then has ``"change": null`` and a note. For queue
length a change must also be at least one message either way to count (a mean
queue going from 0 to 0.3 messages is not a regression); latency, CPU and
memory have no such floor.

**Limits.** Condition 3 bounds the candidate's sampling noise only; the
baseline median is taken as exact, so a baseline whose percentile came out low
by chance still lets an unchanged candidate through now and then. Measured
(same distribution for baseline and candidate, 3 baseline runs, p95, +20 %,
lognormal latencies with sigma 0.5-1.0, 4,000 seeds; without condition 3 in
brackets): false regressions 0.05-0.55 % at 30 requests per endpoint
(17-23 %), 0.03-0.27 % at 100 (7-19 %), none in 1,000 seeds at 1,000 (0-1.8 %);
at 20 requests 0.45-1.4 %, hence ``min_requests`` stays 30. The price is
power (1,000 seeds): a 2x slowdown is caught in 79 % (sigma 0.5) and 27 % (sigma 1.0) of runs
at 30 requests (98 %, 76 %), 100 % and 72 % at 100 (100 %, 98 %), 100 % and
92 % at 200, and always at 1,000; halved latency counts as an improvement in
54 % and 14 % of runs at 100 requests (100 %, 96 %), 100 % at 1,000. For the
error rate, at 0.5 % errors false regressions fall from 1.0-1.4 % (300-400
requests) and 5 % (100) to none in 1,000 seeds, and at 1 % errors from 4.5-4.7 %
to none; a jump from 0.5 % to 5 % is caught in 39 % of runs at 100 requests,
71 % at 200 and 95 % at 400, but 0.5 % to 2 % (+1.5 points against a 1-point
threshold) only in 15 % at 1,000: the rate must be *significantly* above
baseline + threshold, not merely above it. Give the compared endpoints enough
requests (hundreds for latency, thousands for small error-rate changes), or
lower ``confidence`` to trade false alarms for power.

Tolerances come from a JSON file in the old Locust suite's format (``//`` and
``/* */`` comments allowed), see :func:`~loadgen.judgement.tolerances.load_tolerances`;
without a file the defaults of :class:`~loadgen.judgement.tolerances.Tolerances` apply.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from ..engine import histogram as hdr
from ..errors import UsageError
from .noise import error_guard, latency_guard
from .render import plural, verdict_line
from .run_stats import EndpointStats, RunStats
from .tolerances import Tolerances
from .verdict import CPU, ERROR_RATE, MEMORY, QUEUE, RESPONSE_TIME, THROUGHPUT, ChangeKind, Guard, Metric, Verdict, judge

__all__ = ["ComparisonRow", "Comparison", "compare"]


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One metric of one subject (endpoint, service or queue)."""

    metric: str  #: response_time, error_rate, throughput, cpu_usage, memory_usage or queue_length
    label: str  #: for people: "p95", "error rate", "throughput", "CPU", "memory", "queue length"
    subject: str  #: "GET /api/x", "total", a service or a queue
    unit: str  #: ms, fraction, req/s, percent, bytes, messages
    baseline: float | None  #: median of the baseline runs' values
    baseline_min: float | None
    baseline_max: float | None
    baseline_values: tuple[float, ...]  #: one per baseline run that has a value, newest first
    candidate: float | None
    change: float | None  #: relative (0.2 = +20 %) or absolute; math.inf from a baseline of 0
    change_kind: ChangeKind
    threshold: float  #: the metric's tolerance (the JSON and the table call it threshold)
    verdict: Verdict
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        change = self.change if self.change is None or math.isfinite(self.change) else None
        return {
            "metric": self.metric,
            "label": self.label,
            "subject": self.subject,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_min": self.baseline_min,
            "baseline_max": self.baseline_max,
            "baseline_values": list(self.baseline_values),
            "candidate": self.candidate,
            "change": change,
            "change_kind": self.change_kind,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ComparisonRow:
        """Inverse of :meth:`to_json`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in doc.items() if k in names}
        kw["baseline_values"] = tuple(kw.get("baseline_values") or ())
        if kw.get("change") is None and kw.get("change_kind") == "relative" and kw.get("baseline") == 0 \
                and kw.get("candidate"):
            kw["change"] = math.copysign(math.inf, kw["candidate"])  # to_json writes "from 0" as null
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result of :func:`compare`."""

    candidate_run_id: str
    candidate_version: str | None
    baseline_run_ids: tuple[str, ...]  #: newest first
    baseline_version: str | None
    scenario: str | None
    test_type: str
    tolerances: Tolerances
    rows: tuple[ComparisonRow, ...]
    noise_estimate: bool  #: False with a single baseline run (only the tolerances applied)
    notes: tuple[str, ...] = ()

    @property
    def regressions(self) -> list[ComparisonRow]:
        return [r for r in self.rows if r.verdict == "regression"]

    @property
    def improvements(self) -> list[ComparisonRow]:
        return [r for r in self.rows if r.verdict == "improvement"]

    @property
    def verdict(self) -> Literal["regression", "pass"]:
        return "regression" if self.regressions else "pass"

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Comparison:
        """Inverse of :meth:`to_json` (a comparison stored with a run's summary)."""
        return cls(
            candidate_run_id=doc["candidate"]["run_id"],
            candidate_version=doc["candidate"].get("app_version"),
            baseline_run_ids=tuple(doc["baseline"]["run_ids"]),
            baseline_version=doc["baseline"].get("app_version"),
            scenario=doc.get("scenario"),
            test_type=doc.get("test_type", "load"),
            tolerances=Tolerances.from_json(doc.get("thresholds")),
            rows=tuple(ComparisonRow.from_json(r) for r in doc.get("rows", [])),
            noise_estimate=bool(doc.get("noise_estimate", True)),
            notes=tuple(doc.get("notes") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable document (stable key names; ``change`` is null when undefined)."""
        return {
            "verdict": self.verdict,
            "candidate": {"run_id": self.candidate_run_id, "app_version": self.candidate_version},
            "baseline": {"run_ids": list(self.baseline_run_ids), "app_version": self.baseline_version},
            "scenario": self.scenario,
            "test_type": self.test_type,
            "thresholds": self.tolerances.to_json(),
            "noise_estimate": self.noise_estimate,
            "notes": list(self.notes),
            "summary": verdict_line(self),
            "rows": [r.to_json() for r in self.rows],
            "regressions": [r.to_json() for r in self.regressions],
            "improvements": [r.to_json() for r in self.improvements],
        }


# --- the runs compared -----------------------------------------------------------


def _describe_scope(version: str | None, scenario: str | None, test_type: str) -> str:
    v = f"version {version}" if version else "the baseline version"
    s = f"scenario {scenario}" if scenario else "ad-hoc runs (no scenario)"
    return f"{v} for {s}, test type {test_type}"


def _select_baseline(
    baseline: Sequence[RunStats], candidate: RunStats, k: int, baseline_version: str | None
) -> tuple[list[RunStats], list[str]]:
    """The newest ``k`` baseline runs, never the candidate itself, and notes on what was left out."""
    notes: list[str] = []
    runs = [r for r in baseline if r.run_id != candidate.run_id]
    if len(runs) < len(baseline):
        notes.append(f"the candidate run {candidate.run_id} was left out of its own baseline")
    if not runs:
        raise UsageError(
            f"no completed runs of {_describe_scope(baseline_version, candidate.scenario, candidate.test_type)}"
            " to compare with"
        )
    runs = sorted(runs, key=lambda r: r.started_at, reverse=True)  # stable: ties keep the caller's order
    if len(runs) < k:
        notes.append(f"only {plural(len(runs), 'baseline run')} available (baseline_runs is {k})")
    return runs[:k], notes


def _scope_notes(runs: Sequence[RunStats], candidate: RunStats) -> list[str]:
    """What makes the comparison weaker than it looks: one run, odd runs, missing samples."""
    notes: list[str] = []
    if len(runs) == 1:
        notes.append("no noise estimate (1 baseline run): only the thresholds applied")
    odd = [r.run_id for r in runs if r.scenario != candidate.scenario or r.test_type != candidate.test_type]
    if odd:
        notes.append(
            f"baseline runs {', '.join(odd)} differ from the candidate in scenario or test type"
            f" (candidate: {candidate.scenario or 'no scenario'}, {candidate.test_type})"
        )
    own = set(candidate.endpoints) - {"total"}
    if own and not own & {k for r in runs for k in r.endpoints}:
        # Runs match on the scenario's identity (its file name, say): two different scenarios
        # sharing it compare only their totals, and a gate that passes so says nothing.
        notes.append("no endpoint of the candidate is in the baseline runs: they may be another scenario under the "
                     "same name (give --scenario-name to tell them apart); only the totals are compared")
    if any(r.resources for r in runs) and not candidate.resources:
        notes.append("the candidate has no resource samples (no services monitored), so CPU and memory are missing")
    if any(r.queues for r in runs) and not candidate.queues:
        notes.append("the candidate has no queue samples (no queues monitored), so queue lengths are missing")
    return notes


# --- what each metric reads of a run -----------------------------------------------

Extract = Callable[[RunStats, str], float | None]


def _endpoint_value(fn: Callable[[EndpointStats], float | None]) -> Extract:
    def get(run: RunStats, subject: str) -> float | None:
        ep = run.endpoints.get(subject)
        return None if ep is None else fn(ep)

    return get


def _latency(percentile: float) -> Extract:
    def latency_ms(ep: EndpointStats) -> float | None:
        # The same figure the run summary prints (clamped into the recorded min and max).
        return hdr.percentile_ms(ep.latency, percentile) if ep.latency.total_count else None

    return _endpoint_value(latency_ms)


def _error_rate(ep: EndpointStats) -> float | None:
    return ep.errors / ep.requests if ep.requests > 0 else None


def _throughput(ep: EndpointStats) -> float | None:
    return ep.requests / ep.duration_s if ep.duration_s > 0 else None


def _resource(key: str) -> Extract:
    def get(run: RunStats, subject: str) -> float | None:
        svc = run.resources.get(subject)
        v = None if svc is None else svc.get(key)
        return None if v is None else float(v)

    return get


def _queue(run: RunStats, subject: str) -> float | None:
    v = run.queues.get(subject)
    return None if v is None else float(v)


def _has(run: RunStats, metric: Metric, subject: str) -> bool:
    if metric in (CPU, MEMORY):
        return subject in run.resources
    if metric is QUEUE:
        return subject in run.queues
    return subject in run.endpoints


# --- one row ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Judged:
    """The runs a row compares, and how: everything :func:`_row` needs but the metric."""

    runs: Sequence[RunStats]  #: the baseline, newest first
    candidate: RunStats
    tolerances: Tolerances
    noise: bool  #: more than one baseline run

    def label(self, metric: Metric) -> str:
        return self.tolerances.percentile if metric is RESPONSE_TIME else metric.label


def _too_few_requests(j: _Judged, subject: str, in_base: Sequence[RunStats]) -> str | None:
    """The note of a latency row with fewer than ``min_requests`` on either side, else None."""
    c_req = j.candidate.endpoints[subject].requests
    b_req = statistics.median([r.endpoints[subject].requests for r in in_base])
    if c_req >= j.tolerances.min_requests and b_req >= j.tolerances.min_requests:
        return None
    return (
        f"{c_req:,} requests in the candidate, {b_req:,.0f} in the baseline median;"
        f" min_requests is {j.tolerances.min_requests}"
    )


def _guard(j: _Judged, metric: Metric, subject: str, in_base: Sequence[RunStats]) -> Guard | None:
    """Condition 3 for the metrics a per-request sample backs."""
    if not metric.sampled:
        return None
    ep = j.candidate.endpoints[subject]
    if metric is RESPONSE_TIME:
        return latency_guard(ep, j.tolerances.percentile_value / 100.0, j.tolerances.confidence, j.label(metric))
    return error_guard(ep, [r.endpoints[subject] for r in in_base], j.tolerances.confidence)


def _row(j: _Judged, metric: Metric, subject: str, get: Extract) -> ComparisonRow:
    """Judge one metric of one subject."""
    tolerance: float = getattr(j.tolerances, metric.name)
    in_base = [r for r in j.runs if _has(r, metric, subject)]
    in_cand = _has(j.candidate, metric, subject)
    base_vals = tuple(v for v in (get(r, subject) for r in in_base) if v is not None)
    cand = get(j.candidate, subject) if in_cand else None
    med = statistics.median(base_vals) if base_vals else None
    notes = [f"in {len(in_base)} of {len(j.runs)} baseline runs"] if in_base and len(in_base) < len(j.runs) else []
    change: float | None = None
    verdict: Verdict = "insufficient data"
    too_few = _too_few_requests(j, subject, in_base) if in_base and in_cand and metric is RESPONSE_TIME else None
    if not in_base:
        verdict = "new"
        notes.append("only in the candidate")
    elif not in_cand:
        verdict = "missing"
        notes.append("not in the candidate")
    elif too_few is not None:
        notes.append(too_few)
    elif cand is None or med is None:
        notes.append("no candidate value" if cand is None else "no baseline value")
    else:
        verdict, change, more = judge(metric, base_vals, cand, tolerance, j.noise, _guard(j, metric, subject, in_base))
        notes.extend(more)
    return ComparisonRow(
        metric=metric.name, label=j.label(metric), subject=subject, unit=metric.unit,
        baseline=med, baseline_min=min(base_vals, default=None), baseline_max=max(base_vals, default=None),
        baseline_values=base_vals, candidate=cand, change=change, change_kind=metric.kind,
        threshold=tolerance, verdict=verdict, note="; ".join(notes) or None,
    )


# --- the whole comparison -------------------------------------------------------------


def _subjects(keys: Iterable[str]) -> list[str]:
    """Sorted, with ``total`` last."""
    keys = set(keys)
    return sorted(keys - {"total"}) + (["total"] if "total" in keys else [])


def _rows(j: _Judged) -> list[ComparisonRow]:
    """Per endpoint latency, error rate and throughput; per service CPU and memory; per queue its length."""
    everyone = [j.candidate, *j.runs]
    latency = _latency(j.tolerances.percentile_value)
    rows: list[ComparisonRow] = []
    for ep in _subjects(k for r in everyone for k in r.endpoints):
        rows.append(_row(j, RESPONSE_TIME, ep, latency))
        rows.append(_row(j, ERROR_RATE, ep, _endpoint_value(_error_rate)))
        rows.append(_row(j, THROUGHPUT, ep, _endpoint_value(_throughput)))
    for svc in sorted({k for r in everyone for k in r.resources}):
        rows.append(_row(j, CPU, svc, _resource("cpu_percent")))
        rows.append(_row(j, MEMORY, svc, _resource("memory_bytes")))
    for q in sorted({k for r in everyone for k in r.queues}):
        rows.append(_row(j, QUEUE, q, _queue))
    return rows


def compare(
    baseline: Sequence[RunStats],
    candidate: RunStats,
    tolerances: Tolerances | None = None,
    *,
    baseline_version: str | None = None,
) -> Comparison:
    """Compare ``candidate`` with the ``baseline`` runs (newest first) under ``tolerances``.

    The newest ``tolerances.baseline_runs`` of ``baseline`` (by ``started_at``)
    are used; a baseline run with the candidate's run id is left out. Raises
    :class:`UsageError` when no baseline run remains. ``baseline_version``
    names the baseline version in messages (default: the runs' app_version).
    """
    tol = tolerances if tolerances is not None else Tolerances()
    runs, notes = _select_baseline(baseline, candidate, tol.baseline_runs, baseline_version)
    if baseline_version is None:
        baseline_version = ", ".join(sorted({r.app_version for r in runs if r.app_version})) or None
    notes += _scope_notes(runs, candidate)
    judged = _Judged(runs=runs, candidate=candidate, tolerances=tol, noise=len(runs) > 1)
    return Comparison(
        candidate_run_id=candidate.run_id,
        candidate_version=candidate.app_version,
        baseline_run_ids=tuple(r.run_id for r in runs),
        baseline_version=baseline_version,
        scenario=candidate.scenario,
        test_type=candidate.test_type,
        tolerances=tol,
        rows=tuple(_rows(judged)),
        noise_estimate=judged.noise,
        notes=tuple(notes),
    )
