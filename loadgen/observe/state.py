"""What ``/metrics`` shows, folded from interval snapshots and collector samples.

The numpy work on a snapshot (:meth:`PreparedInterval.of`) reads the snapshot
only, so the exporter does it outside its lock; folding the result into
:class:`ExportState` is a few additions under the lock. Nothing here is
thread-safe by itself: the exporter holds its lock around every change and
every rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..engine import histogram as hdr
from ..engine.histogram import Layout
from ..engine.recorder import OTHER_NAME, EndpointInterval, IntervalSnapshot
from ..samples import QueueSample, ResourceSample
from ..sinks import RunView, scenario_label, target_of
from .buckets import BucketBounds, CumulativeBuckets
from .textformat import labels, origin
from .window import EMPTY, LatencyWindow, SparseCounts

__all__ = ["EndpointSeries", "ExportState", "GeneratorSeries", "MIN_INTERVAL_FOR_RATES_S", "PreparedInterval",
           "RunSeries", "add_status_classes"]

#: Shorter intervals (the last sliver of a run) leave rates and CPU as they were.
MIN_INTERVAL_FOR_RATES_S = 0.5

Key = tuple[str, str]  # (request name, method)


@dataclass(frozen=True, slots=True)
class EndpointPart:
    """One endpoint's interval with its latency counts, ready to fold."""

    key: Key
    interval: EndpointInterval
    counts: np.ndarray  # the latency histogram's counts prefix
    sparse: SparseCounts


@dataclass(frozen=True, slots=True)
class PreparedInterval:
    """An interval snapshot with the numpy work done (outside the exporter's lock)."""

    snap: IntervalSnapshot
    endpoints: tuple[EndpointPart, ...]
    lag_counts: np.ndarray
    rss: int | None  # the generator's memory, when known

    @classmethod
    def of(cls, snap: IntervalSnapshot, layout: Layout, rss: int | None) -> PreparedInterval:
        parts = []
        for ep in snap.endpoints.values():
            lat = ep.latency
            if not layout.fits(lat):  # pragma: no cover - every recorder histogram fits
                lat = hdr.merge(hdr.new_histogram(), lat)
            total = int(lat.total_count)
            if total:
                counts = layout.prefix(lat)
                sparse = SparseCounts.of(counts, total, int(lat.min_value), int(lat.max_value))
            else:
                counts, sparse = EMPTY.counts, EMPTY
            parts.append(EndpointPart((ep.name, ep.method), ep, counts, sparse))
        lag_counts = layout.prefix(snap.lag) if snap.lag.total_count else EMPTY.counts
        return cls(snap, tuple(parts), lag_counts, rss)


def add_status_classes(into: dict[str, int], ep: EndpointInterval) -> dict[str, int]:
    """Add ``ep``'s requests to ``into`` by status class (``2xx``..``5xx``; ``error`` for no HTTP
    response: connect, timeout, reset, protocol); returns ``into``."""
    responded = 0
    for code, n in ep.status_codes.items():
        cls = f"{code // 100}xx"
        into[cls] = into.get(cls, 0) + n
        responded += n
    transport = ep.requests - responded
    if transport > 0:
        into["error"] = into.get("error", 0) + transport
    return into


class EndpointSeries:
    """Cumulative series of one (name, method), with its label string built once."""

    __slots__ = ("lbl", "by_class", "errors", "sent", "received", "duration", "window", "quantiles")

    def __init__(self, const: str, key: Key, bounds: BucketBounds, window: int) -> None:
        self.lbl = f"{const},{labels((('name', key[0]), ('method', key[1])))}"
        self.by_class: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.sent = 0
        self.received = 0
        self.duration = CumulativeBuckets(bounds)
        self.window = LatencyWindow(window)
        self.quantiles: list[float] | None = None

    def fold(self, ep: EndpointInterval, counts: np.ndarray, total: int) -> None:
        add_status_classes(self.by_class, ep)
        for kind, n in ep.errors_by_kind.items():
            self.errors[kind] = self.errors.get(kind, 0) + n
        self.sent += ep.bytes_sent
        self.received += ep.bytes_received
        self.duration.add(counts, total)

    def slide(self, part: SparseCounts, percents: Sequence[float]) -> None:
        """Move the quantile window on by one interval (``part`` may be empty)."""
        if self.window.push(part):
            self.quantiles = self.window.quantiles_s(self.duration.bounds.layout, percents)


class GeneratorSeries:
    """The generator's own series: load, open-model arrivals, and its health."""

    def __init__(self, lag_bounds: BucketBounds) -> None:
        self.iterations = 0
        self.dropped = 0
        self.users = 0
        self.inflight = 0
        self.target_rate: float | None = None
        self.achieved_rate: float | None = None
        self.lag = CumulativeBuckets(lag_bounds)
        self.lag_p99_s = 0.0
        self.saturated = 0
        self.saturated_intervals = 0
        self.stall_s = 0.0
        self.stalled = 0
        self.stalled_intervals = 0
        self.failed: dict[str, int] = {}
        self.cpu_percent: float | None = None
        self.rss: int | None = None

    def fold(self, prepared: PreparedInterval, model: str) -> None:
        snap = prepared.snap
        self.iterations += snap.iterations
        self.dropped += snap.dropped_iterations
        self.users = snap.users
        self.inflight = snap.inflight
        full = snap.duration_s >= MIN_INTERVAL_FOR_RATES_S
        if model == "open":
            self._fold_arrivals(snap, prepared.lag_counts, full)
        if full:
            self.cpu_percent = snap.cpu_percent
        self._fold_health(snap)
        if prepared.rss is not None:
            self.rss = prepared.rss

    def _fold_arrivals(self, snap: IntervalSnapshot, lag_counts: np.ndarray, full: bool) -> None:
        lag_total = int(snap.lag.total_count)
        self.lag.add(lag_counts, lag_total)
        if lag_total:
            layout = self.lag.bounds.layout
            self.lag_p99_s = layout.values_at(np.cumsum(lag_counts), lag_total, (99.0,))[0] / 1e6
        elif full:
            self.lag_p99_s = 0.0
        self.target_rate = snap.target_rate
        if full:
            self.achieved_rate = snap.iterations / snap.duration_s

    def _fold_health(self, snap: IntervalSnapshot) -> None:
        self.stall_s = snap.stall.max_value / 1e6 if snap.stall.total_count else 0.0
        self.stalled = 1 if snap.stalled else 0
        self.stalled_intervals += self.stalled
        for task, n in snap.failed_iterations.items():
            self.failed[task] = self.failed.get(task, 0) + n
        self.saturated = 1 if snap.saturated else 0
        self.saturated_intervals += self.saturated


@dataclass
class RunSeries:
    """The run itself: its info labels, when it started, how far it is exported."""

    info: dict[str, str]
    model: str | None = None  # None until the first interval
    start_ts: float | None = None
    elapsed_s: float = 0.0
    intervals: int = 0
    finished: bool = False

    def begin(self, run: RunView, snap: IntervalSnapshot, now: float) -> None:
        """At the first interval: what the run is, for the labels the caller did not give."""
        self.model = run.model
        self.start_ts = now - snap.end_s
        self.info.setdefault("model", run.model)
        self.info.setdefault("scenario", scenario_label(run))
        if "host" not in self.info:
            host = target_of(run)
            self.info["host"] = origin(host) if host else ""


@dataclass
class ExportState:
    """Everything ``/metrics`` shows (see the module docstring)."""

    const: str  # the constant labels, rendered
    run: RunSeries
    buckets: BucketBounds
    generator: GeneratorSeries
    quantiles: tuple[float, ...]  # of the quantile gauges, as fractions
    window: int  # intervals in the quantile window
    max_endpoints: int | None  # None: the run's own cap, at the first interval
    endpoints: dict[Key, EndpointSeries] = field(default_factory=dict)
    services: dict[str, ResourceSample] = field(default_factory=dict)
    queues: dict[tuple[str, str], QueueSample] = field(default_factory=dict)  # by (queue, source)

    def fold(self, run: RunView, prepared: PreparedInterval, now: float) -> None:
        """Fold one prepared interval in; ``now`` is the wall clock (for the start timestamp)."""
        snap = prepared.snap
        if self.run.model is None:
            self.run.begin(run, snap, now)
            if self.max_endpoints is None:
                # The recorder already folds past its cap; one more row per method (__other__) fits.
                self.max_endpoints = run.recorder.max_names
        self.run.intervals += 1
        self.run.elapsed_s = snap.end_s
        parts: dict[Key, list[SparseCounts]] = {}
        for part in prepared.endpoints:
            key, series = self._series_for(part.key)
            series.fold(part.interval, part.counts, part.sparse.total)
            parts.setdefault(key, []).append(part.sparse)
        percents = tuple(q * 100.0 for q in self.quantiles)
        for key, series in self.endpoints.items():
            series.slide(SparseCounts.merged(parts.get(key, (EMPTY,))), percents)
        self.generator.fold(prepared, self.run.model or "")

    def _series_for(self, key: Key) -> tuple[Key, EndpointSeries]:
        """The series of a (name, method); past ``max_endpoints`` names fold into ``__other__``."""
        series = self.endpoints.get(key)
        if series is None:
            cap = self.max_endpoints
            if cap is not None and len(self.endpoints) >= cap and key[0] != OTHER_NAME:
                key = (OTHER_NAME, key[1])
                series = self.endpoints.get(key)
            if series is None:
                series = self.endpoints[key] = EndpointSeries(self.const, key, self.buckets, self.window)
        return key, series

    def take(self, samples: Iterable[ResourceSample | QueueSample]) -> None:
        """The collectors' readings: the newest per service or queue wins."""
        for s in samples:
            if isinstance(s, ResourceSample):
                old = self.services.get(s.service)
                if old is None or s.ts >= old.ts:
                    self.services[s.service] = s
            elif isinstance(s, QueueSample):
                key = (s.queue, s.source)
                oldq = self.queues.get(key)
                if oldq is None or s.ts >= oldq.ts:
                    self.queues[key] = s
            else:
                raise TypeError(f"not a ResourceSample or QueueSample: {type(s).__name__}")
