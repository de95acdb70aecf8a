"""What a report shows, read from the results store through the Store API.

Everything here is plain data (numpy arrays and the store's rows) computed
once per report, so the HTML page and the notebook draw from the same figures.
Latency over time comes from the stored per-interval HDR histograms: an
interval's rows of several shards (or, for a long run, several consecutive
intervals folded into one point) are merged exactly before percentiles are
read, so every plotted percentile is one a histogram of those requests gives.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from hdrh.histogram import HdrHistogram

from loadgen.engine import histogram as hdr
from loadgen.errors import UsageError
from loadgen.judgement.comparison import Comparison
from loadgen.judgement.comparison import ComparisonRow
from loadgen.judgement.run_stats import RunStats
from loadgen.judgement.tolerances import Tolerances
from loadgen.store import Store
from loadgen.store.records import TOTAL, Row, decode_hist

__all__ = [
    "MAX_POINTS",
    "TOP_ENDPOINTS",
    "IntervalSeries",
    "GeneratorSeries",
    "SampleSeries",
    "RunData",
    "ComparisonData",
    "load_run",
    "load_comparison",
    "comparison_from_json",
]

#: At most this many points per time series; longer runs fold consecutive intervals together.
MAX_POINTS = 400
#: Per-endpoint time series are drawn for this many endpoints (the busiest).
TOP_ENDPOINTS = 8


def _nan_array(values: Iterable[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


@dataclass(frozen=True)
class IntervalSeries:
    """One endpoint (or ``total``) over time: a point per interval (or per folded window)."""

    start: np.ndarray  #: seconds since the run's start
    end: np.ndarray
    requests: np.ndarray
    errors: np.ndarray
    p50: np.ndarray  #: ms; NaN where the interval had no request with a latency
    p95: np.ndarray
    p99: np.ndarray
    max: np.ndarray
    errors_by_kind: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def width(self) -> np.ndarray:
        return np.maximum(self.end - self.start, 1e-9)

    @property
    def rps(self) -> np.ndarray:
        return self.requests / self.width

    @property
    def errors_per_s(self) -> np.ndarray:
        return self.errors / self.width


@dataclass(frozen=True)
class GeneratorSeries:
    """The generator's own health per interval (``interval_stats``), shards combined."""

    start: np.ndarray
    end: np.ndarray
    iterations: np.ndarray
    dropped: np.ndarray
    users: np.ndarray
    inflight: np.ndarray
    target_rate: np.ndarray  #: iterations/s; NaN in the closed model
    cpu_percent: np.ndarray  #: of one core; the busiest shard's
    lag_p99_ms: np.ndarray  #: NaN in the closed model (no schedule to be late for)
    saturated: np.ndarray  #: bool

    @property
    def width(self) -> np.ndarray:
        return np.maximum(self.end - self.start, 1e-9)


@dataclass(frozen=True)
class SampleSeries:
    """A collector's samples of one service or queue: ``t`` plus one array per field."""

    t: np.ndarray  #: seconds since the run's start
    values: dict[str, np.ndarray]
    source: str | None = None

    def has(self, key: str) -> bool:
        v = self.values.get(key)
        return v is not None and bool(np.isfinite(v).any())


@dataclass
class RunData:
    """One stored run as a report shows it."""

    run: Row  #: the ``runs`` row (config and summary included)
    endpoints: list[Row]  #: per-endpoint results, ``total`` last; histograms decoded into ``histograms``
    histograms: dict[str, HdrHistogram]  #: endpoint key -> its whole-run latency histogram
    latency: dict[str, IntervalSeries]  #: ``total`` and the busiest endpoints over time
    generator: GeneratorSeries | None
    resources: dict[str, SampleSeries]
    queues: dict[str, SampleSeries]
    window_s: float  #: seconds per plotted point (1 unless a long run was folded)
    from_intervals: bool = False  #: True when the run never stored its results (killed): rebuilt from intervals

    @property
    def id(self) -> str:
        return self.run["id"]

    @property
    def summary(self) -> dict[str, Any]:
        return self.run.get("summary") or {}

    @property
    def config(self) -> dict[str, Any]:
        return self.run.get("config") or {}

    @property
    def total(self) -> Row | None:
        return next((r for r in self.endpoints if r["endpoint"] == TOTAL), None)

    @property
    def endpoint_rows(self) -> list[Row]:
        """Per-endpoint results without ``total``, busiest first."""
        return sorted((r for r in self.endpoints if r["endpoint"] != TOTAL),
                      key=lambda r: (-r["requests"], r["endpoint"]))

    @property
    def duration_s(self) -> float:
        d = self.run.get("duration_s")
        if d:
            return float(d)
        t = self.latency.get(TOTAL)
        return float(t.end.max()) if t is not None and t.end.size else 0.0

    @property
    def label(self) -> str:
        return f"{self.run.get('app_version') or 'unversioned'} ({self.id})"


@dataclass
class ComparisonData:
    """A regression comparison and the runs it compared."""

    comparison: Comparison
    candidate: RunStats
    baseline: list[RunStats]  #: newest first, those still in the store
    source: Literal["computed", "stored"]  #: computed for this report, or the one stored with the run

    @property
    def regressions(self) -> list[ComparisonRow]:
        return self.comparison.regressions


# --- reading -------------------------------------------------------------------


def _merge_rows(rows: Sequence[Row]) -> HdrHistogram:
    h = hdr.new_histogram()
    for r in rows:
        if r.get("latency_hist"):
            hdr.merge(h, decode_hist(r["latency_hist"], r.get("latency_min_us"), r.get("latency_max_us")))
    return h


def _window(rows: Sequence[Row]) -> int:
    """Intervals per plotted point, so that no series has more than MAX_POINTS points."""
    idx = [r["idx"] for r in rows]
    n = (max(idx) - min(idx) + 1) if idx else 0
    return max(1, math.ceil(n / MAX_POINTS))


@dataclass(frozen=True)
class _Point:
    """One plotted point: the intervals (by index) it covers and the time they span."""

    idx: frozenset[int]
    start: float
    end: float


def _points(rows: Sequence[Row], w: int) -> list[_Point]:
    """The plotted points of a run: ``w`` consecutive intervals each (every shard's rows of them
    together). A last point much shorter than the others (the run's final partial interval,
    often a few milliseconds) is folded into the one before: a rate or CPU share over 3 ms is
    noise, not a measurement worth a point of its own."""
    by: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        by[r["idx"] // w].append(r)
    points = [_Point(frozenset(r["idx"] for r in by[k]), min(r["start_s"] for r in by[k]),
                     max(r["end_s"] for r in by[k])) for k in sorted(by)]
    if len(points) >= 2:
        typical = float(np.median([p.end - p.start for p in points[:-1]]))
        last = points[-1]
        if last.end - last.start < 0.5 * typical:
            prev = points[-2]
            points[-2:] = [_Point(prev.idx | last.idx, prev.start, last.end)]
    return points


def _grouped(rows: Sequence[Row], points: Sequence[_Point]) -> list[list[Row]]:
    by_idx: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        by_idx[r["idx"]].append(r)
    return [[r for i in sorted(p.idx) for r in by_idx.get(i, ())] for p in points]


def _interval_series(rows: Sequence[Row], points: Sequence[_Point]) -> IntervalSeries:
    """One endpoint's interval rows (every shard) as a series over the run's points; a point
    where the endpoint had no request has NaN latencies (a gap, not a line across it)."""
    groups = _grouped(rows, points)
    n = len(groups)
    start = np.array([p.start for p in points], dtype=float)
    end = np.array([p.end for p in points], dtype=float)
    req, err = np.zeros(n), np.zeros(n)
    pct = {p: np.full(n, math.nan) for p in ("p50", "p95", "p99", "max")}
    kinds: dict[str, np.ndarray] = {}
    for i, g in enumerate(groups):
        if not g:
            continue
        req[i] = sum(r["requests"] for r in g)
        err[i] = sum(r["errors"] for r in g)
        for r in g:
            for kind, count in (r.get("errors_by_kind") or {}).items():
                kinds.setdefault(kind, np.zeros(n))[i] += count
        if len(g) == 1:
            # One interval of one shard: its stored percentiles are its histogram's own.
            r = g[0]
            for p in pct:
                v = r.get(f"{p}_ms")
                if v is not None:
                    pct[p][i] = v
        else:
            h = _merge_rows(g)
            if h.total_count:
                s = hdr.summarize_ms(h)
                for p in pct:
                    pct[p][i] = s[p]
    return IntervalSeries(start, end, req, err, pct["p50"], pct["p95"], pct["p99"], pct["max"], kinds)


def _generator_series(stats: Sequence[Row], w: int) -> GeneratorSeries | None:
    if not stats:
        return None
    points = _points(stats, w)
    groups = _grouped(stats, points)
    n = len(groups)
    cols: dict[str, np.ndarray] = {k: np.zeros(n) for k in ("start", "end", "iterations", "dropped", "users",
                                                             "inflight", "target_rate", "cpu", "lag")}
    saturated = np.zeros(n, dtype=bool)
    for i, g in enumerate(groups):
        cols["start"][i] = points[i].start
        cols["end"][i] = points[i].end
        cols["iterations"][i] = sum(r["iterations"] for r in g)
        cols["dropped"][i] = sum(r["dropped_iterations"] for r in g)
        # Users and in-flight iterations are levels: per shard the window's peak, summed over shards.
        by_shard: dict[int, list[Row]] = defaultdict(list)
        for r in g:
            by_shard[r["shard"]].append(r)
        cols["users"][i] = sum(max(r["users"] for r in rs) for rs in by_shard.values())
        cols["inflight"][i] = sum(max(r["inflight"] for r in rs) for rs in by_shard.values())
        rates = [r["target_rate"] for r in g if r["target_rate"] is not None]
        cols["target_rate"][i] = (sum(rates) / len(g) * len(by_shard)) if rates else math.nan
        # CPU: per shard its mean over the window (weighted by interval length), the busiest shard's.
        cols["cpu"][i] = max(
            sum(r["cpu_percent"] * (r["end_s"] - r["start_s"]) for r in rs)
            / max(sum(r["end_s"] - r["start_s"] for r in rs), 1e-9)
            for rs in by_shard.values()
        )
        saturated[i] = any(r["saturated"] for r in g)
        lags = [r for r in g if r.get("lag_p99_ms") is not None]
        if len(g) == 1:
            cols["lag"][i] = g[0]["lag_p99_ms"] if lags else math.nan
        else:
            h = hdr.new_histogram()
            for r in g:
                if r.get("lag_hist"):
                    hdr.merge(h, decode_hist(r["lag_hist"]))
            cols["lag"][i] = hdr.percentile_ms(h, 99) if h.total_count else math.nan
    return GeneratorSeries(
        start=cols["start"], end=cols["end"], iterations=cols["iterations"], dropped=cols["dropped"],
        users=cols["users"], inflight=cols["inflight"], target_rate=cols["target_rate"],
        cpu_percent=cols["cpu"], lag_p99_ms=cols["lag"], saturated=saturated,
    )


_RESOURCE_FIELDS = ("cpu_percent", "rss_bytes", "threads")
_QUEUE_FIELDS = ("length", "processing_time_s", "published_per_s", "consumed_per_s", "error_rate", "backlog_age_s")


def _sample_series(rows: Sequence[Row], key: str, fields: Sequence[str], t0: float) -> dict[str, SampleSeries]:
    by: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by[r[key]].append(r)
    out = {}
    for name in sorted(by):
        rs = sorted(by[name], key=lambda r: r["ts"])
        out[name] = SampleSeries(
            t=np.array([r["ts"] - t0 for r in rs], dtype=float),
            values={f: _nan_array(r.get(f) for r in rs) for f in fields},
            source=rs[0].get("source"),
        )
    return out


def _endpoint_rows_from_intervals(intervals: Sequence[Row], duration_s: float) -> list[Row]:
    """Per-endpoint results merged from the intervals, for a run that never stored its own
    (killed mid-way: the intervals flushed up to then are all there is)."""
    by: dict[str, list[Row]] = defaultdict(list)
    for r in intervals:
        by[r["endpoint"]].append(r)
    out = []
    for key in sorted(by, key=lambda k: (k == TOTAL, k)):
        rows = by[key]
        h = _merge_rows(rows)
        s = hdr.summarize_ms(h)
        n = sum(r["requests"] for r in rows)
        e = sum(r["errors"] for r in rows)
        codes: dict[str, int] = defaultdict(int)
        kinds: dict[str, int] = defaultdict(int)
        for r in rows:
            for c, v in (r.get("status_codes") or {}).items():
                codes[c] += v
            for c, v in (r.get("errors_by_kind") or {}).items():
                kinds[c] += v
        out.append({
            "endpoint": key, "method": rows[0]["method"], "name": rows[0]["name"],
            "requests": n, "errors": e, "error_rate": e / n if n else 0.0,
            "rps": n / duration_s if duration_s > 0 else 0.0,
            "bytes_sent": sum(r["bytes_sent"] for r in rows),
            "bytes_received": sum(r["bytes_received"] for r in rows),
            **{f"{p}_ms": s[p] for p in ("p50", "p90", "p95", "p99", "p999", "max", "mean", "min")},
            "status_codes": dict(sorted(codes.items())), "errors_by_kind": dict(sorted(kinds.items())),
            "_histogram": h,
        })
    return out


async def load_run(store: Store, ref: str) -> RunData:
    """A stored run (an id, a unique id prefix, or ``latest``) with everything a report draws.

    Raises :class:`~loadgen.errors.UsageError` when the run is not in the store.
    """
    run = await store.get_run(ref)
    rid = run["id"]
    endpoints = await store.endpoint_results(rid)
    intervals = await store.intervals(rid)
    stats = await store.interval_stats(rid)
    resources = await store.resource_samples(rid)
    queues = await store.queue_samples(rid)

    from_intervals = False
    histograms: dict[str, HdrHistogram] = {}
    if endpoints:
        for r in endpoints:
            histograms[r["endpoint"]] = decode_hist(r["latency_hist"], r["latency_min_us"], r["latency_max_us"])
    elif intervals:
        from_intervals = True
        duration = run.get("duration_s") or max(r["end_s"] for r in intervals)
        endpoints = _endpoint_rows_from_intervals(intervals, duration)
        for r in endpoints:
            histograms[r["endpoint"]] = r.pop("_histogram")
    # ``total`` last, the rest by name (as the store orders them).
    endpoints = sorted(endpoints, key=lambda r: (r["endpoint"] == TOTAL, r["endpoint"]))

    w = _window(intervals or stats)
    by_ep: dict[str, list[Row]] = defaultdict(list)
    for r in intervals:
        by_ep[r["endpoint"]].append(r)
    busiest = sorted((k for k in by_ep if k != TOTAL),
                     key=lambda k: (-sum(r["requests"] for r in by_ep[k]), k))[:TOP_ENDPOINTS]
    points = _points(intervals, w)
    latency = {k: _interval_series(by_ep[k], points) for k in ([TOTAL] if TOTAL in by_ep else []) + busiest}
    started = run["started_at"]
    return RunData(
        run=run,
        endpoints=endpoints,
        histograms=histograms,
        latency=latency,
        generator=_generator_series(stats, w),
        resources=_sample_series(resources, "service", _RESOURCE_FIELDS, started),
        queues=_sample_series(queues, "queue", _QUEUE_FIELDS, started),
        window_s=float(w),
        from_intervals=from_intervals,
    )


# --- comparisons -----------------------------------------------------------------


def comparison_from_json(doc: dict[str, Any]) -> Comparison:
    """The comparison ``loadgen run --baseline-version`` stored with a run's summary."""
    return Comparison.from_json(doc)


async def _stats_of(store: Store, ids: Sequence[str]) -> list[RunStats]:
    out = []
    for rid in ids:
        try:
            run = await store.get_run(rid)
        except UsageError:
            continue  # deleted since: the comparison's rows still say what it found
        if run["id"] == rid:
            out.append(await store.run_stats(run))
    return out


async def load_comparison(
    store: Store,
    run: RunData,
    baseline_version: str | None = None,
    thresholds: Tolerances | None = None,
    baseline_runs: int | None = None,
) -> ComparisonData | None:
    """The run compared with the last K completed runs of ``baseline_version`` (computed now,
    as ``loadgen compare`` would, but not stored: a report only reads); without a baseline
    version, the comparison stored with the run (``loadgen run --baseline-version``), if any."""
    if baseline_version is None:
        doc = run.summary.get("comparison")
        if not doc:
            return None
        comparison = comparison_from_json(doc)
        candidate = await store.run_stats(run.run)
        return ComparisonData(comparison, candidate, await _stats_of(store, comparison.baseline_run_ids), "stored")

    from loadgen.store.history import compute_comparison, regression_thresholds

    th = regression_thresholds(thresholds, baseline_runs)
    comparison, candidate, baseline, _ = await compute_comparison(store, run.run, baseline_version, th)
    return ComparisonData(comparison, candidate, baseline, "computed")
