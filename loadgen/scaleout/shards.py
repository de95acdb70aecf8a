"""Runs split across hosts: ``loadgen run … --shard I/N --run-id ID``.

Every shard runs share ``I`` of ``N`` of the load (as a worker process does)
and writes its intervals to the shared database under its shard number. The
database is the meeting point:

* **Barrier.** Each shard registers in ``run_shards`` once its users are up,
  then waits until all N have; they start at one agreed moment (one second
  after the last registration, a value every shard computes alike from the
  table), so their intervals line up.
* **Merge.** At its end each shard leaves its *part* (service-time and TTFB
  histograms, checks, its figures); the one that finds every part in claims
  the merge (one atomic UPDATE) and writes the run's results, exactly as one
  process would have (histograms add bucket by bucket). ``runs show``,
  ``compare`` and ``report`` then see one run.

Shard clocks are the hosts' wall clocks: keep them in sync (NTP) for aligned
intervals.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
from typing import TYPE_CHECKING, Any

from ..engine import histogram as hdr
from ..config import RunConfig
from ..engine.engine import RunResult
from ..errors import EXIT_OK, RunError, UsageError
from ..engine.recorder import DEFAULT_MAX_NAMES, EndpointInterval, Recorder
from ..store.records import endpoint_rows, run_end_row
from .wire import add_part_extras, endpoint_from_json, hist_from_json, part_warnings
from ..engine.workload import shape_of

if TYPE_CHECKING:
    from ..store import Store
    from ..summary import Json, RunSummary

__all__ = ["parse_shard", "wait_for_shards", "merge_parts", "merged_result", "claim_merge", "store_merged",
           "merge_if_complete"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
#: How long after the last registration the shards start: time for every shard's poll to see it.
_START_DELAY_S = 1.0


def parse_shard(value: str | None, env: dict[str, str] | None = None) -> tuple[int, int] | None:
    """``--shard I/N`` (0-based I), else ``LOADGEN_SHARD``, else Kubernetes'
    ``JOB_COMPLETION_INDEX`` with ``LOADGEN_SHARDS``; None when not sharded."""
    env = dict(os.environ) if env is None else env
    text = value or env.get("LOADGEN_SHARD")
    if not text and env.get("JOB_COMPLETION_INDEX") and env.get("LOADGEN_SHARDS"):
        text = f"{env['JOB_COMPLETION_INDEX']}/{env['LOADGEN_SHARDS']}"
    if not text:
        return None
    m = _SHARD.match(text)
    if not m:
        raise UsageError(f"--shard {text!r} must look like I/N, e.g. 0/3 (shards are numbered from 0)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or i >= n:
        raise UsageError(f"--shard {text!r}: the index must be below the count (0/{n} … {max(n - 1, 0)}/{n})")
    return i, n


def wait_for_shards(call: Any, run_id: str, shard: int, shards: int, *, host: str, timeout_s: float) -> float:
    """Register this shard and block until all have; the agreed start (epoch seconds).

    ``call(fn)`` runs ``fn(store)`` on the store's loop (the run writer's).
    """

    async def register(store: Any) -> None:
        await store.register_shard(run_id, shard, shards, host, time.time())

    async def rows(store: Any) -> list[dict[str, Any]]:
        return await store.shard_rows(run_id)

    call(register)
    deadline = time.monotonic() + timeout_s
    while True:
        found = call(rows)
        counts = {r["shards"] for r in found}
        if len(counts) > 1:
            raise UsageError(f"the shards of run {run_id} disagree on their count: {sorted(counts)}")
        if len(found) >= shards:
            start = max(r["registered_at"] for r in found) + _START_DELAY_S
            delay = start - time.time()
            if delay > 0:
                time.sleep(delay)
            return start
        if time.monotonic() > deadline:
            raise RunError(
                f"only {len(found)} of {shards} shards of run {run_id} registered within {timeout_s:g}s"
            )
        time.sleep(0.2)


def merge_parts(parts: list[dict[str, Any]], max_names: int = DEFAULT_MAX_NAMES) -> Recorder:
    """The shards' parts as one recorder (totals, timings, checks), exactly; the
    endpoint names capped again over their union."""
    rec = Recorder(max_names=max_names)
    tot = rec.totals
    for p in parts:
        for d in p["endpoints"].values():
            key = rec.endpoint(d["method"], d["name"]).key
            ei = endpoint_from_json(d, timings=False)  # add_part_extras adds service time and TTFB
            ei.name = key.partition(" ")[2]
            into = tot.endpoints.get(key)
            if into is None:
                into = tot.endpoints[key] = EndpointInterval(ei.method, ei.name)
            into.merge(ei)
            tot.overall.merge(ei)
        add_part_extras(rec, p)
        tot.iterations += p["iterations"]
        tot.dropped_iterations += p["dropped_iterations"]
        hdr.merge(tot.lag, hist_from_json(p["lag"]))
        tot.cpu_s += p["cpu_s"]
        tot.saturated_intervals += p["saturated_intervals"]
        hdr.merge(tot.stall, hist_from_json(p.get("stall")))
        tot.stalled_intervals += p.get("stalled_intervals", 0)
        for task, n in (p.get("failed_iterations") or {}).items():
            tot.failed_iterations[task] = tot.failed_iterations.get(task, 0) + n
        tot.intervals = max(tot.intervals, p["intervals"])
    return rec


def merged_result(config: RunConfig, parts: list[dict[str, Any]]) -> RunResult:
    """One RunResult from every shard's part, as if one process had run it all."""
    rec = merge_parts(parts, config.max_names)
    exceptions: dict[str, int] = {}
    warnings = part_warnings(parts, "shards")
    for p in parts:
        for k, v in p["exceptions"].items():
            exceptions[k] = exceptions.get(k, 0) + v
    return RunResult(
        stop_reason=next((p.get("stop_reason") for p in parts if p.get("stop_reason")), None),
        recorder=rec,
        config=config,
        shape=shape_of(config),
        model=config.model,
        started_at=min(p["started_at"] for p in parts),
        duration_s=max(p["duration_s"] for p in parts),
        schedule_s=max(p["schedule_s"] for p in parts),
        interrupted=any(p["interrupted"] for p in parts),
        users_max=sum(p["users_max"] for p in parts),
        broke_at=next((p["broke_at"] for p in parts if p["broke_at"]), None),
        exceptions=exceptions,
        warnings=warnings,
    )


async def claim_merge(store: Store, run_id: str, config: RunConfig) -> RunResult | None:
    """The merged run, for the one caller that finds every shard done (None for the others)."""
    if not await store.claim_merge(run_id):
        return None
    return merged_result(config, [r["part"] for r in await store.shard_rows(run_id)])


async def store_merged(store: Store, run_id: str, result: RunResult, summary: RunSummary) -> None:
    """Write the merged run's results (its end record and per-endpoint rows)."""
    end = run_end_row(summary, result.duration_s, dt.datetime.now(dt.timezone.utc).timestamp())
    await store.finish_run(run_id, end, endpoint_rows(result.recorder.totals, result.schedule_s))


async def merge_if_complete(store: Store, run_id: str) -> dict[str, Json] | None:
    """After ``loadgen import`` of a shard's spool: if that completed the set, merge the run
    (thresholds and comparisons are the last shard's job; run ``loadgen compare`` after)."""
    from ..summary import summarize

    run = await store.get_run(run_id)
    result = await claim_merge(store, run_id, RunConfig.from_json(run["config"]))
    if result is None:
        return None
    summary = dataclasses.replace(
        summarize(result, scenario=(run["config"] or {}).get("scenario_path") or run["scenario"], host=run["host"]),
        run_id=run_id, shards=len(await store.shard_rows(run_id)), status="completed", exit_code=EXIT_OK,
    )
    await store_merged(store, run_id, result, summary)
    return summary.to_json()
