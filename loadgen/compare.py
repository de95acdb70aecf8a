"""Regression check: a candidate run against the last K runs of a baseline version.

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

Thresholds come from a JSON file in the old Locust suite's format (``//`` and
``/* */`` comments allowed), see :func:`load_thresholds`; without a file the
defaults of :class:`Thresholds` apply.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import histogram as hdr
from .errors import UsageError

__all__ = [
    "EndpointStats",
    "RunStats",
    "Thresholds",
    "Row",
    "Comparison",
    "PERCENTILES",
    "METRICS",
    "load_thresholds",
    "parse_thresholds_text",
    "strip_json_comments",
    "compare",
    "render",
    "verdict_line",
]

# --- inputs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint (or ``total``) over a whole run."""

    requests: int
    errors: int
    duration_s: float  #: the run's duration (throughput is requests / duration_s)
    latency: HdrHistogram  #: the endpoint's merged HDR histogram (µs) for the whole run


@dataclass(frozen=True, slots=True)
class RunStats:
    """What the comparison needs of one completed run."""

    run_id: str
    app_version: str | None
    started_at: float  #: seconds since the epoch
    scenario: str | None
    test_type: str
    #: "METHOD name" -> stats, plus "total" for the whole run.
    endpoints: Mapping[str, EndpointStats]
    #: service -> {"cpu_percent": mean CPU % over the run, "memory_bytes": peak RSS}; may be empty.
    resources: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: queue -> mean length over the run; may be empty.
    queues: Mapping[str, float] = field(default_factory=dict)


# --- thresholds ---------------------------------------------------------------

#: Accepted percentile names -> (canonical name, percentile).
PERCENTILES: dict[str, tuple[str, float]] = {
    "p50": ("p50", 50.0),
    "p75": ("p75", 75.0),
    "p90": ("p90", 90.0),
    "p95": ("p95", 95.0),
    "p99": ("p99", 99.0),
    "p99.9": ("p99.9", 99.9),
    "p999": ("p99.9", 99.9),
}

_RATIO_KEYS = ("response_time", "error_rate", "cpu_usage", "memory_usage", "queue_length", "throughput")
_INT_MINIMUM = {"baseline_runs": 1, "min_requests": 0}


class _Invalid(Exception):
    """A bad threshold value; the message is a sentence fragment, without the file name."""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def _check_value(key: str, value: Any) -> Any:
    """The normalised value of one threshold key, or :class:`_Invalid`."""
    if key in _RATIO_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"{key} must be a number, not {_json_type(value)} ({value!r})")
        if not math.isfinite(value):
            raise _Invalid(f"{key} must be a finite number, not {value!r}")
        if value < 0:
            raise _Invalid(f"{key} must not be negative, not {value!r}")
        return float(value)
    if key in _INT_MINIMUM:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"{key} must be a whole number, not {_json_type(value)} ({value!r})")
        low = _INT_MINIMUM[key]
        if value < 0:
            raise _Invalid(f"{key} must not be negative, not {value}")
        if value < low:
            raise _Invalid(f"{key} must be at least {low}, not {value}")
        return value
    if key == "confidence":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"confidence must be a number, not {_json_type(value)} ({value!r})")
        if not (0.5 < value < 1):  # also refuses NaN
            raise _Invalid(f"confidence must be above 0.5 and below 1 (0.99 is 99 %), not {value!r}")
        return float(value)
    if key == "percentile":
        if not isinstance(value, str):
            raise _Invalid(f"percentile must be a string such as \"p95\", not {_json_type(value)} ({value!r})")
        canon = PERCENTILES.get(value.strip().lower())
        if canon is None:
            raise _Invalid(f"percentile {value!r} is not one of p50, p75, p90, p95, p99, p99.9")
        return canon[0]
    raise _Invalid(f"unknown key {key!r}")  # pragma: no cover - callers check keys first


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How much worse a candidate may be; the defaults apply without a thresholds file.

    ``response_time``, ``cpu_usage``, ``memory_usage``, ``queue_length``: relative
    increase allowed (0.2 = +20 %); ``throughput``: relative drop allowed;
    ``error_rate``: absolute increase allowed (0.01 = one percentage point);
    ``confidence``: how sure the statistical guard must be that a latency or
    error-rate change is beyond the threshold (above 0.5, below 1).
    """

    response_time: float = 0.2
    error_rate: float = 0.01
    cpu_usage: float = 0.15
    memory_usage: float = 0.15
    queue_length: float = 0.25
    throughput: float = 0.2
    percentile: str = "p95"  #: p50, p75, p90, p95, p99 or p99.9 ("p999" is accepted and stored as "p99.9")
    baseline_runs: int = 3  #: K, how many of the baseline version's newest runs form the baseline
    min_requests: int = 30  #: fewer requests -> latency verdict "insufficient data"
    #: one-sided confidence of the statistical guard (condition 3): 0.99 -> a 99 % bound, a test at p < 0.01
    confidence: float = 0.99
    source: str | None = field(default=None, compare=False)  #: the file they came from, None for defaults

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "source":
                continue
            try:
                value = _check_value(f.name, getattr(self, f.name))
            except _Invalid as exc:
                raise UsageError(f"invalid thresholds: {exc}") from None
            object.__setattr__(self, f.name, value)

    @property
    def percentile_value(self) -> float:
        """The percentile as a number, e.g. 95.0 or 99.9."""
        return PERCENTILES[self.percentile][1]

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# A JSON string (no raw newlines inside), a // comment, a /* */ comment, or an unterminated /*.
_COMMENT_OR_STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|/\*.*?\*/|/\*', re.DOTALL)


def strip_json_comments(text: str) -> str:
    """``text`` with ``//`` and ``/* */`` comments blanked out; strings are left alone.

    Each comment character becomes a space (newlines are kept), so line and
    column numbers of a JSON error still point into the original file. A
    ``//`` inside a string (``"https://…"``) is not a comment. Raises
    ``ValueError`` naming the line of an unterminated ``/*``.
    """

    def blank(m: re.Match[str]) -> str:
        s = m.group(0)
        if s[0] == '"':
            return s
        if s == "/*":  # the closed form is tried first, so this one is never closed
            line = text.count("\n", 0, m.start()) + 1
            raise ValueError(f"a /* comment opened on line {line} is never closed")
        return re.sub(r"[^\n]", " ", s)

    return _COMMENT_OR_STRING.sub(blank, text)


def parse_thresholds_text(text: str, source: str) -> Thresholds:
    """Thresholds from the text of a thresholds file; ``source`` names it in errors.

    Keys not given keep their defaults. Any problem raises :class:`UsageError`
    with one sentence naming ``source`` and the problem.
    """
    where = f"thresholds file {source}"
    try:
        cleaned = strip_json_comments(text.removeprefix("\ufeff"))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if not cleaned.strip():
        raise UsageError(f"{where} is empty; it must hold a JSON object such as {{\"response_time\": 0.2}}")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise _Invalid(f"key {k!r} appears more than once")
            out[k] = v
        return out

    try:
        data = json.loads(cleaned, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _Invalid as exc:
        raise UsageError(f"{where}: {exc}") from None
    except RecursionError:
        raise UsageError(f"{where} is nested too deeply to be a thresholds file") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where} must hold a JSON object of thresholds, not {_json_type(data)}")
    known = [f.name for f in fields(Thresholds) if f.name != "source"]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys are {', '.join(known)}"
            raise UsageError(f"{where}: unknown key {key!r}{hint}")
        try:
            values[key] = _check_value(key, value)
        except _Invalid as exc:
            raise UsageError(f"{where}: {exc}") from None
    return Thresholds(**values, source=source)


def load_thresholds(path: str | os.PathLike[str]) -> Thresholds:
    """Read and validate a thresholds file; any problem is a :class:`UsageError` naming the file."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise UsageError(f"thresholds file {source} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"thresholds file {source} is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"thresholds file {source} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"thresholds file {source} is not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_thresholds_text(text, source)


# --- metrics ------------------------------------------------------------------

Verdict = Literal["ok", "regression", "improvement", "new", "missing", "insufficient data"]
ChangeKind = Literal["relative", "absolute"]


@dataclass(frozen=True, slots=True)
class _Metric:
    name: str  #: JSON "metric", and the key of its threshold
    unit: str  #: JSON "unit"
    kind: ChangeKind
    higher_is_worse: bool
    floor: float = 0.0  #: an absolute change smaller than this never counts (queue length: 1 message)


_RESPONSE_TIME = _Metric("response_time", "ms", "relative", True)
_ERROR_RATE = _Metric("error_rate", "fraction", "absolute", True)
_THROUGHPUT = _Metric("throughput", "req/s", "relative", False)
_CPU = _Metric("cpu_usage", "percent", "relative", True)
_MEMORY = _Metric("memory_usage", "bytes", "relative", True)
_QUEUE = _Metric("queue_length", "messages", "relative", True, floor=1.0)

#: Metric names as they appear in rows (and as threshold keys).
METRICS = tuple(m.name for m in (_RESPONSE_TIME, _ERROR_RATE, _THROUGHPUT, _CPU, _MEMORY, _QUEUE))

_EPS = 1e-9  # changes are compared with this slack, so +20 % exactly is not "more than" 20 %


@dataclass(frozen=True, slots=True)
class Row:
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
    threshold: float
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


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result of :func:`compare`."""

    candidate_run_id: str
    candidate_version: str | None
    baseline_run_ids: tuple[str, ...]  #: newest first
    baseline_version: str | None
    scenario: str | None
    test_type: str
    thresholds: Thresholds
    rows: tuple[Row, ...]
    noise_estimate: bool  #: False with a single baseline run (only the thresholds applied)
    notes: tuple[str, ...] = ()

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "regression"]

    @property
    def improvements(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "improvement"]

    @property
    def verdict(self) -> Literal["regression", "pass"]:
        return "regression" if self.regressions else "pass"

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Comparison:
        """Inverse of :meth:`to_json` (a comparison stored with a run's summary)."""
        names = {f.name for f in fields(Row)}
        rows = []
        for r in doc.get("rows", []):
            kw = {k: v for k, v in r.items() if k in names}
            kw["baseline_values"] = tuple(kw.get("baseline_values") or ())
            if kw.get("change") is None and kw.get("change_kind") == "relative" and kw.get("baseline") == 0 \
                    and kw.get("candidate"):
                kw["change"] = math.copysign(math.inf, kw["candidate"])  # to_json writes "from 0" as null
            rows.append(Row(**kw))
        th_names = {f.name for f in fields(Thresholds)}
        return cls(
            candidate_run_id=doc["candidate"]["run_id"],
            candidate_version=doc["candidate"].get("app_version"),
            baseline_run_ids=tuple(doc["baseline"]["run_ids"]),
            baseline_version=doc["baseline"].get("app_version"),
            scenario=doc.get("scenario"),
            test_type=doc.get("test_type", "load"),
            thresholds=Thresholds(**{k: v for k, v in (doc.get("thresholds") or {}).items() if k in th_names}),
            rows=tuple(rows),
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
            "thresholds": self.thresholds.to_json(),
            "noise_estimate": self.noise_estimate,
            "notes": list(self.notes),
            "summary": verdict_line(self),
            "rows": [r.to_json() for r in self.rows],
            "regressions": [r.to_json() for r in self.regressions],
            "improvements": [r.to_json() for r in self.improvements],
        }


def _latency_ms(ep: EndpointStats, percentile: str) -> float | None:
    if not ep.latency.total_count:
        return None
    return hdr.percentile_ms(ep.latency, PERCENTILES[percentile][1])  # equals the summary's figure


def _error_rate(ep: EndpointStats) -> float | None:
    return ep.errors / ep.requests if ep.requests > 0 else None


def _throughput(ep: EndpointStats) -> float | None:
    return ep.requests / ep.duration_s if ep.duration_s > 0 else None


def _relative(base: float, cand: float) -> float:
    if base == 0:
        return 0.0 if cand == 0 else math.copysign(math.inf, cand)
    return (cand - base) / abs(base)


# --- statistical guards (condition 3) -------------------------------------------
#
# Plain math (no scipy): binomial tails are summed term by term in floating
# point, which is exact up to rounding. Only the *small* tail is ever summed:
# below the mean the terms shrink geometrically-or-faster away from k, so the
# sum stops once a term no longer changes it (about 9 standard deviations of
# terms at most: ~3,000 terms for a million requests at p95, ~45,000 at p50
# for 10^8). A tail above the mean is 1 minus the mirrored small tail.


def _binom_logpmf(n: int, p: float, k: int) -> float:
    return (
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(p) + (n - k) * math.log1p(-p)
    )


def _binom_cdf(n: int, p: float, k: int) -> float:
    """P(Binomial(n, p) <= k)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if k >= n * p:  # the lower tail is the big one: 1 - P(Binomial(n, 1 - p) <= n - k - 1), with n - k - 1 < n (1 - p)
        return 1.0 - _binom_cdf(n, 1.0 - p, n - k - 1)
    # k < n p, so pmf(j - 1) / pmf(j) = j (1 - p) / ((n - j + 1) p) < 1 for every j <= k.
    term = math.exp(_binom_logpmf(n, p, k))
    total = term
    step = (1.0 - p) / p
    j = k
    while j > 0 and term > total * 1e-17:
        term *= j / (n - j + 1) * step
        total += term
        j -= 1
    return total


def _binom_sf(n: int, p: float, k: int) -> float:
    """P(Binomial(n, p) >= k)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return _binom_cdf(n, 1.0 - p, n - k)


def _binom_low_quantile(n: int, p: float, alpha: float) -> int:
    """The largest k in -1..n with P(Binomial(n, p) <= k) <= alpha; -1 when P(... = 0) > alpha already.

    Starts at the normal approximation with continuity correction
    (P(B <= k) ~ Phi((k + 0.5 - np) / sd)), then steps one rank at a time with
    the exact tail until the answer is pinned: the approximation is off by a
    few ranks at most, so this costs a handful of tail sums.
    """
    sd = math.sqrt(n * p * (1.0 - p))
    guess = math.floor(n * p + NormalDist().inv_cdf(alpha) * sd - 0.5)
    k = min(max(guess, -1), n)
    if _binom_cdf(n, p, k) <= alpha:
        while k < n and _binom_cdf(n, p, k + 1) <= alpha:
            k += 1
    else:
        k -= 1
        while k >= 0 and _binom_cdf(n, p, k) > alpha:
            k -= 1
    return k


def _quantile_bound_ranks(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """1-based ranks (r, s) of the order statistics that bound the q-quantile of n samples.

    The true quantile xi has B = #{samples <= xi} ~ Binomial(n, q) (for any
    continuous distribution; with ties B is only larger, for the lower bound,
    and #{samples < xi} only smaller, for the upper, so both stay valid).
    The r-th smallest sample is above xi exactly when fewer than r samples are
    <= xi, so P(X(r) > xi) = P(B <= r - 1): r - 1 is the largest k with
    P(B <= k) <= alpha, and X(r) is a one-sided lower bound at confidence
    1 - alpha. Mirrored, P(X(s) < xi) <= P(B >= s): s is the smallest rank with
    P(B >= s) <= alpha, i.e. n minus the same search on Binomial(n, 1 - q).
    ``None`` when n is too small for such a rank (e.g. no 99 % upper bound on
    a p95 from fewer than 90 samples: even the maximum is below the p95 with
    probability 0.95**n > 0.01).
    """
    alpha = 1.0 - confidence
    k = _binom_low_quantile(n, q, alpha)
    k_mirror = _binom_low_quantile(n, 1.0 - q, alpha)
    return (k + 1 if k >= 0 else None), (n - k_mirror if k_mirror >= 0 else None)


def _value_at_rank_us(h: HdrHistogram, rank: int, lower: bool) -> int:
    """The rank-th smallest recorded value (1-based), widened to its bucket's edge.

    ``lower``: the bucket's lowest equivalent value (never above the sample),
    otherwise its highest (never below), clamped into the recorded [min, max].
    """
    cumulative = np.cumsum(np.ctypeslib.as_array(h.counts), dtype=np.uint64)
    index = int(np.searchsorted(cumulative, np.uint64(rank), side="left"))
    value = h.get_value_from_index(index)
    if lower:
        return max(int(h.get_lowest_equivalent_value(value)), int(h.min_value))
    return min(int(h.get_highest_equivalent_value(value)), int(h.max_value))


def _percent(confidence: float) -> str:
    return f"{round(100 * confidence, 6):g} %"


#: Condition 3 for one row: called with (regression?, baseline median, threshold); returns
#: None when the change is confirmed, else the "within noise: …" note that makes the row ok.
Guard = Callable[[bool, float, float], str | None]


def _latency_guard(ep: EndpointStats, q: float, confidence: float, label: str) -> Guard:
    def guard(regression: bool, med: float, threshold: float) -> str | None:
        n = int(ep.latency.total_count)
        lower_rank, upper_rank = _quantile_bound_ranks(n, q, confidence)
        rank = lower_rank if regression else upper_rank
        side = "lower" if regression else "upper"
        if rank is None:
            return f"within noise: too few requests ({n:,}) for a {_percent(confidence)} {side} bound on {label}"
        bound = _value_at_rank_us(ep.latency, rank, lower=regression) / 1000.0
        change = _relative(med, bound)
        if (change if regression else -change) > threshold + _EPS:
            return None
        return (
            f"within noise: {_percent(confidence)} {side} bound {_sig(bound)} ms is inside the threshold"
            f" ({_sig(med * (1 + threshold if regression else 1 - threshold))} ms)"
        )

    return guard


def _error_guard(ep: EndpointStats, base: Sequence[EndpointStats], confidence: float) -> Guard:
    def guard(regression: bool, med: float, threshold: float) -> str | None:
        requests = sum(e.requests for e in base)
        pooled = sum(e.errors for e in base) / requests if requests else med
        rate = pooled + threshold if regression else pooled - threshold
        n, x = ep.requests, ep.errors
        if regression:
            p_value = 0.0 if rate <= 0 else 1.0 if rate >= 1 else _binom_sf(n, rate, x)
        else:
            p_value = 1.0 if rate <= 0 else 0.0 if rate >= 1 else _binom_cdf(n, rate, x)
        if p_value < 1.0 - confidence:
            return None
        side = "above" if regression else "below"
        return (
            f"within noise: {x:,} errors in {n:,} requests are not significantly {side}"
            f" {100 * max(rate, 0.0):.2f} % (pooled baseline {100 * pooled:.2f} %"
            f" {'+' if regression else '-'} threshold; p = {p_value:.2g},"
            f" needs < {round(1 - confidence, 6):g})"
        )

    return guard


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _judge(
    m: _Metric, base: Sequence[float], cand: float, threshold: float, noise: bool, guard: Guard | None = None
) -> tuple[Verdict, float, list[str]]:
    """Verdict, change and notes for one metric of one subject (see the module docstring)."""
    med = statistics.median(base)
    lo, hi = min(base), max(base)
    change = cand - med if m.kind == "absolute" else _relative(med, cand)
    worse_by = change if m.higher_is_worse else -change  # > 0: worse than the median
    limit = threshold + _EPS
    beyond_worse = worse_by > limit
    beyond_better = -worse_by > limit
    notes: list[str] = []
    if m.floor and abs(cand - med) < m.floor and (beyond_worse or beyond_better):
        beyond_worse = beyond_better = False
        notes.append(f"change below the {m.floor:g}-{m.unit.rstrip('s')} floor")
    if len(base) == 1:
        outside_worse = outside_better = True
        if noise:  # the comparison as a whole has a noise estimate, this subject does not
            notes.append("no noise estimate (1 baseline run)")
    else:
        outside_worse = cand > hi if m.higher_is_worse else cand < lo
        outside_better = cand < lo if m.higher_is_worse else cand > hi
    if math.isinf(change):
        notes.append("baseline is 0")
    for verdict, beyond, outside in (
        ("regression", beyond_worse, outside_worse),
        ("improvement", beyond_better, outside_better),
    ):
        if beyond and outside:
            within_noise = guard(verdict == "regression", med, threshold) if guard is not None else None
            if within_noise is None:
                return verdict, change, notes
            notes.append(within_noise)
            return "ok", change, notes
    if beyond_worse or beyond_better:
        notes.append("beyond the threshold but within the baseline runs' spread")
    return "ok", change, notes


Extract = Callable[[RunStats, str], float | None]


def _ep_metric(fn: Callable[[EndpointStats], float | None]) -> Extract:
    def get(run: RunStats, subject: str) -> float | None:
        ep = run.endpoints.get(subject)
        return None if ep is None else fn(ep)

    return get


def _resource(key: str) -> Extract:
    def get(run: RunStats, subject: str) -> float | None:
        svc = run.resources.get(subject)
        v = None if svc is None else svc.get(key)
        return None if v is None else float(v)

    return get


def _queue(run: RunStats, subject: str) -> float | None:
    v = run.queues.get(subject)
    return None if v is None else float(v)


def _subjects(keys: set[str]) -> list[str]:
    return sorted(keys - {"total"}) + (["total"] if "total" in keys else [])


def _label(metric: _Metric, th: Thresholds) -> str:
    return {
        "response_time": th.percentile,
        "error_rate": "error rate",
        "throughput": "throughput",
        "cpu_usage": "CPU",
        "memory_usage": "memory",
        "queue_length": "queue length",
    }[metric.name]


def _describe_scope(version: str | None, scenario: str | None, test_type: str) -> str:
    v = f"version {version}" if version else "the baseline version"
    s = f"scenario {scenario}" if scenario else "ad-hoc runs (no scenario)"
    return f"{v} for {s}, test type {test_type}"


def compare(
    baseline: Sequence[RunStats],
    candidate: RunStats,
    thresholds: Thresholds | None = None,
    *,
    baseline_version: str | None = None,
) -> Comparison:
    """Compare ``candidate`` with the ``baseline`` runs (newest first) under ``thresholds``.

    The newest ``thresholds.baseline_runs`` of ``baseline`` (by ``started_at``)
    are used; a baseline run with the candidate's run id is left out. Raises
    :class:`UsageError` when no baseline run remains. ``baseline_version``
    names the baseline version in messages (default: the runs' app_version).
    """
    th = thresholds if thresholds is not None else Thresholds()
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
    k = th.baseline_runs
    if len(runs) > k:
        runs = runs[:k]
    elif len(runs) < k:
        notes.append(f"only {_plural(len(runs), 'baseline run')} available (baseline_runs is {k})")
    if baseline_version is None:
        baseline_version = ", ".join(sorted({r.app_version for r in runs if r.app_version})) or None
    noise = len(runs) > 1
    if not noise:
        notes.append("no noise estimate (1 baseline run): only the thresholds applied")
    odd = [r.run_id for r in runs if r.scenario != candidate.scenario or r.test_type != candidate.test_type]
    if odd:
        notes.append(
            f"baseline runs {', '.join(odd)} differ from the candidate in scenario or test type"
            f" (candidate: {candidate.scenario or 'no scenario'}, {candidate.test_type})"
        )
    if any(r.resources for r in runs) and not candidate.resources:
        notes.append("the candidate has no resource samples (no services monitored), so CPU and memory are missing")
    if any(r.queues for r in runs) and not candidate.queues:
        notes.append("the candidate has no queue samples (no queues monitored), so queue lengths are missing")

    rows: list[Row] = []

    def add(
        metric: _Metric, subject: str, get: Extract, min_requests_check: bool = False, guarded: bool = False
    ) -> None:
        threshold = getattr(th, metric.name)
        label = _label(metric, th)
        in_base = [r for r in runs if _has(r, metric, subject)]
        in_cand = _has(candidate, metric, subject)
        base_vals = tuple(v for v in (get(r, subject) for r in in_base) if v is not None)
        cand = get(candidate, subject) if in_cand else None
        med = statistics.median(base_vals) if base_vals else None
        lo = min(base_vals) if base_vals else None
        hi = max(base_vals) if base_vals else None
        row_notes: list[str] = []
        if in_base and len(in_base) < len(runs):
            row_notes.append(f"in {len(in_base)} of {len(runs)} baseline runs")
        change: float | None = None
        verdict: Verdict
        if not in_base:
            verdict = "new"
            row_notes.append("only in the candidate")
        elif not in_cand:
            verdict = "missing"
            row_notes.append("not in the candidate")
        elif min_requests_check and (
            (c_req := candidate.endpoints[subject].requests) < th.min_requests
            or (b_req := statistics.median([r.endpoints[subject].requests for r in in_base])) < th.min_requests
        ):
            verdict = "insufficient data"
            b_req = statistics.median([r.endpoints[subject].requests for r in in_base])  # `or` may skip it
            row_notes.append(
                f"{c_req:,} requests in the candidate, {b_req:,.0f} in the baseline median;"
                f" min_requests is {th.min_requests}"
            )
        elif cand is None or med is None:
            verdict = "insufficient data"
            row_notes.append("no candidate value" if cand is None else "no baseline value")
        else:
            guard: Guard | None = None
            if guarded:
                ep = candidate.endpoints[subject]
                if metric is _RESPONSE_TIME:
                    guard = _latency_guard(ep, th.percentile_value / 100.0, th.confidence, label)
                else:
                    guard = _error_guard(ep, [r.endpoints[subject] for r in in_base], th.confidence)
            verdict, change, more = _judge(metric, base_vals, cand, threshold, noise, guard)
            row_notes.extend(more)
        rows.append(
            Row(
                metric=metric.name,
                label=label,
                subject=subject,
                unit=metric.unit,
                baseline=med,
                baseline_min=lo,
                baseline_max=hi,
                baseline_values=base_vals,
                candidate=cand,
                change=change,
                change_kind=metric.kind,
                threshold=threshold,
                verdict=verdict,
                note="; ".join(row_notes) or None,
            )
        )

    endpoints = set(candidate.endpoints).union(*(r.endpoints for r in runs))
    for ep in _subjects(endpoints):
        latency = _ep_metric(lambda e: _latency_ms(e, th.percentile))
        add(_RESPONSE_TIME, ep, latency, min_requests_check=True, guarded=True)
        add(_ERROR_RATE, ep, _ep_metric(_error_rate), guarded=True)
        add(_THROUGHPUT, ep, _ep_metric(_throughput))
    services = set(candidate.resources).union(*(r.resources for r in runs))
    for svc in sorted(services):
        add(_CPU, svc, _resource("cpu_percent"))
        add(_MEMORY, svc, _resource("memory_bytes"))
    queues = set(candidate.queues).union(*(r.queues for r in runs))
    for q in sorted(queues):
        add(_QUEUE, q, _queue)

    return Comparison(
        candidate_run_id=candidate.run_id,
        candidate_version=candidate.app_version,
        baseline_run_ids=tuple(r.run_id for r in runs),
        baseline_version=baseline_version,
        scenario=candidate.scenario,
        test_type=candidate.test_type,
        thresholds=th,
        rows=tuple(rows),
        noise_estimate=noise,
        notes=tuple(notes),
    )


def _has(run: RunStats, metric: _Metric, subject: str) -> bool:
    if metric.name in ("cpu_usage", "memory_usage"):
        return subject in run.resources
    if metric.name == "queue_length":
        return subject in run.queues
    return subject in run.endpoints


# --- presentation -------------------------------------------------------------

def _sig(v: float) -> str:
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


#: unit -> (column heading suffix, number formatter, unit suffix in sentences)
_UNITS: dict[str, tuple[str, Callable[[float], str], str]] = {
    "ms": ("ms", _sig, " ms"),
    "fraction": ("%", lambda v: f"{100 * v:.2f}", " %"),
    "req/s": ("req/s", lambda v: f"{v:,.1f}", " req/s"),
    "percent": ("%", lambda v: f"{v:.1f}", " %"),
    "bytes": ("MiB", lambda v: f"{v / 2**20:,.1f}", " MiB"),
    "messages": ("msgs", lambda v: f"{v:,.1f}", " msgs"),
}


def _num(unit: str, v: float | None) -> str:
    return "–" if v is None else _UNITS[unit][1](v)


def _value(unit: str, v: float | None) -> str:
    return "–" if v is None else _UNITS[unit][1](v) + _UNITS[unit][2]


def _pct(x: float) -> str:
    p = 100 * x
    return f"{p:+.0f} %" if abs(p) >= 10 else f"{p:+.1f} %"


def _change(row: Row) -> str:
    if row.change is None:
        return "–"
    if math.isinf(row.change):
        return "from 0"
    if row.change_kind == "absolute":
        return f"{100 * row.change:+.2f} pp"
    return _pct(row.change)


def _threshold(row: Row) -> str:
    if row.change_kind == "absolute":
        return f"+{100 * row.threshold:.2f} pp"
    sign = "+" if row.metric != "throughput" else "-"
    return f"{sign}{round(100 * row.threshold, 6):g} %"


def _describe(row: Row) -> str:
    """``p95 of GET /x 12.1 ms → 31.0 ms (+156 %, threshold +20 %)`` (plain text)."""
    return (
        f"{row.label} of {row.subject} {_value(row.unit, row.baseline)} → {_value(row.unit, row.candidate)}"
        f" ({_change(row)}, threshold {_threshold(row)})"
    )


def verdict_line(comparison: Comparison) -> str:
    """The one-line verdict, plain text: ``REGRESSION: …`` naming each regression, or ``PASS: …``."""
    c = comparison
    caveat = "" if c.noise_estimate else " (no noise estimate: 1 baseline run)"
    if c.regressions:
        return f"REGRESSION{caveat}: " + "; ".join(_describe(r) for r in c.regressions)
    n = len(c.baseline_run_ids)
    version = f" of {c.baseline_version}" if c.baseline_version else ""
    line = f"PASS{caveat}: no regression against {_plural(n, 'baseline run')}{version}"
    if c.improvements:
        line += f"; {_plural(len(c.improvements), 'improvement')}: " + "; ".join(_describe(r) for r in c.improvements)
    return line


_VERDICT_STYLE = {
    "regression": "bold red",
    "improvement": "bold green",
    "ok": "",
    "new": "cyan",
    "missing": "yellow",
    "insufficient data": "dim",
}


def render(comparison: Comparison, console: Console) -> None:
    """Print the comparison table, the notes and the one-line verdict."""
    c = comparison
    cand_v = c.candidate_version or "unversioned"
    base_v = c.baseline_version or "baseline"
    n = len(c.baseline_run_ids)
    title = (
        f"Regression check: {escape(cand_v)} (run {escape(c.candidate_run_id)}) against "
        f"{escape(base_v)} (median of {_plural(n, 'run')})"
    )
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    t.add_column("endpoint")
    for col in ("baseline", "candidate", "change", "threshold"):
        t.add_column(col, justify="right")
    t.add_column("verdict")
    for row in c.rows:
        base = _num(row.unit, row.baseline)
        if len(row.baseline_values) > 1 and row.baseline_min != row.baseline_max:
            base += f" [dim]({_num(row.unit, row.baseline_min)}–{_num(row.unit, row.baseline_max)})[/dim]"
        style = _VERDICT_STYLE[row.verdict]
        verdict = row.verdict.upper() if row.verdict == "regression" else row.verdict
        verdict = f"[{style}]{verdict}[/{style}]" if style else verdict
        if row.note:
            verdict += f" [dim]({escape(row.note)})[/dim]"
        subject = "[bold]total[/bold]" if row.subject == "total" and row.metric in METRICS[:3] else escape(row.subject)
        t.add_row(
            f"{escape(row.label)} ({_UNITS[row.unit][0]})",
            subject,
            base,
            _num(row.unit, row.candidate),
            _change(row),
            _threshold(row),
            verdict,
            style="red" if row.verdict == "regression" else "green" if row.verdict == "improvement" else None,
        )
    console.print(t)
    for note in c.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    line = escape(verdict_line(c))
    # One line even on a narrow terminal, so CI logs can be grepped for it.
    style = "bold red" if c.regressions else "bold green"
    console.print(f"[{style}]{line}[/{style}]", soft_wrap=True)
