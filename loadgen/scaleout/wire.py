"""Interval snapshots and run results as JSON, to cross a process or a database.

Worker processes and shards run the same engine; what travels from them is
this: per interval, each endpoint's counters and its latency histogram
(hdrh's base64 encoding, exact min/max beside it), and at the end the part's
totals. Histograms merge exactly, so the whole run is the sum of its parts.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

from ..engine import histogram as hdr
from ..engine.recorder import EndpointInterval, IntervalSnapshot, Recorder

__all__ = ["hist_to_json", "hist_from_json", "endpoint_to_json", "endpoint_from_json", "snapshot_to_json",
           "snapshot_from_json", "part_to_json", "merge_snapshots", "add_part_extras", "part_warnings", "Part"]

Part = dict[str, Any]


def hist_to_json(hist: HdrHistogram) -> list[Any]:
    if not hist.total_count:
        return []
    return [hdr.encode(hist).decode("ascii"), int(hist.min_value), int(hist.max_value)]


def hist_from_json(data: list[Any] | None) -> HdrHistogram:
    if not data:
        return hdr.new_histogram()
    hist = hdr.decode(data[0].encode("ascii"))
    hist.min_value, hist.max_value = int(data[1]), int(data[2])
    return hist


def endpoint_to_json(ei: EndpointInterval, *, timings: bool = False) -> dict[str, Any]:
    """One endpoint's interval; with ``timings``, its service-time and TTFB histograms too
    (a part's totals carry them, the per-second intervals do not)."""
    d: dict[str, Any] = {
        "method": ei.method,
        "name": ei.name,
        "requests": ei.requests,
        "errors": ei.errors,
        "errors_by_kind": ei.errors_by_kind,
        "status_codes": {str(k): v for k, v in ei.status_codes.items()},
        "bytes_sent": ei.bytes_sent,
        "bytes_received": ei.bytes_received,
        "latency": hist_to_json(ei.latency),
    }
    if timings:
        d["service"] = hist_to_json(ei.service) if ei.service is not None else None
        d["ttfb"] = hist_to_json(ei.ttfb) if ei.ttfb is not None else None
    return d


def endpoint_from_json(d: dict[str, Any], *, timings: bool = True) -> EndpointInterval:
    """The one decoder of an endpoint's interval; ``timings=False`` leaves out service time
    and TTFB, for a caller that adds them another way (:func:`add_part_extras`)."""
    ei = EndpointInterval(
        d["method"],
        d["name"],
        requests=d["requests"],
        errors=d["errors"],
        errors_by_kind=dict(d["errors_by_kind"]),
        status_codes={int(k): v for k, v in d["status_codes"].items()},
        bytes_sent=d["bytes_sent"],
        bytes_received=d["bytes_received"],
        latency=hist_from_json(d["latency"]),
    )
    if timings and d.get("service") is not None:
        ei.service = hist_from_json(d["service"])
    if timings and d.get("ttfb") is not None:
        ei.ttfb = hist_from_json(d["ttfb"])
    return ei


def snapshot_to_json(snap: IntervalSnapshot) -> dict[str, Any]:
    return {
        "index": snap.index,
        "start_s": snap.start_s,
        "end_s": snap.end_s,
        "endpoints": [endpoint_to_json(ei) for ei in snap.endpoints.values()],
        "iterations": snap.iterations,
        "dropped_iterations": snap.dropped_iterations,
        "lag": hist_to_json(snap.lag),
        "cpu_percent": snap.cpu_percent,
        "users": snap.users,
        "inflight": snap.inflight,
        "target_rate": snap.target_rate,
        "saturated": snap.saturated,
        "stall": hist_to_json(snap.stall),
        "stalled": snap.stalled,
        "stall_cause": snap.stall_cause,
        "failed_iterations": snap.failed_iterations,
    }


def snapshot_from_json(d: dict[str, Any]) -> IntervalSnapshot:
    eps = {}
    overall = EndpointInterval("ALL", "total")
    for e in d["endpoints"]:
        ei = endpoint_from_json(e)
        eps[f"{ei.method} {ei.name}"] = ei
        overall.merge(ei)
    return IntervalSnapshot(
        index=d["index"],
        start_s=d["start_s"],
        end_s=d["end_s"],
        endpoints=eps,
        overall=overall,
        iterations=d["iterations"],
        dropped_iterations=d["dropped_iterations"],
        lag=hist_from_json(d["lag"]),
        cpu_percent=d["cpu_percent"],
        users=d["users"],
        inflight=d["inflight"],
        target_rate=d["target_rate"],
        saturated=d["saturated"],
        stall=hist_from_json(d.get("stall")),
        stalled=bool(d.get("stalled", False)),
        stall_cause=d.get("stall_cause"),
        failed_iterations=dict(d.get("failed_iterations") or {}),
    )


def merge_snapshots(snaps: list[IntervalSnapshot], *, target_rate: float | None) -> IntervalSnapshot:
    """The same interval of several parts as one (exact: histograms merge bucket by bucket).

    Users, in-flight and CPU add up (CPU as % of one core); the interval is
    saturated (stalled) if any part was, with the first stalled part's cause;
    failed iterations add up by task; the target rate is the whole run's.
    """
    first = snaps[0]
    eps: dict[str, EndpointInterval] = {}
    overall = EndpointInterval("ALL", "total")
    lag = hdr.new_histogram()
    stall = hdr.new_histogram()
    failed: dict[str, int] = {}
    for s in snaps:
        hdr.merge(stall, s.stall)
        for task, n in s.failed_iterations.items():
            failed[task] = failed.get(task, 0) + n
        for key, ei in s.endpoints.items():
            into = eps.get(key)
            if into is None:
                into = eps[key] = EndpointInterval(ei.method, ei.name)
            into.merge(ei)
        overall.merge(s.overall)
        hdr.merge(lag, s.lag)
    return IntervalSnapshot(
        index=first.index,
        start_s=min(s.start_s for s in snaps),
        end_s=max(s.end_s for s in snaps),
        endpoints=eps,
        overall=overall,
        iterations=sum(s.iterations for s in snaps),
        dropped_iterations=sum(s.dropped_iterations for s in snaps),
        lag=lag,
        cpu_percent=sum(s.cpu_percent for s in snaps),
        users=sum(s.users for s in snaps),
        inflight=sum(s.inflight for s in snaps),
        target_rate=target_rate,
        saturated=any(s.saturated for s in snaps),
        stall=stall,
        stalled=any(s.stalled for s in snaps),
        stall_cause=next((s.stall_cause for s in snaps if s.stalled and s.stall_cause), None),
        failed_iterations=failed,
    )


def part_to_json(recorder: Recorder, result: Any) -> Part:
    """What a part (worker or shard) hands over at its end, beyond its intervals:
    service time and TTFB histograms, checks, exceptions and its own figures."""
    tot = recorder.totals
    checks: dict[str, dict[str, list[int]]] = {}
    for ep in recorder.endpoints():
        if ep.checks:
            checks[ep.key] = {k: list(v) for k, v in ep.checks.items()}
    return {
        "endpoints": {k: endpoint_to_json(ei, timings=True) for k, ei in tot.endpoints.items()},
        "iterations": tot.iterations,
        "dropped_iterations": tot.dropped_iterations,
        "lag": hist_to_json(tot.lag),
        "cpu_s": tot.cpu_s,
        "saturated_intervals": tot.saturated_intervals,
        "stall": hist_to_json(tot.stall),
        "stalled_intervals": tot.stalled_intervals,
        "failed_iterations": tot.failed_iterations,
        "folded_names": recorder.folded_names(),
        "stop_reason": getattr(result, "stop_reason", None),
        "intervals": tot.intervals,
        "checks": checks,
        "exceptions": result.exceptions,
        "warnings": result.warnings,
        "users_max": result.users_max,
        "interrupted": result.interrupted,
        "broke_at": result.broke_at,
        "started_at": result.started_at,
        "duration_s": result.duration_s,
        "schedule_s": result.schedule_s,
    }


def part_warnings(parts: list[Part], what: str) -> list[str]:
    """The parts' warnings, each once; one that several parts gave says how many did
    (``what``: "workers", "shards"), since its counts are each part's own."""
    said: dict[str, int] = {}
    for p in parts:
        for w in p["warnings"]:
            said[w] = said.get(w, 0) + 1
    return [w if n == 1 else f"{w} (in each of {n} {what})" for w, n in said.items()]


def add_part_extras(recorder: Recorder, part: Part) -> None:
    """Add what a part kept beyond its intervals into ``recorder``: each endpoint's
    service-time and TTFB histograms (into the totals' endpoints, under the recorder's
    name cap), its check tallies and how many names it folded."""
    tot = recorder.totals
    recorder.folded_elsewhere += int(part.get("folded_names", 0))
    for key, d in part["endpoints"].items():
        key = recorder.endpoint(d["method"], d["name"]).key
        ep = tot.endpoints.get(key)
        if ep is None:
            continue
        for attr in ("service", "ttfb"):
            if d.get(attr):
                h = getattr(ep, attr)
                if h is None:
                    h = hdr.new_histogram()
                    setattr(ep, attr, h)
                hdr.merge(h, hist_from_json(d[attr]))
    for key, checks in part["checks"].items():
        method, _, name = key.partition(" ")
        ep2 = recorder.endpoint(method, name)
        for cname, (passes, fails) in checks.items():
            tally = ep2.checks.setdefault(cname, [0, 0])
            tally[0] += passes
            tally[1] += fails
