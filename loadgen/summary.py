"""The end-of-run summary: :class:`RunSummary` (its JSON is the README's "Summary
JSON") and the endpoint table a person reads."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Union

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .engine import histogram as hdr
from ._version import __version__
from .engine.engine import RunResult
from .engine.recorder import EndpointInterval

__all__ = ["RunSummary", "summarize", "build_summary", "endpoint_summary", "write_summary", "print_summary",
           "summarize_samples"]

#: A JSON value (what the thresholds, the comparison and the collectors' figures hold).
Json = Union[str, int, float, bool, None, list["Json"], dict[str, "Json"]]
#: ``{p50, p90, p95, p99, p999, max, mean, min}`` in milliseconds (or a subset: lag, stalls).
Millis = dict[str, float]
#: Per service or queue, each figure's ``{mean, max}`` (None without samples) and the sample count.
SampleFigures = dict[str, dict[str, Union[int, str, dict[str, float], None]]]


class EndpointSummary(TypedDict):
    method: str
    name: str
    requests: int
    errors: int
    error_rate: float
    rps: float
    bytes_sent: int
    bytes_received: int
    latency_ms: Millis
    service_time_ms: Millis
    ttfb_ms: Millis
    status_codes: dict[str, int]
    errors_by_kind: dict[str, int]


class FailedIterations(TypedDict):
    total: int
    by_task: dict[str, int]


class CheckTally(TypedDict):
    passes: int
    fails: int


class GeneratorSummary(TypedDict):
    cpu_percent: float
    lag_ms: Millis
    saturated: bool
    saturated_intervals: int
    stall_ms: Millis
    stalled: bool
    stalled_intervals: int
    intervals: int


class StressSummary(TypedDict):
    steps: list[dict[str, float]]
    broke_at: dict[str, Json] | None


#: Fields left out of the document while None (the others are written as null).
_OPTIONAL = frozenset({"scheduled_rate", "stress", "run_id", "shard", "shards", "resources", "queues",
                       "thresholds", "status", "exit_code", "comparison", "control", "applied_stages"})


@dataclass(frozen=True)
class RunSummary:
    """A run's summary, built once and never changed: a later figure (the verdict, the
    exit code, the comparison) makes a new one (:func:`dataclasses.replace`). The field
    order is the document's key order, which scripts reading ``--summary-json`` may rely on."""

    loadgen_version: str
    scenario: str | None
    host: str | None
    app_version: str | None
    test_type: str
    model: str
    arrival: str | None
    started_at: str  # ISO 8601, UTC
    duration_s: float
    load_s: float
    interrupted: bool
    stop_reason: str | None
    requests: int
    errors: int
    error_rate: float
    rps: float
    iterations: int
    dropped_iterations: int
    failed_iterations: FailedIterations
    target_rate: float | None
    achieved_rate: float
    users_max: int
    bytes_sent: int
    bytes_received: int
    latency_ms: Millis
    service_time_ms: Millis
    ttfb_ms: Millis
    status_codes: dict[str, int]
    errors_by_kind: dict[str, int]
    checks: dict[str, CheckTally]
    exceptions: dict[str, int]
    generator: GeneratorSummary
    warnings: tuple[str, ...]
    endpoints: dict[str, EndpointSummary]
    scheduled_rate: float | None = None  # open model
    stress: StressSummary | None = None  # stress runs without stages
    run_id: str | None = None
    shard: int | None = None  # a shard's own share, when another shard merges the run
    shards: int | None = None
    resources: SampleFigures | None = None  # with collectors
    queues: SampleFigures | None = None
    thresholds: list[dict[str, Json]] | None = None
    status: str | None = None
    exit_code: int | None = None
    comparison: dict[str, Json] | None = None
    # The control API's changes ({at_s, action, rate|users, source}), and when one changed the
    # load, the stages that actually ran ({duration_s, target}); absent when nothing was changed.
    control: list[dict[str, Json]] | None = None
    applied_stages: list[dict[str, float]] | None = None

    def to_json(self) -> dict[str, Json]:
        """The ``--summary-json`` document (also the stored run's ``summary``)."""
        doc: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL:
                continue
            doc[f.name] = list(value) if f.name == "warnings" else value
        return doc

    def warned(self, warning: str) -> RunSummary:
        """This summary with one more warning."""
        return dataclasses.replace(self, warnings=(*self.warnings, warning))


def endpoint_summary(ei: EndpointInterval, rate_s: float) -> EndpointSummary:
    """One endpoint's part of the summary document (also the figures the store keeps per endpoint).

    ``rate_s`` is what ``rps`` divides by: the time the load was applied (``load_s``)."""
    n = ei.requests
    return {
        "method": ei.method,
        "name": ei.name,
        "requests": n,
        "errors": ei.errors,
        "error_rate": ei.errors / n if n else 0.0,
        "rps": n / rate_s if rate_s > 0 else 0.0,
        "bytes_sent": ei.bytes_sent,
        "bytes_received": ei.bytes_received,
        "latency_ms": hdr.summarize_ms(ei.latency),
        "service_time_ms": hdr.summarize_ms(ei.service or hdr.new_histogram()),
        "ttfb_ms": hdr.summarize_ms(ei.ttfb or hdr.new_histogram()),
        "status_codes": {str(k): v for k, v in sorted(ei.status_codes.items())},
        "errors_by_kind": dict(sorted(ei.errors_by_kind.items())),
    }


def _generator(result: RunResult) -> GeneratorSummary:
    tot = result.recorder.totals
    lag, stall, dur = tot.lag, tot.stall, result.duration_s
    return {
        "cpu_percent": 100.0 * tot.cpu_s / dur if dur > 0 else 0.0,
        "lag_ms": {
            "p50": hdr.percentile_ms(lag, 50),
            "p99": hdr.percentile_ms(lag, 99),
            "max": lag.get_max_value() / 1000 if lag.total_count else 0.0,
        },
        "saturated": tot.saturated_intervals > 0,
        "saturated_intervals": tot.saturated_intervals,
        # How late the event loop's stall monitor fired: the loop was blocked that long.
        "stall_ms": {
            "p99": hdr.percentile_ms(stall, 99),
            "max": stall.max_value / 1000 if stall.total_count else 0.0,
        },
        "stalled": tot.stalled_intervals > 0,
        "stalled_intervals": tot.stalled_intervals,
        "intervals": tot.intervals,
    }


def _stress(result: RunResult) -> StressSummary | None:
    c = result.config
    if c.test_type != "stress" or c.stages:
        return None
    steps = [{"step": i + 1, "target": p.target, "start_s": p.start_s, "end_s": p.end_s}
             for i, p in enumerate(result.shape.phases)]
    return {"steps": steps, "broke_at": result.broke_at}


def _checks(result: RunResult) -> dict[str, CheckTally]:
    return {f"{ep.key}: {name}": {"passes": passes, "fails": fails}
            for ep in result.recorder.endpoints() for name, (passes, fails) in ep.checks.items()}


def summarize(result: RunResult, *, scenario: str | None, host: str | None) -> RunSummary:
    """What the run measured, as its summary (no run id, verdict or exit code yet)."""
    c, tot, model = result.config, result.recorder.totals, result.model
    # Rates divide by the time the load was applied: the graceful stop (waiting for the
    # last requests) adds time but no arrivals, and would make a 50/s run read 9/s.
    load_s = result.schedule_s
    overall = endpoint_summary(tot.overall, load_s)
    service, ttfb = tot.overall_timings()
    warnings = list(result.warnings)
    warnings += [w for w in result.recorder.warnings() if w not in warnings]
    failed = dict(sorted(tot.failed_iterations.items()))
    targets = {s.target for s in result.shape.stages}
    return RunSummary(
        loadgen_version=__version__, scenario=scenario, host=host, app_version=c.app_version,
        test_type=c.test_type, model=model, arrival=c.arrival if model == "open" else None,
        started_at=dt.datetime.fromtimestamp(result.started_at, dt.timezone.utc).isoformat(),
        duration_s=result.duration_s, load_s=load_s, interrupted=result.interrupted,
        stop_reason=result.stop_reason,
        requests=overall["requests"], errors=overall["errors"], error_rate=overall["error_rate"],
        rps=overall["rps"], iterations=tot.iterations, dropped_iterations=tot.dropped_iterations,
        failed_iterations={"total": sum(failed.values()), "by_task": failed},
        # A constant target is one number; a ramp has none (see the stages).
        target_rate=next(iter(targets)) if model == "open" and len(targets) == 1 else None,
        achieved_rate=tot.iterations / result.schedule_s, users_max=result.users_max,
        bytes_sent=overall["bytes_sent"], bytes_received=overall["bytes_received"],
        latency_ms=overall["latency_ms"], service_time_ms=hdr.summarize_ms(service),
        ttfb_ms=hdr.summarize_ms(ttfb), status_codes=overall["status_codes"],
        errors_by_kind=overall["errors_by_kind"], checks=_checks(result), exceptions=result.exceptions,
        generator=_generator(result), warnings=tuple(warnings),
        endpoints={k: endpoint_summary(v, load_s) for k, v in sorted(tot.endpoints.items())},
        # The rate actually scheduled, counting drops: it tells whether the schedule kept up.
        scheduled_rate=(tot.iterations + tot.dropped_iterations) / result.schedule_s if model == "open" else None,
        stress=_stress(result),
        **_control(result),
    )


def _control(result: RunResult) -> dict[str, Any]:
    """The summary's ``control`` and ``applied_stages`` (nothing when the control API changed nothing)."""
    changes = result.control
    if not changes:
        return {}
    doc: dict[str, Any] = {"control": [c.to_json() for c in changes]}
    if any(c.action != "stop" for c in changes):
        doc["applied_stages"] = [{"duration_s": st.duration_s, "target": st.target} for st in result.shape.stages]
    return doc


def build_summary(result: RunResult, *, scenario: str | None, host: str | None) -> dict[str, Json]:
    """The summary document of what a run measured (see README, "Summary JSON")."""
    return summarize(result, scenario=scenario, host=host).to_json()


def summarize_samples(samples: list[Any]) -> dict[str, SampleFigures]:
    """The collectors' samples of a run, per service and queue: ``resources`` and ``queues``."""
    from .samples import QueueSample, ResourceSample

    res: dict[str, list[ResourceSample]] = {}
    que: dict[str, list[QueueSample]] = {}
    for s in samples:
        if isinstance(s, ResourceSample):
            res.setdefault(s.service, []).append(s)
        elif isinstance(s, QueueSample):
            que.setdefault(s.queue, []).append(s)

    def stats(values: list[float | None]) -> dict[str, float] | None:
        vs = [v for v in values if v is not None]
        if not vs:
            return None
        return {"mean": sum(vs) / len(vs), "max": max(vs)}

    resources = {
        name: {
            "samples": len(ss),
            "cpu_percent": stats([s.cpu_percent for s in ss]),
            "rss_bytes": stats([float(s.rss_bytes) for s in ss]),
            "threads": stats([float(s.threads) for s in ss]),
        }
        for name, ss in sorted(res.items())
    }
    queues = {
        name: {
            "samples": len(ss),
            "source": ss[0].source,
            **{
                f: stats([getattr(s, f) for s in ss])
                for f in ("length", "processing_time_s", "published_per_s", "consumed_per_s",
                          "error_rate", "backlog_age_s")
            },
        }
        for name, ss in sorted(que.items())
    }
    return {"resources": resources, "queues": queues}


def write_summary(doc: Mapping[str, Json], path: str) -> None:
    with open(path, "wb") as fh:
        fh.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def format_ms(v: float | None) -> str:
    """Latency in ms as a person reads it: two decimals below 100 ms, none above; "–" for none.
    The terminal's table and the HTML report both print it so."""
    if v is None or v != v:  # None or NaN
        return "–"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def print_summary(doc: Mapping[str, Any], console: Console) -> None:
    """The endpoint table and the headline figures, as a person reads them."""
    t = Table(title="Results by endpoint (latency in ms)", title_justify="left")
    for col in ("endpoint", "count", "req/s", "error %", "p50", "p90", "p95", "p99", "p99.9", "max"):
        t.add_column(col, justify="left" if col == "endpoint" else "right")
    rows = list(doc["endpoints"].items())
    rows.append(("total", doc))
    for key, e in rows:
        lat = e["latency_ms"]
        t.add_row(
            escape(key) if key != "total" else "[bold]total[/bold]",
            f"{e['requests']:,}",
            f"{e['rps']:,.1f}",
            f"{100 * e['error_rate']:.2f}",
            *(format_ms(lat[p]) for p in ("p50", "p90", "p95", "p99", "p999", "max")),
        )
    console.print(t)
    g = doc["generator"]
    line = (
        f"{doc['requests']:,} requests in {doc['duration_s']:.1f}s, {doc['rps']:,.1f} req/s, "
        f"{doc['errors']:,} errors"
    )
    if doc["model"] == "open":
        tr = doc.get("target_rate")
        line += f"; iterations {doc['achieved_rate']:,.1f}/s" + (f" of {tr:,.1f}/s target" if tr else "")
        line += f", {doc['dropped_iterations']:,} dropped; dispatch lag p99 {g['lag_ms']['p99']:.2f} ms"
    else:
        line += f"; {doc['users_max']} users"
    line += f"; generator CPU {g['cpu_percent']:.0f} %"
    console.print(line)
    if doc["errors_by_kind"]:
        console.print("errors by kind: " + ", ".join(f"{k} {v:,}" for k, v in doc["errors_by_kind"].items()))
    fi = doc.get("failed_iterations") or {}
    if fi.get("total"):
        console.print(
            f"[red]failed iterations[/red] {fi['total']:,}: "
            + ", ".join(f"{escape(k)} {v:,}" for k, v in fi["by_task"].items())
        )
    if g.get("stalled_intervals"):
        console.print(
            f"[yellow]event loop stalled[/yellow] in {g['stalled_intervals']} of {g['intervals']} interval(s) "
            f"(stall p99 {g['stall_ms']['p99']:.1f} ms, max {g['stall_ms']['max']:.1f} ms)"
        )
    if doc.get("stop_reason"):
        console.print(f"stopped early: {escape(str(doc['stop_reason']))}")
    changes = doc.get("control") or []
    if changes:
        said = [f"{c['action']}" + (f" {c['rate']:g}/s" if "rate" in c else f" {c['users']}" if "users" in c else "")
                + f" at {c['at_s']:.1f}s" for c in changes[:5]]
        more = f" and {len(changes) - 5:,} more" if len(changes) > 5 else ""
        console.print(f"changed from the control API: {', '.join(said)}{more}")
    failed = {k: v for k, v in doc["checks"].items() if v["fails"]}
    for k, v in failed.items():
        console.print(f"[yellow]check failed[/yellow] {escape(k)}: {v['fails']:,} of {v['passes'] + v['fails']:,}")
    for k, n in doc["exceptions"].items():
        console.print(f"[red]exception[/red] ({n:,}×) {escape(k)}")
    if doc.get("stress"):
        b = doc["stress"]["broke_at"]
        if b:
            console.print(f"[red]stress: broke at step {b['step']} (target {b['target']:g}): {b['reason']}[/red]")
        else:
            console.print("stress: no step broke")
    for name, r in (doc.get("resources") or {}).items():
        cpu, rss = r.get("cpu_percent"), r.get("rss_bytes")
        if cpu and rss:
            console.print(
                f"service {escape(name)}: CPU mean {cpu['mean']:.0f} % (max {cpu['max']:.0f} %), "
                f"RSS max {rss['max'] / 2**20:,.0f} MiB"
            )
    for name, q in (doc.get("queues") or {}).items():
        ln = q.get("length")
        if ln:
            age = q.get("backlog_age_s")
            console.print(
                f"queue {escape(name)}: length mean {ln['mean']:,.1f} (max {ln['max']:,.0f})"
                + (f", backlog age max {age['max']:,.1f}s" if age else "")
            )
    for w in doc["warnings"]:
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(w)}")
    if doc["interrupted"]:
        console.print("[yellow]the run was interrupted; the summary covers what ran[/yellow]")
