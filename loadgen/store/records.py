"""A run's data as plain rows (dicts keyed by column), ready for any store or the spool.

Rows hold Python values only: epoch seconds for timestamps, dicts for JSON
columns, base64 text for histograms. Each backend converts what its driver
needs, so the row-building happens once and the spool file can replay rows
into any store later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hdrh.histogram import HdrHistogram

from ..engine import histogram as hdr
from ..engine.recorder import EndpointInterval, IntervalSnapshot, Totals
from ..samples import QueueSample, ResourceSample

if TYPE_CHECKING:
    from ..summary import RunSummary

__all__ = [
    "Row",
    "TOTAL",
    "encode_hist",
    "decode_hist",
    "interval_rows",
    "endpoint_rows",
    "resource_rows",
    "queue_rows",
    "run_end_row",
]

Row = dict[str, Any]
#: The endpoint key of the whole run's row.
TOTAL = "total"


def encode_hist(hist: HdrHistogram) -> str:
    return hdr.encode(hist).decode("ascii")


def decode_hist(text: str, min_us: int | None = None, max_us: int | None = None) -> HdrHistogram:
    """Decode a stored histogram and restore the exact extremes the encoding rounds away,
    so that :func:`loadgen.engine.histogram.summarize_ms` gives back exactly what the run printed."""
    hist = hdr.decode(text.encode("ascii"))
    if hist.total_count and min_us is not None and max_us is not None:
        hist.min_value = int(min_us)
        hist.max_value = int(max_us)
    return hist


def _extremes(hist: HdrHistogram) -> tuple[int | None, int | None]:
    if not hist.total_count:
        return None, None
    return int(hist.min_value), int(hist.max_value)


def _interval_row(key: str, ei: EndpointInterval, snap: IntervalSnapshot, shard: int, ts: float) -> Row:
    lat = ei.latency
    lo, hi = _extremes(lat)
    s = hdr.summarize_ms(lat)
    return {
        "shard": shard,
        "idx": snap.index,
        "endpoint": key,
        "method": ei.method,
        "name": ei.name,
        "ts": ts,
        "start_s": snap.start_s,
        "end_s": snap.end_s,
        "requests": ei.requests,
        "errors": ei.errors,
        "bytes_sent": ei.bytes_sent,
        "bytes_received": ei.bytes_received,
        "p50_ms": s["p50"] if lat.total_count else None,
        "p95_ms": s["p95"] if lat.total_count else None,
        "p99_ms": s["p99"] if lat.total_count else None,
        "max_ms": s["max"] if lat.total_count else None,
        "status_codes": {str(k): v for k, v in sorted(ei.status_codes.items())},
        "errors_by_kind": dict(sorted(ei.errors_by_kind.items())),
        "latency_hist": encode_hist(lat),
        "latency_min_us": lo,
        "latency_max_us": hi,
    }


def interval_rows(snap: IntervalSnapshot, *, started_at: float, shard: int = 0) -> tuple[list[Row], Row]:
    """One interval: a row per endpoint plus the whole-run row, and the generator's row."""
    ts = started_at + snap.end_s
    rows = [_interval_row(k, ei, snap, shard, ts) for k, ei in snap.endpoints.items()]
    rows.append(_interval_row(TOTAL, snap.overall, snap, shard, ts))
    lag, stall = snap.lag, snap.stall
    stats = {
        "shard": shard,
        "idx": snap.index,
        "ts": ts,
        "start_s": snap.start_s,
        "end_s": snap.end_s,
        "iterations": snap.iterations,
        "dropped_iterations": snap.dropped_iterations,
        "users": snap.users,
        "inflight": snap.inflight,
        "target_rate": snap.target_rate,
        "cpu_percent": snap.cpu_percent,
        "saturated": bool(snap.saturated),
        "lag_p99_ms": hdr.percentile_ms(lag, 99) if lag.total_count else None,
        "lag_hist": encode_hist(lag),
        "stall_p99_ms": hdr.percentile_ms(stall, 99) if stall.total_count else None,
        "stall_max_ms": stall.max_value / 1000 if stall.total_count else None,
        "stalled": bool(snap.stalled),
        "stall_cause": snap.stall_cause,
        "failed_iterations": dict(sorted(snap.failed_iterations.items())) or None,
    }
    return rows, stats


def _endpoint_row(key: str, ei: EndpointInterval, rate_s: float,
                  service: HdrHistogram | None, ttfb: HdrHistogram | None) -> Row:
    from ..summary import endpoint_summary  # the same figures the summary prints

    doc = endpoint_summary(ei, rate_s)
    lo, hi = _extremes(ei.latency)
    return {
        "endpoint": key,
        **{k: doc[k] for k in ("method", "name", "requests", "errors", "error_rate", "rps",
                               "bytes_sent", "bytes_received", "status_codes", "errors_by_kind")},
        **{f"{p}_ms": v for p, v in doc["latency_ms"].items()},
        "latency_hist": encode_hist(ei.latency),
        "latency_min_us": lo,
        "latency_max_us": hi,
        "service_hist": encode_hist(service) if service is not None else None,
        "ttfb_hist": encode_hist(ttfb) if ttfb is not None else None,
    }


def endpoint_rows(totals: Totals, rate_s: float) -> list[Row]:
    """The run's result per endpoint and for the whole run (endpoint ``total``).

    ``rate_s``: what ``rps`` divides by, the time the load was applied (``RunResult.schedule_s``,
    the summary's ``load_s``), so the stored rate is the summary's."""
    rows = [_endpoint_row(k, ei, rate_s, ei.service, ei.ttfb) for k, ei in sorted(totals.endpoints.items())]
    service, ttfb = totals.overall_timings()
    rows.append(_endpoint_row(TOTAL, totals.overall, rate_s, service, ttfb))
    return rows


def resource_rows(samples: list[ResourceSample], shard: int = 0) -> list[Row]:
    return [
        {
            "shard": shard,
            "service": s.service,
            "ts": s.ts,
            "pids": ",".join(map(str, s.pids)),
            "cpu_percent": s.cpu_percent,
            "rss_bytes": s.rss_bytes,
            "threads": s.threads,
            "disk_read_bytes": s.disk_read_bytes,
            "disk_write_bytes": s.disk_write_bytes,
            "net_sent_bytes": s.net_sent_bytes,
            "net_recv_bytes": s.net_recv_bytes,
            "net_scope": s.net_scope,
        }
        for s in samples
    ]


def queue_rows(samples: list[QueueSample], shard: int = 0) -> list[Row]:
    return [
        {
            "shard": shard,
            "queue": s.queue,
            "ts": s.ts,
            "source": s.source,
            "length": s.length,
            "processing_time_s": s.processing_time_s,
            "published_per_s": s.published_per_s,
            "consumed_per_s": s.consumed_per_s,
            "error_rate": s.error_rate,
            "backlog_age_s": s.backlog_age_s,
        }
        for s in samples
    ]


def run_end_row(summary: RunSummary, duration_s: float, ended_at: float) -> Row:
    """The run's record at its end (``runs`` columns), from its final summary."""
    return {
        "ended_at": ended_at,
        "status": summary.status,
        "exit_code": summary.exit_code,
        "duration_s": duration_s,
        "requests": summary.requests,
        "errors": summary.errors,
        "summary": summary.to_json(),
        "stop_reason": summary.stop_reason,
    }
