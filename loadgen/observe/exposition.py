"""The exported state as the Prometheus text format (0.0.4), and as prometheus_client families.

Rendered straight from :class:`~loadgen.observe.state.ExportState`, with each
series' label string built once: the ~360 lines of ten endpoints take ~0.1 ms
(a whole HTTP scrape ~0.4 ms of CPU), where prometheus_client's
``generate_latest`` takes ~3 ms, holding the GIL, so the event loop would stall
that long at every scrape. :class:`FamiliesCollector` hands the same families
(parsed from that text) to a prometheus_client registry, for anyone who wants
its own exposition or parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from .._version import __version__
from .buckets import CumulativeBuckets
from .catalogue import METRICS, QUEUE_FIELDS, SERVICE_FIELDS
from .state import ExportState
from .textformat import escape, help_text, labels, number

__all__ = ["FamiliesCollector", "render"]

#: The HELP and TYPE lines of each family, built once.
_HEAD: dict[str, tuple[str, str]] = {
    name: (f"# HELP {name} {help_text(doc)}", f"# TYPE {name} {mtype}") for name, (mtype, _, doc) in METRICS.items()
}


class _Lines(list[str]):
    """The exposition being written: families with their HELP and TYPE lines."""

    def __init__(self, const: str) -> None:
        super().__init__()
        self.const = const

    def family(self, name: str) -> None:
        self.extend(_HEAD[name])

    def one(self, name: str, value: float | int) -> None:
        """A family of one series with only the constant labels."""
        self.family(name)
        self.append(f"{name}{{{self.const}}} {number(value)}")

    def histogram(self, name: str, lbl: str, b: CumulativeBuckets) -> None:
        for bound, n in zip(b.bounds.labels, [*b.le.tolist(), b.count]):
            self.append(f"{name}_bucket{{{lbl},{bound}}} {n}")
        self.append(f"{name}_count{{{lbl}}} {b.count}")
        self.append(f"{name}_sum{{{lbl}}} {number(b.sum_us / 1e6)}")


def render(state: ExportState) -> bytes:
    """Every family with something to show, in the catalogue's order of concerns."""
    out = _Lines(state.const)
    _run(out, state)
    _requests(out, state)
    _generator(out, state)
    _services(out, state)
    _queues(out, state)
    return ("\n".join(out) + "\n").encode()


def _run(out: _Lines, state: ExportState) -> None:
    run = state.run
    out.family("loadgen_run_info")
    info = {"loadgen_version": __version__, **run.info}
    out.append(f"loadgen_run_info{{{out.const},{labels(sorted(info.items()))}}} 1")
    if run.start_ts is not None:
        out.one("loadgen_run_start_timestamp_seconds", run.start_ts)
    out.one("loadgen_run_elapsed_seconds", run.elapsed_s)
    out.one("loadgen_run_finished", int(run.finished))
    out.one("loadgen_intervals_total", run.intervals)


def _requests(out: _Lines, state: ExportState) -> None:
    eps = list(state.endpoints.values())
    if not eps:
        return
    out.family("loadgen_requests_total")
    for st in eps:
        for cls, n in st.by_class.items():
            out.append(f'loadgen_requests_total{{{st.lbl},status_class="{cls}"}} {n}')
    if any(st.errors for st in eps):
        out.family("loadgen_errors_total")
        for st in eps:
            for kind, n in st.errors.items():
                out.append(f'loadgen_errors_total{{{st.lbl},kind="{escape(kind)}"}} {n}')
    out.family("loadgen_sent_bytes_total")
    out.extend(f"loadgen_sent_bytes_total{{{st.lbl}}} {st.sent}" for st in eps)
    out.family("loadgen_received_bytes_total")
    out.extend(f"loadgen_received_bytes_total{{{st.lbl}}} {st.received}" for st in eps)
    out.family("loadgen_request_duration_seconds")
    for st in eps:
        out.histogram("loadgen_request_duration_seconds", st.lbl, st.duration)
    name = "loadgen_request_duration_quantile_seconds"
    out.family(name)
    q_labels = [f'quantile="{floatToGoString(q)}"' for q in state.quantiles]
    for st in eps:
        if st.quantiles is not None:
            out.extend(f"{name}{{{st.lbl},{q}}} {number(v)}" for q, v in zip(q_labels, st.quantiles))


def _generator(out: _Lines, state: ExportState) -> None:
    g = state.generator
    out.one("loadgen_iterations_total", g.iterations)
    out.one("loadgen_dropped_iterations_total", g.dropped)
    out.one("loadgen_active_users", g.users)
    out.one("loadgen_inflight_iterations", g.inflight)
    if state.run.model == "open":
        if g.target_rate is not None:
            out.one("loadgen_target_arrival_rate", g.target_rate)
        if g.achieved_rate is not None:
            out.one("loadgen_achieved_arrival_rate", g.achieved_rate)
        out.family("loadgen_scheduler_lag_seconds")
        out.histogram("loadgen_scheduler_lag_seconds", out.const, g.lag)
        out.one("loadgen_scheduler_lag_p99_seconds", g.lag_p99_s)
    out.one("loadgen_generator_saturated", g.saturated)
    out.one("loadgen_saturated_intervals_total", g.saturated_intervals)
    out.one("loadgen_event_loop_stall_seconds", g.stall_s)
    out.one("loadgen_generator_stalled", g.stalled)
    out.one("loadgen_stalled_intervals_total", g.stalled_intervals)
    if g.failed:
        out.family("loadgen_failed_iterations_total")
        for task, n in sorted(g.failed.items()):
            out.append(f"loadgen_failed_iterations_total{{{out.const},{labels((('task', task),))}}} {n}")
    if g.cpu_percent is not None:
        out.one("loadgen_generator_cpu_percent", g.cpu_percent)
    if g.rss is not None:
        out.one("loadgen_generator_memory_bytes", g.rss)


def _services(out: _Lines, state: ExportState) -> None:
    """The collectors' resource samples; a family only where some service has the reading."""
    services = sorted(state.services.items())
    for name, attr in SERVICE_FIELDS:
        rows = [(svc, smp, getattr(smp, attr)) for svc, smp in services if getattr(smp, attr) is not None]
        if rows:
            out.family(name)
            scoped = attr.startswith("net_")
            for svc, smp, v in rows:
                lbl = labels((("service", svc), ("scope", smp.net_scope)) if scoped else (("service", svc),))
                out.append(f"{name}{{{out.const},{lbl}}} {number(v)}")


def _queues(out: _Lines, state: ExportState) -> None:
    """The collectors' queue samples, likewise."""
    queues = sorted(state.queues.items())
    for name, attr in QUEUE_FIELDS:
        rows = [(key, getattr(smp, attr)) for key, smp in queues if getattr(smp, attr) is not None]
        if rows:
            out.family(name)
            for (queue, source), v in rows:
                out.append(f"{name}{{{out.const},{labels((('queue', queue), ('source', source)))}}} {number(v)}")


class FamiliesCollector:
    """A prometheus_client collector yielding the families of a rendering (no private state poked)."""

    def __init__(self, render_text: Callable[[], bytes]) -> None:
        self._render = render_text

    def collect(self) -> Iterator[Metric]:
        yield from text_string_to_metric_families(self._render().decode())
