"""Live Prometheus metrics of a run: an engine sink that serves ``/metrics``.

:class:`MetricsExporter` is a results sink (``(IntervalSnapshot, Engine)``,
called once a second on the event loop). It derives every series from the
interval snapshot alone, so the hot path is untouched: no per-request work and
no lock a request could meet. Collectors in other threads hand their samples
to :meth:`MetricsExporter.observe_samples`.

Conventions: every series carries the constant labels ``run_id``,
``app_version`` and ``test_type``; request series are labelled by request
*name* (the scenario's ``name=``, or the URL path without its query), method
and status class, never by raw URL, and the number of distinct names is capped
(``max_endpoints``, by default the recorder's ``--max-names``, the same cap and
the same ``name="__other__"`` row as the summary and the store).

Latency histograms: ``loadgen_request_duration_seconds`` buckets are filled
from each interval's HDR histogram counts with numpy (one ``reduceat`` over
the counts up to the interval's max). A bucket ``le=B`` counts the values HDR
cannot tell from ``<= B``: every HDR sub-bucket whose lowest equivalent value
is ``<= B``. That is exact for bounds up to 2.047 ms (HDR keeps single
microseconds there) and within HDR's 3 significant figures (0.1 %) above.
``_count`` is the number of requests with a latency (responses and timeouts;
refused or reset connections have none), ``_sum`` the sum of HDR sub-bucket
midpoints. ``loadgen_request_duration_quantile_seconds`` are exact HDR
percentiles (as in the summary: hdrh's value at percentile, clamped to the
recorded min and max) of the last ``quantile_window`` intervals merged.

Exposition: the Prometheus text format (0.0.4) is rendered straight from the
state kept here, with each series' label string built once, and cached until
the state changes: rendering the ~360 lines of ten endpoints takes ~0.1 ms (a
whole HTTP scrape ~0.4 ms of CPU), where prometheus_client's ``generate_latest``
takes ~3 ms (holding the GIL, so the event loop would stall that long at every
scrape). The exporter's
own :attr:`~MetricsExporter.registry` (never the global one) holds a custom
collector yielding the same families (parsed from that text), for anyone who
wants prometheus_client's own exposition or parser.

Typical use (the CLI)::

    exporter = MetricsExporter(run_id=..., app_version=..., test_type=..., info={...})
    exporter.start(port=9646, addr="127.0.0.1")   # UsageError when the port is taken
    result = Engine(config, ..., sinks=[display, exporter]).run()
    exporter.finish()                             # loadgen_run_finished 1
    print(summary)
    exporter.linger(15.0)    # serve until a scrape after the run has started (at most 15 s)
    exporter.stop()
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from . import histogram as hdr
from ._version import __version__
from .errors import UsageError
from .recorder import DEFAULT_MAX_NAMES
from .recorder import OTHER_NAME as _OTHER_NAME
from .samples import QueueSample, ResourceSample

if TYPE_CHECKING:
    from .recorder import EndpointInterval, IntervalSnapshot

__all__ = [
    "MetricsExporter",
    "DEFAULT_PORT",
    "DEFAULT_ADDR",
    "DEFAULT_GRACE_S",
    "DURATION_BUCKETS_S",
    "LAG_BUCKETS_S",
    "QUANTILES",
    "CONST_LABELS",
    "CONTENT_TYPE",
    "METRICS",
]

#: Default of ``--metrics-port`` (not taken in Prometheus's default port allocations).
DEFAULT_PORT = 9646
DEFAULT_ADDR = "127.0.0.1"
#: Default longest wait after a run for a last scrape (``--metrics-grace``).
DEFAULT_GRACE_S = 15.0
#: Request latency buckets, seconds: 1 ms to 60 s.
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: Scheduler lag buckets, seconds: 0.5 ms to 5 s.
LAG_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Quantiles of the sliding-window latency gauges.
QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)
CONST_LABELS = ("run_id", "app_version", "test_type")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER_NAME = _OTHER_NAME  # one name for the overflow row everywhere (loadgen.recorder)
#: Shorter intervals (the last sliver of a run) leave rates and CPU as they were.
_MIN_INTERVAL_FOR_RATES_S = 0.5


# -- the catalogue --------------------------------------------------------------------

#: Every metric family: name -> (type, labels besides the constant ones, help).
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    # The run.
    "loadgen_run_info": ("gauge", ("scenario", "host", "model", "loadgen_version"),
                         "The run: scenario file, target origin, model and loadgen version (always 1)."),
    "loadgen_run_start_timestamp_seconds": ("gauge", (), "When the run started, seconds since the epoch."),
    "loadgen_run_elapsed_seconds": ("gauge", (), "Seconds of the run covered by the exported intervals."),
    "loadgen_run_finished": ("gauge", (), "1 once the run has ended and all of it is exported."),
    "loadgen_intervals_total": ("counter", (), "Intervals (of a second) exported."),
    # Requests, by request name and method.
    "loadgen_requests_total": ("counter", ("name", "method", "status_class"),
                               "Requests done, by status class: 1xx-5xx, or error when no HTTP response came."),
    "loadgen_errors_total": ("counter", ("name", "method", "kind"),
                             "Failed requests and checks by kind: http_4xx, http_5xx, connect, timeout, reset, "
                             "protocol, cutoff (in flight when the run ended), too_large (a response past a size "
                             "limit), invalid_request (could not be sent as asked), check, other."),
    "loadgen_sent_bytes_total": ("counter", ("name", "method"), "Bytes sent in requests."),
    "loadgen_received_bytes_total": ("counter", ("name", "method"), "Bytes received in responses."),
    "loadgen_request_duration_seconds": ("histogram", ("name", "method"),
                                         "Request latency (open model: from the intended start), from HDR "
                                         "histograms; requests without a response time are not in it."),
    "loadgen_request_duration_quantile_seconds": ("gauge", ("name", "method", "quantile"),
                                                  "Latency quantiles of the last intervals (a sliding window), "
                                                  "exact from HDR histograms."),
    # The generator.
    "loadgen_iterations_total": ("counter", (), "Iterations started."),
    "loadgen_dropped_iterations_total": ("counter", (),
                                         "Open model: arrivals dropped because every user was busy (--max-inflight)."),
    "loadgen_active_users": ("gauge", (), "Live users."),
    "loadgen_inflight_iterations": ("gauge", (), "Users busy with an iteration."),
    "loadgen_target_arrival_rate": ("gauge", (), "Open model: intended iterations per second."),
    "loadgen_achieved_arrival_rate": ("gauge", (), "Open model: iterations started per second in the last interval."),
    "loadgen_scheduler_lag_seconds": ("histogram", (), "Open model: how late the scheduler dispatched arrivals."),
    "loadgen_scheduler_lag_p99_seconds": ("gauge", (), "Open model: p99 dispatch lag in the last interval."),
    "loadgen_generator_saturated": ("gauge", (), "1 when the generator itself limited the last interval."),
    "loadgen_saturated_intervals_total": ("counter", (), "Intervals the generator itself limited."),
    "loadgen_event_loop_stall_seconds": ("gauge", (),
                                         "Longest event-loop stall in the last interval: how late the stall "
                                         "monitor's tick fired (a blocking call, a burst, CPU)."),
    "loadgen_generator_stalled": ("gauge", (), "1 when an event-loop stall distorted the last interval."),
    "loadgen_stalled_intervals_total": ("counter", (), "Intervals an event-loop stall distorted."),
    "loadgen_failed_iterations_total": ("counter", ("task",),
                                        "Iterations that ended in an exception, by task (User.on_start included)."),
    "loadgen_generator_cpu_percent": ("gauge", (), "The generator's CPU in the last interval, % of one core."),
    "loadgen_generator_memory_bytes": ("gauge", (), "The generator's resident memory (RSS)."),
    # Services, from the collectors' resource samples.
    "loadgen_service_cpu_percent": ("gauge", ("service",), "A service's CPU, % of one core."),
    "loadgen_service_memory_bytes": ("gauge", ("service",), "A service's resident memory (RSS, its processes summed)."),
    "loadgen_service_threads": ("gauge", ("service",), "A service's threads."),
    "loadgen_service_disk_read_bytes_total": ("counter", ("service",), "Bytes a service read from disk."),
    "loadgen_service_disk_write_bytes_total": ("counter", ("service",), "Bytes a service wrote to disk."),
    "loadgen_service_network_sent_bytes_total": ("counter", ("service", "scope"),
                                                 "Bytes sent on the network; scope: process (the service's own), "
                                                 "namespace (its network namespace) or system (the whole host)."),
    "loadgen_service_network_received_bytes_total": ("counter", ("service", "scope"),
                                                     "Bytes received from the network; scope: process, namespace or system."),
    # Queues, from the collectors' queue samples.
    "loadgen_queue_length": ("gauge", ("queue", "source"), "Messages waiting in a queue."),
    "loadgen_queue_processing_seconds": ("gauge", ("queue", "source"),
                                         "Mean time to process one message over the last sample period."),
    "loadgen_queue_published_per_second": ("gauge", ("queue", "source"), "Messages published per second."),
    "loadgen_queue_consumed_per_second": ("gauge", ("queue", "source"), "Messages consumed per second."),
    "loadgen_queue_error_ratio": ("gauge", ("queue", "source"),
                                  "Failed over processed messages in the last sample period."),
    "loadgen_queue_backlog_age_seconds": ("gauge", ("queue", "source"), "Age of the oldest waiting message."),
}  # fmt: skip

_SERVICE_FIELDS = (
    ("loadgen_service_cpu_percent", "cpu_percent"),
    ("loadgen_service_memory_bytes", "rss_bytes"),
    ("loadgen_service_threads", "threads"),
    ("loadgen_service_disk_read_bytes_total", "disk_read_bytes"),
    ("loadgen_service_disk_write_bytes_total", "disk_write_bytes"),
    ("loadgen_service_network_sent_bytes_total", "net_sent_bytes"),
    ("loadgen_service_network_received_bytes_total", "net_recv_bytes"),
)
_QUEUE_FIELDS = (
    ("loadgen_queue_length", "length"),
    ("loadgen_queue_processing_seconds", "processing_time_s"),
    ("loadgen_queue_published_per_second", "published_per_s"),
    ("loadgen_queue_consumed_per_second", "consumed_per_s"),
    ("loadgen_queue_error_ratio", "error_rate"),
    ("loadgen_queue_backlog_age_seconds", "backlog_age_s"),
)


# -- text format helpers ---------------------------------------------------------------


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_esc(str(v))}"' for k, v in pairs)


def _num(v: float | int) -> str:
    if isinstance(v, int):
        return str(v)
    return floatToGoString(v)


def _help(doc: str) -> str:
    return doc.replace("\\", "\\\\").replace("\n", "\\n")


#: The HELP and TYPE lines of each family, built once.
_HEAD: dict[str, tuple[str, str]] = {
    name: (f"# HELP {name} {_help(doc)}", f"# TYPE {name} {mtype}") for name, (mtype, _, doc) in METRICS.items()
}


# -- HDR histogram arithmetic ---------------------------------------------------------


class _HdrLayout:
    """Index arithmetic of the histograms made by :func:`loadgen.histogram.new_histogram`."""

    def __init__(self) -> None:
        self.tmpl = t = hdr.full_histogram()
        self.counts_len = t.counts_len
        h = t.sub_bucket_half_count_magnitude
        nz = np.arange(t.counts_len, dtype=np.int64)
        half = 1 << h
        bucket = np.maximum((nz >> h) - 1, 0)
        sub = np.where(nz >= half, (nz & (half - 1)) + half, nz)
        shift = bucket + t.unit_magnitude
        lowest = sub << shift
        #: Midpoint of each sub-bucket, µs (what hdrh's mean uses).
        self.medians = (lowest + ((np.int64(1) << shift) >> 1)).astype(np.uint64)
        #: Highest value of each sub-bucket, µs (what hdrh's percentiles report).
        self.highest = lowest + (np.int64(1) << shift) - 1

    def same(self, hist: HdrHistogram) -> bool:
        t = self.tmpl
        return (  # any length: histograms grow on demand (loadgen.histogram.new_histogram)
            hist.counts_len <= t.counts_len
            and hist.unit_magnitude == t.unit_magnitude
            and hist.sub_bucket_half_count_magnitude == t.sub_bucket_half_count_magnitude
            and hist.word_size == t.word_size
        )

    def index_of_us(self, value_us: int) -> int:
        return min(self.tmpl.get_counts_array_index(max(int(value_us), 0)), self.counts_len - 1)

    def edges(self, bounds_s: Sequence[float]) -> np.ndarray:
        """``[0, idx(b0) + 1, idx(b1) + 1, ...]``: reduceat segments ending at each bound's index."""
        idx = [self.index_of_us(round(b * 1e6)) for b in bounds_s]
        if any(b >= a for a, b in zip(idx[1:], idx)):
            raise ValueError(f"bucket bounds {list(bounds_s)} are not distinct at HDR resolution")
        return np.array([0, *(i + 1 for i in idx)], dtype=np.intp)

    def prefix(self, hist: HdrHistogram) -> np.ndarray:
        """The counts up to the histogram's max value (the rest are zero), a view."""
        limit = self.index_of_us(hist.max_value) + 1
        return np.frombuffer(hist.counts, dtype=np.uint64, count=limit)

    def percentiles_us(self, cumulative: np.ndarray, total: int, percents: Sequence[float]) -> list[int]:
        """hdrh's ``get_value_at_percentile`` (p > 0) from cumulative counts (from index 0)."""
        targets = np.array([max(int(((p * total / 100)) + 0.5), 1) for p in percents], dtype=np.uint64)
        return self.highest[np.searchsorted(cumulative, targets, side="left")].tolist()


class _Buckets:
    """A cumulative Prometheus histogram (buckets, count, sum) fed from HDR histograms."""

    __slots__ = ("le", "count", "sum_us")

    def __init__(self, n_bounds: int) -> None:
        self.le = np.zeros(n_bounds, dtype=np.int64)  # cumulative: values <= each bound
        self.count = 0
        self.sum_us = 0

    def add(self, layout: _HdrLayout, edges: np.ndarray, counts: np.ndarray, total: int) -> None:
        """Add one histogram, given as its counts prefix (see :meth:`_HdrLayout.prefix`)."""
        if not total:
            return
        k = int(np.searchsorted(edges, counts.size, side="left")) - 1  # bounds inside the prefix
        if k > 0:
            seg = np.add.reduceat(counts, edges[: k + 1])  # k+1 segments; the last runs to the end
            self.le[:k] += np.cumsum(seg[:k]).astype(np.int64)
        self.le[k:] += total
        self.count += total
        self.sum_us += int(np.dot(counts, layout.medians[: counts.size]))


class _Window:
    """The last N intervals of one endpoint's latencies, merged exactly."""

    __slots__ = ("entries", "counts", "total")

    def __init__(self, size: int) -> None:
        # Per interval: (non-zero indices, their counts, total, min µs, max µs); empty ones keep their place.
        self.entries: deque[tuple[np.ndarray, np.ndarray, int, int, int]] = deque(maxlen=size)
        self.counts = np.zeros(0, dtype=np.uint64)
        self.total = 0

    def push(self, nz: np.ndarray, w: np.ndarray, total: int, mn: int, mx: int) -> bool:
        """Add an interval (dropping the oldest); returns whether the merged histogram changed."""
        changed = False
        if len(self.entries) == self.entries.maxlen:
            onz, ow, ototal, _, _ = self.entries[0]
            if ototal:
                self.counts[onz] -= ow
                self.total -= ototal
                changed = True
        self.entries.append((nz, w, total, mn, mx))
        if total:
            need = int(nz[-1]) + 1
            if need > self.counts.size:
                grown = np.zeros(max(need, 2 * self.counts.size), dtype=np.uint64)
                grown[: self.counts.size] = self.counts
                self.counts = grown
            self.counts[nz] += w
            self.total += total
            changed = True
        return changed

    def quantiles_s(self, layout: _HdrLayout, percents: Sequence[float]) -> list[float] | None:
        if not self.total:
            return None
        live = [e for e in self.entries if e[2]]
        limit = max(int(e[0][-1]) for e in live) + 1
        lo = min(e[3] for e in live)
        hi = max(e[4] for e in live)
        cumulative = np.cumsum(self.counts[:limit])
        return [min(max(v, lo), hi) / 1e6 for v in layout.percentiles_us(cumulative, self.total, percents)]


def _sparse(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = np.flatnonzero(counts != 0)
    return nz, counts[nz]


def _merge_sparse(
    parts: list[tuple[np.ndarray, np.ndarray, int, int, int]],
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Several endpoints' histograms of one interval as one (names folded into ``__other__``)."""
    live = [p for p in parts if p[2]]
    if not live:
        return _EMPTY_I, _EMPTY_U, 0, 0, 0
    idx, inverse = np.unique(np.concatenate([p[0] for p in live]), return_inverse=True)
    w = np.zeros(idx.size, dtype=np.uint64)
    np.add.at(w, inverse, np.concatenate([p[1] for p in live]))
    return idx, w, sum(p[2] for p in live), min(p[3] for p in live), max(p[4] for p in live)


_EMPTY_I = np.empty(0, dtype=np.intp)
_EMPTY_U = np.empty(0, dtype=np.uint64)


class _Endpoint:
    """Cumulative state of one (name, method), with its label strings built once."""

    __slots__ = ("lbl", "by_class", "errors", "sent", "received", "duration", "window", "quantiles")

    def __init__(self, const: str, name: str, method: str, n_bounds: int, window: int) -> None:
        self.lbl = f"{const},{_labels((('name', name), ('method', method)))}"
        self.by_class: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.sent = 0
        self.received = 0
        self.duration = _Buckets(n_bounds)
        self.window = _Window(window)
        self.quantiles: list[float] | None = None


# -- the HTTP server ----------------------------------------------------------------


class _Handler(WSGIRequestHandler):
    timeout = 10  # a stalled client cannot hold stop() for long

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no access log on the terminal
        pass


class _Server(ThreadingMixIn, WSGIServer):
    # Non-daemon request threads: server_close() joins them, so stop() never cuts the
    # response of a scrape in progress short (the scrape after a run is why we linger).
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True  # on Linux this still refuses a port another socket listens on


class _Server6(_Server):
    address_family = socket.AF_INET6


# -- the exporter -------------------------------------------------------------------


class MetricsExporter:
    """Prometheus metrics of one run; an engine sink (see the module docstring)."""

    def __init__(
        self,
        *,
        run_id: str,
        app_version: str | None = None,
        test_type: str = "load",
        info: Mapping[str, str] | None = None,
        quantile_window: int = 10,
        quantiles: Sequence[float] = QUANTILES,
        buckets_s: Sequence[float] = DURATION_BUCKETS_S,
        lag_buckets_s: Sequence[float] = LAG_BUCKETS_S,
        max_endpoints: int | None = None,
        memory: bool = True,
    ) -> None:
        """``info``: more labels of ``loadgen_run_info`` (scenario, host, model, ...);
        ``scenario``, ``host`` and ``model`` are filled from the engine when missing."""
        if quantile_window < 1:
            raise ValueError("quantile_window must be at least 1")
        self.run_id = run_id
        self._const = _labels(zip(CONST_LABELS, (str(run_id), app_version or "", test_type or "")))
        self._info: dict[str, str] = {str(k): str(v) for k, v in (info or {}).items()}
        if self._info.get("host"):  # an origin only: no path, query or credentials in a label
            self._info["host"] = _origin(self._info["host"]) or self._info["host"]
        self._window = quantile_window
        self._layout = layout = _HdrLayout()
        self._q_percents = tuple(q * 100.0 for q in quantiles)
        self._q_labels = tuple(f'quantile="{floatToGoString(q)}"' for q in quantiles)
        self._buckets = tuple(sorted(buckets_s))
        self._edges = layout.edges(self._buckets)
        self._le = tuple(f'le="{floatToGoString(b)}"' for b in self._buckets) + ('le="+Inf"',)
        self._lag_buckets = tuple(sorted(lag_buckets_s))
        self._lag_edges = layout.edges(self._lag_buckets)
        self._lag_le = tuple(f'le="{floatToGoString(b)}"' for b in self._lag_buckets) + ('le="+Inf"',)
        self._max_endpoints = max_endpoints  # None: the engine recorder's cap, at the first interval
        self._proc: Any = None
        if memory:
            try:
                import psutil

                self._proc = psutil.Process()
            except Exception:  # pragma: no cover - psutil is a dependency
                self._proc = None

        self._lock = threading.Lock()
        self._version = 0  # bumped on every change; the rendered text is cached per version
        self._cache: tuple[int, bytes] = (-1, b"")
        # Run state: written by __call__ (event loop), read by render (server thread).
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self._model: str | None = None
        self._start_ts: float | None = None
        self._elapsed_s = 0.0
        self._intervals = 0
        self._saturated_intervals = 0
        self._iterations = 0
        self._dropped = 0
        self._users = 0
        self._inflight = 0
        self._target_rate: float | None = None
        self._achieved_rate: float | None = None
        self._lag = _Buckets(len(self._lag_buckets))
        self._lag_p99_s = 0.0
        self._saturated = 0
        self._stall_s = 0.0
        self._stalled = 0
        self._stalled_intervals = 0
        self._failed: dict[str, int] = {}
        self._cpu_percent: float | None = None
        self._rss: int | None = None
        self._finished = False
        # The collectors' latest samples.
        self._services: dict[str, ResourceSample] = {}
        self._queues: dict[tuple[str, str], QueueSample] = {}
        self._scrapes = 0
        self._scraped_after_finish = threading.Event()

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._addr = DEFAULT_ADDR

    # -- serving ---------------------------------------------------------------------

    def start(self, port: int = DEFAULT_PORT, addr: str = DEFAULT_ADDR) -> MetricsExporter:
        """Serve ``/metrics`` on ``addr:port`` from a thread (port 0: a free port); returns self.

        Raises :class:`~loadgen.errors.UsageError` (one sentence) when the port
        is taken or the address is not one of this machine's.
        """
        if self._server is not None:
            raise RuntimeError("the metrics exporter is already serving")
        if not 0 <= port <= 65535:
            raise UsageError(f"--metrics-port {port} is not a port number (0-65535)")
        server_class = _Server6 if ":" in addr else _Server
        try:
            server = make_server(addr, port, self._wsgi, server_class, _Handler)
        except OSError as exc:
            raise _bind_error(exc, addr, port) from None
        self._server = server
        self._addr = addr
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="loadgen-metrics", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics exporter is not serving")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://addr:port/metrics`` (an unspecified address shown as loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._addr, self._addr)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/metrics"

    @property
    def scrapes(self) -> int:
        """How many times the metrics were rendered for a client (scrapes)."""
        return self._scrapes

    def finish(self) -> None:
        """Mark the run finished (``loadgen_run_finished`` 1); call when the engine has returned."""
        with self._lock:
            if not self._finished:
                self._finished = True
                self._version += 1

    def linger(self, seconds: float = DEFAULT_GRACE_S, *, until_scraped: bool = True) -> bool:
        """Keep serving after the run so its final values are scraped; blocks.

        With ``until_scraped`` returns as soon as a scrape has started after
        :meth:`finish` (that scrape is answered in full even if :meth:`stop`
        follows at once), else after ``seconds``. Returns whether such a scrape
        happened. Calls :meth:`finish` first.
        """
        self.finish()
        if self._server is None or seconds <= 0:
            return self._scraped_after_finish.is_set()
        if until_scraped:
            return self._scraped_after_finish.wait(seconds)
        time.sleep(seconds)
        return self._scraped_after_finish.is_set()

    def stop(self, grace_s: float = 0.0) -> None:
        """Stop serving, after :meth:`linger` for up to ``grace_s``; a scrape in progress completes."""
        if grace_s > 0:
            self.linger(grace_s)
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()  # joins request threads
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MetricsExporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"method not allowed\n"]
        if path == "/":
            body = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
            start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
            return [body] if method == "GET" else []
        if path != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; the metrics are at /metrics\n"]
        body = self.render(scrape=True)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [body] if method == "GET" else []

    # -- the sink --------------------------------------------------------------------

    def __call__(self, snap: IntervalSnapshot, engine: Any) -> None:
        """Fold one interval snapshot into the exported state (on the event loop; cheap)."""
        layout = self._layout
        rss = None
        if self._proc is not None:
            try:
                rss = int(self._proc.memory_info().rss)
            except Exception:  # pragma: no cover - the process is ourselves
                rss = None
        # The numpy work needs no lock: it reads the snapshot only.
        updates: list[tuple[tuple[str, str], EndpointInterval, np.ndarray, tuple[Any, ...]]] = []
        for ep in snap.endpoints.values():
            lat = ep.latency
            if not layout.same(lat):  # pragma: no cover - every recorder histogram has this layout
                lat = hdr.merge(hdr.new_histogram(), lat)
            total = int(lat.total_count)
            if total:
                counts = layout.prefix(lat)
                nz, w = _sparse(counts)
                part = (nz, w, total, int(lat.min_value), int(lat.max_value))
            else:
                counts, part = _EMPTY_U, (_EMPTY_I, _EMPTY_U, 0, 0, 0)
            updates.append(((ep.name, ep.method), ep, counts, part))
        lag_total = int(snap.lag.total_count)
        lag_counts = layout.prefix(snap.lag) if lag_total else _EMPTY_U
        dur = snap.duration_s
        with self._lock:
            self._version += 1
            if self._model is None:
                self._first_interval(snap, engine)
            self._intervals += 1
            self._elapsed_s = snap.end_s
            parts: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
            for key, ep, counts, part in updates:
                key, st = self._state_for(key)
                self._fold_endpoint(st, ep, counts, part[2])
                parts.setdefault(key, []).append(part)
            for key, st in self._endpoints.items():
                p = parts.get(key)
                if p is None:
                    changed = st.window.push(_EMPTY_I, _EMPTY_U, 0, 0, 0)
                else:
                    changed = st.window.push(*(p[0] if len(p) == 1 else _merge_sparse(p)))
                if changed:
                    st.quantiles = st.window.quantiles_s(layout, self._q_percents)
            # The generator.
            self._iterations += snap.iterations
            self._dropped += snap.dropped_iterations
            self._users = snap.users
            self._inflight = snap.inflight
            if self._model == "open":
                self._lag.add(layout, self._lag_edges, lag_counts, lag_total)
                if lag_total:
                    cumulative = np.cumsum(lag_counts)
                    self._lag_p99_s = layout.percentiles_us(cumulative, lag_total, (99.0,))[0] / 1e6
                elif dur >= _MIN_INTERVAL_FOR_RATES_S:
                    self._lag_p99_s = 0.0
                self._target_rate = snap.target_rate
            if dur >= _MIN_INTERVAL_FOR_RATES_S:
                if self._model == "open":
                    self._achieved_rate = snap.iterations / dur
                self._cpu_percent = snap.cpu_percent
            self._stall_s = snap.stall.max_value / 1e6 if snap.stall.total_count else 0.0
            self._stalled = 1 if snap.stalled else 0
            if snap.stalled:
                self._stalled_intervals += 1
            for task, n in snap.failed_iterations.items():
                self._failed[task] = self._failed.get(task, 0) + n
            self._saturated = 1 if snap.saturated else 0
            if snap.saturated:
                self._saturated_intervals += 1
            if rss is not None:
                self._rss = rss

    def _fold_endpoint(self, st: _Endpoint, ep: EndpointInterval, counts: np.ndarray, total: int) -> None:
        responded = 0
        by_class = st.by_class
        for code, n in ep.status_codes.items():
            cls = f"{code // 100}xx"
            by_class[cls] = by_class.get(cls, 0) + n
            responded += n
        transport = ep.requests - responded  # no HTTP response: connect, timeout, reset, protocol
        if transport > 0:
            by_class["error"] = by_class.get("error", 0) + transport
        for kind, n in ep.errors_by_kind.items():
            st.errors[kind] = st.errors.get(kind, 0) + n
        st.sent += ep.bytes_sent
        st.received += ep.bytes_received
        st.duration.add(self._layout, self._edges, counts, total)

    def _state_for(self, key: tuple[str, str]) -> tuple[tuple[str, str], _Endpoint]:
        """The state of a (name, method); past ``max_endpoints`` names fold into ``__other__``."""
        st = self._endpoints.get(key)
        if st is None:
            if self._max_endpoints is None:
                self._max_endpoints = DEFAULT_MAX_NAMES
            if len(self._endpoints) >= self._max_endpoints and key[0] != OTHER_NAME:
                key = (OTHER_NAME, key[1])
                st = self._endpoints.get(key)
            if st is None:
                st = self._endpoints[key] = _Endpoint(self._const, key[0], key[1], len(self._buckets), self._window)
        return key, st

    def _first_interval(self, snap: IntervalSnapshot, engine: Any) -> None:
        self._model = str(getattr(engine, "model", "") or "")
        if self._max_endpoints is None:
            # The recorder already folds past its cap; one more row per method (__other__) fits.
            self._max_endpoints = getattr(getattr(engine, "recorder", None), "max_names", DEFAULT_MAX_NAMES)
        self._start_ts = time.time() - snap.end_s
        info = self._info
        info.setdefault("model", self._model)
        scenario = getattr(engine, "scenario", None)
        if "scenario" not in info:
            info["scenario"] = Path(scenario.path).name if scenario is not None else "adhoc"
        if "host" not in info:
            config = getattr(engine, "config", None)
            adhoc = getattr(engine, "adhoc", None)
            host = getattr(config, "host", None) or getattr(scenario, "host", None) or getattr(adhoc, "url", None)
            info["host"] = _origin(host) if host else ""

    # -- the collectors' samples -------------------------------------------------------

    def observe_samples(self, samples: Iterable[ResourceSample | QueueSample]) -> None:
        """Take the collectors' readings (from any thread); the newest per service or queue wins."""
        with self._lock:
            self._version += 1
            for s in samples:
                if isinstance(s, ResourceSample):
                    old = self._services.get(s.service)
                    if old is None or s.ts >= old.ts:
                        self._services[s.service] = s
                elif isinstance(s, QueueSample):
                    key = (s.queue, s.source)
                    oldq = self._queues.get(key)
                    if oldq is None or s.ts >= oldq.ts:
                        self._queues[key] = s
                else:
                    raise TypeError(f"not a ResourceSample or QueueSample: {type(s).__name__}")

    # -- exposition --------------------------------------------------------------------

    def render(self, *, scrape: bool = False) -> bytes:
        """The metrics in the Prometheus text format (0.0.4); cached until the state changes.

        ``scrape``: count it as a scrape (for :meth:`linger`); the HTTP endpoint does.
        """
        with self._lock:
            if scrape:
                self._scrapes += 1
                if self._finished:
                    self._scraped_after_finish.set()
            version, body = self._cache
            if version != self._version:
                body = ("\n".join(self._lines()) + "\n").encode()
                self._cache = (self._version, body)
            return body

    def collect(self) -> Iterator[Metric]:
        """The same metric families for prometheus_client (its exposition, parser, or registry)."""
        yield from text_string_to_metric_families(self.render().decode())

    def _lines(self) -> list[str]:
        c = self._const
        out: list[str] = []
        head = out.extend

        def one(name: str, value: float | int) -> None:
            head(_HEAD[name])
            out.append(f"{name}{{{c}}} {_num(value)}")

        # The run.
        head(_HEAD["loadgen_run_info"])
        info = {"loadgen_version": __version__, **self._info}
        out.append(f"loadgen_run_info{{{c},{_labels(sorted(info.items()))}}} 1")
        if self._start_ts is not None:
            one("loadgen_run_start_timestamp_seconds", self._start_ts)
        one("loadgen_run_elapsed_seconds", self._elapsed_s)
        one("loadgen_run_finished", int(self._finished))
        one("loadgen_intervals_total", self._intervals)

        # Requests.
        eps = list(self._endpoints.values())
        if eps:
            head(_HEAD["loadgen_requests_total"])
            for st in eps:
                for cls, n in st.by_class.items():
                    out.append(f'loadgen_requests_total{{{st.lbl},status_class="{cls}"}} {n}')
            if any(st.errors for st in eps):
                head(_HEAD["loadgen_errors_total"])
                for st in eps:
                    for kind, n in st.errors.items():
                        out.append(f'loadgen_errors_total{{{st.lbl},kind="{_esc(kind)}"}} {n}')
            head(_HEAD["loadgen_sent_bytes_total"])
            out.extend(f"loadgen_sent_bytes_total{{{st.lbl}}} {st.sent}" for st in eps)
            head(_HEAD["loadgen_received_bytes_total"])
            out.extend(f"loadgen_received_bytes_total{{{st.lbl}}} {st.received}" for st in eps)
            head(_HEAD["loadgen_request_duration_seconds"])
            for st in eps:
                self._histogram(out, "loadgen_request_duration_seconds", st.lbl, st.duration, self._le)
            name = "loadgen_request_duration_quantile_seconds"
            head(_HEAD[name])
            for st in eps:
                if st.quantiles is not None:
                    for q, v in zip(self._q_labels, st.quantiles):
                        out.append(f"{name}{{{st.lbl},{q}}} {_num(v)}")

        # The generator.
        one("loadgen_iterations_total", self._iterations)
        one("loadgen_dropped_iterations_total", self._dropped)
        one("loadgen_active_users", self._users)
        one("loadgen_inflight_iterations", self._inflight)
        if self._model == "open":
            if self._target_rate is not None:
                one("loadgen_target_arrival_rate", self._target_rate)
            if self._achieved_rate is not None:
                one("loadgen_achieved_arrival_rate", self._achieved_rate)
            head(_HEAD["loadgen_scheduler_lag_seconds"])
            self._histogram(out, "loadgen_scheduler_lag_seconds", c, self._lag, self._lag_le)
            one("loadgen_scheduler_lag_p99_seconds", self._lag_p99_s)
        one("loadgen_generator_saturated", self._saturated)
        one("loadgen_saturated_intervals_total", self._saturated_intervals)
        one("loadgen_event_loop_stall_seconds", self._stall_s)
        one("loadgen_generator_stalled", self._stalled)
        one("loadgen_stalled_intervals_total", self._stalled_intervals)
        if self._failed:
            head(_HEAD["loadgen_failed_iterations_total"])
            for task, n in sorted(self._failed.items()):
                out.append(f'loadgen_failed_iterations_total{{{c},{_labels((("task", task),))}}} {n}')
        if self._cpu_percent is not None:
            one("loadgen_generator_cpu_percent", self._cpu_percent)
        if self._rss is not None:
            one("loadgen_generator_memory_bytes", self._rss)

        # Services: the collectors' resource samples.
        services = sorted(self._services.items())
        for name, attr in _SERVICE_FIELDS:
            rows = [(svc, smp, getattr(smp, attr)) for svc, smp in services if getattr(smp, attr) is not None]
            if rows:
                head(_HEAD[name])
                scoped = attr.startswith("net_")
                for svc, smp, v in rows:
                    lbl = _labels((("service", svc), ("scope", smp.net_scope)) if scoped else (("service", svc),))
                    out.append(f"{name}{{{c},{lbl}}} {_num(v)}")

        # Queues: the collectors' queue samples.
        queues = sorted(self._queues.items())
        for name, attr in _QUEUE_FIELDS:
            rows2 = [(key, getattr(smp, attr)) for key, smp in queues if getattr(smp, attr) is not None]
            if rows2:
                head(_HEAD[name])
                for (queue, source), v in rows2:
                    out.append(f"{name}{{{c},{_labels((('queue', queue), ('source', source)))}}} {_num(v)}")
        return out

    @staticmethod
    def _histogram(out: list[str], name: str, lbl: str, b: _Buckets, le: Sequence[str]) -> None:
        for bound, n in zip(le, [*b.le.tolist(), b.count]):
            out.append(f"{name}_bucket{{{lbl},{bound}}} {n}")
        out.append(f"{name}_count{{{lbl}}} {b.count}")
        out.append(f"{name}_sum{{{lbl}}} {_num(b.sum_us / 1e6)}")


class _Collector:
    """The registry's view of an exporter: a custom collector, no private attributes poked."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        return self._exporter.collect()


def _origin(url: str) -> str:
    """``scheme://host:port`` of a URL: no path, query or credentials in a label."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _bind_error(exc: OSError, addr: str, port: int) -> UsageError:
    if isinstance(exc, socket.gaierror):
        return UsageError(f"--metrics-addr {addr!r} is not a valid address ({exc.strerror})")
    if exc.errno == errno.EADDRINUSE:
        return UsageError(f"--metrics-port {port} is in use on {addr}")
    if exc.errno == errno.EACCES:
        return UsageError(f"--metrics-port {port} on {addr} needs privileges; use a port above 1023")
    if exc.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"--metrics-addr {addr} is not an address of this machine")
    return UsageError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}")
