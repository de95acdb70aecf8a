"""Live Prometheus metrics of a run: an interval sink that serves ``/metrics``.

:class:`MetricsExporter` is called once a second with the interval snapshot
and the run (a :class:`~loadgen.sinks.RunView`). It derives every series from
the snapshot alone, so the hot path is untouched: no per-request work and no
lock a request could meet. Collectors in other threads hand their samples to
:meth:`MetricsExporter.observe_samples`.

Conventions: every series carries the constant labels ``run_id``,
``app_version`` and ``test_type``; request series are labelled by request
*name* (the scenario's ``name=``, or the URL path without its query), method
and status class, never by raw URL, and the number of distinct names is capped
(``max_endpoints``, by default the recorder's ``--max-names``, the same cap and
the same ``name="__other__"`` row as the summary and the store).

Latency: ``loadgen_request_duration_seconds`` buckets are filled from each
interval's HDR histogram (:mod:`loadgen.observe.buckets`); ``_count`` is the
number of requests with a latency (responses and timeouts; refused or reset
connections have none). ``loadgen_request_duration_quantile_seconds`` are
exact HDR percentiles, as in the summary, of the last ``quantile_window``
intervals merged (:mod:`loadgen.observe.window`).

Exposition (:mod:`loadgen.observe.exposition`) is cached until the state
changes. The exporter's own :attr:`~MetricsExporter.registry` (never the
global one) holds a collector yielding the same families.

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

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from ..engine import histogram as hdr
from ..engine.recorder import IntervalSnapshot
from ..samples import QueueSample, ResourceSample
from ..sinks import IntervalSink, RunView
from . import exposition
from .buckets import BucketBounds
from .catalogue import CONST_LABELS, DURATION_BUCKETS_S, LAG_BUCKETS_S, QUANTILES
from .server import DEFAULT_ADDR, DEFAULT_PORT, MetricsServer
from .state import ExportState, GeneratorSeries, PreparedInterval, RunSeries
from .textformat import labels, origin

if TYPE_CHECKING:
    import psutil

__all__ = ["DEFAULT_GRACE_S", "MetricsExporter"]

#: Default longest wait after a run for a last scrape (``--metrics-grace``).
DEFAULT_GRACE_S = 15.0


class MetricsExporter:
    """Prometheus metrics of one run; an interval sink (see the module docstring)."""

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
        ``scenario``, ``host`` and ``model`` are filled from the run when missing."""
        if quantile_window < 1:
            raise ValueError("quantile_window must be at least 1")
        self.run_id = run_id
        run_info = {str(k): str(v) for k, v in (info or {}).items()}
        if run_info.get("host"):  # an origin only: no path, query or credentials in a label
            run_info["host"] = origin(run_info["host"]) or run_info["host"]
        self._layout = layout = hdr.full_layout()
        self._state = ExportState(
            const=labels(zip(CONST_LABELS, (str(run_id), app_version or "", test_type or ""))),
            run=RunSeries(run_info),
            buckets=BucketBounds.of(buckets_s, layout),
            generator=GeneratorSeries(BucketBounds.of(lag_buckets_s, layout)),
            quantiles=tuple(quantiles),
            window=quantile_window,
            max_endpoints=max_endpoints,
        )
        self._proc = _own_process() if memory else None
        self._lock = threading.Lock()  # the state: written on the event loop, rendered by the server
        self._version = 0  # bumped on every change; the rendered text is cached per version
        self._cache: tuple[int, bytes] = (-1, b"")
        self._scrapes = 0
        self._scraped_after_finish = threading.Event()
        self._server = MetricsServer(lambda: self.render(scrape=True))
        self._parts: list[IntervalSink] = []  # the dashboard, the control API: called after the state is folded
        self._finish_hooks: list[Callable[[], None]] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(exposition.FamiliesCollector(self.render))

    # -- the sink --------------------------------------------------------------------

    def __call__(self, snap: IntervalSnapshot, run: RunView) -> None:
        """Fold one interval snapshot into the exported state (on the event loop; cheap)."""
        prepared = PreparedInterval.of(snap, self._layout, self._rss())  # reads the snapshot only
        with self._lock:
            self._version += 1
            self._state.fold(run, prepared, time.time())
        for part in self._parts:
            part(snap, run)

    def add_part(self, sink: IntervalSink, *, on_finish: Callable[[], None] | None = None) -> None:
        """Something else served on this port that follows the run: called with each interval
        after ``/metrics`` has it (so it never shows a figure ``/metrics`` does not), and
        ``on_finish`` when the run is over."""
        self._parts.append(sink)
        if on_finish is not None:
            self._finish_hooks.append(on_finish)

    @property
    def server(self) -> MetricsServer:
        """The port's server: parts mount their paths on it."""
        return self._server

    def _rss(self) -> int | None:
        if self._proc is None:
            return None
        try:
            return int(self._proc.memory_info().rss)
        except Exception:  # pragma: no cover - the process is ourselves
            return None

    def observe_samples(self, samples: Iterable[ResourceSample | QueueSample]) -> None:
        """Take the collectors' readings (from any thread); the newest per service or queue wins."""
        with self._lock:
            self._version += 1
            self._state.take(samples)

    # -- exposition --------------------------------------------------------------------

    def render(self, *, scrape: bool = False) -> bytes:
        """The metrics in the Prometheus text format (0.0.4); cached until the state changes.

        ``scrape``: count it as a scrape (for :meth:`linger`); the HTTP endpoint does.
        """
        with self._lock:
            if scrape:
                self._scrapes += 1
                if self._state.run.finished:
                    self._scraped_after_finish.set()
            version, body = self._cache
            if version != self._version:
                body = exposition.render(self._state)
                self._cache = (self._version, body)
            return body

    def collect(self) -> Iterator[Metric]:
        """The same metric families for prometheus_client (its exposition, parser, or registry)."""
        return exposition.FamiliesCollector(self.render).collect()

    @property
    def scrapes(self) -> int:
        """How many times the metrics were rendered for a client (scrapes)."""
        return self._scrapes

    # -- serving ---------------------------------------------------------------------

    def start(self, port: int = DEFAULT_PORT, addr: str = DEFAULT_ADDR) -> MetricsExporter:
        """Serve ``/metrics`` on ``addr:port`` from a thread (port 0: a free port); returns self.

        Raises :class:`~loadgen.errors.UsageError` (one sentence) when the port
        is taken or the address is not one of this machine's.
        """
        self._server.start(port, addr)
        return self

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        """``http://addr:port/metrics`` (an unspecified address shown as loopback)."""
        return self._server.url

    def finish(self) -> None:
        """Mark the run finished (``loadgen_run_finished`` 1); call when the engine has returned."""
        with self._lock:
            if self._state.run.finished:
                return
            self._state.run.finished = True
            self._version += 1
        for hook in self._finish_hooks:
            hook()

    def linger(self, seconds: float = DEFAULT_GRACE_S, *, until_scraped: bool = True) -> bool:
        """Keep serving after the run so its final values are scraped; blocks.

        With ``until_scraped`` returns as soon as a scrape has started after
        :meth:`finish` (that scrape is answered in full even if :meth:`stop`
        follows at once), else after ``seconds``. Returns whether such a scrape
        happened. Calls :meth:`finish` first.
        """
        self.finish()
        if not self._server.serving or seconds <= 0:
            return self._scraped_after_finish.is_set()
        if until_scraped:
            return self._scraped_after_finish.wait(seconds)
        time.sleep(seconds)
        return self._scraped_after_finish.is_set()

    def stop(self, grace_s: float = 0.0) -> None:
        """Stop serving, after :meth:`linger` for up to ``grace_s``; a scrape in progress completes."""
        if grace_s > 0:
            self.linger(grace_s)
        self._server.stop()

    def __enter__(self) -> MetricsExporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _own_process() -> psutil.Process | None:
    try:
        import psutil

        return psutil.Process()
    except Exception:  # pragma: no cover - psutil is a dependency
        return None
