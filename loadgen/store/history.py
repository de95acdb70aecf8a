"""Reading and judging stored runs: what ``loadgen runs``, ``compare``, ``import``
and ``db migrate`` do, and the comparison at the end of ``loadgen run``."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config import shown
from ..errors import UsageError
from . import Store, open_store
from .url import DatabaseURL

__all__ = [
    "with_store",
    "list_runs",
    "get_run",
    "run_comparison",
    "compare_and_store",
    "import_spool",
    "migrate",
    "print_runs",
]

T = TypeVar("T")


def with_store(url: DatabaseURL, fn: Callable[[Store], Awaitable[T]], *, migrate: bool = True) -> T:
    """Open the store, run ``fn(store)``, close it (for the CLI's one-shot commands)."""

    async def main() -> T:
        async with await open_store(url, migrate=migrate) as store:
            return await fn(store)

    return asyncio.run(main())


def migrate(url: DatabaseURL) -> list[str]:
    async def go(store: Store) -> list[str]:
        return await store.migrate()

    return with_store(url, go, migrate=False)


def list_runs(url: DatabaseURL, *, app_version: str | None, limit: int) -> list[dict[str, Any]]:
    async def go(store: Store) -> list[dict[str, Any]]:
        return await store.list_runs(app_version=app_version, limit=limit)

    return with_store(url, go)


def get_run(url: DatabaseURL, ref: str) -> dict[str, Any]:
    async def go(store: Store) -> dict[str, Any]:
        return await store.get_run(ref)

    return with_store(url, go)


def import_spool(url: DatabaseURL, path: Path) -> tuple[Any, dict[str, Any] | None]:
    """Replay a spool file; for a shard's journal that completes its run, also merge the run.
    Returns the replay's result and the merged run's summary (or None)."""
    from ..scaleout.shards import merge_if_complete
    from .spool import replay

    async def go(store: Store) -> tuple[Any, dict[str, Any] | None]:
        res = await replay(path, store)
        return res, (await merge_if_complete(store, res.run_id) if res.sharded else None)

    return with_store(url, go)


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def runs_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``runs list --json``: newest first; timestamps as ISO 8601 (UTC)."""
    out = []
    for r in rows:
        d = dict(r)
        for k in ("started_at", "ended_at"):
            if d.get(k) is not None:
                d[k] = dt.datetime.fromtimestamp(d[k], dt.timezone.utc).isoformat()
        out.append(d)
    return out


def print_runs(rows: list[dict[str, Any]], console: Console, shown: str) -> None:
    if not rows:
        console.print(f"no runs stored in {escape(shown)}")
        return
    t = Table(title=f"Runs in {escape(shown)} (newest first)", title_justify="left")
    for col in ("id", "app version", "started (UTC)", "test type", "scenario", "status", "exit", "requests", "errors"):
        t.add_column(col, justify="right" if col in ("exit", "requests", "errors") else "left")
    for r in rows:
        t.add_row(
            r["id"],
            escape(r["app_version"] or ""),
            _iso(r["started_at"]),
            r["test_type"],
            escape(r["scenario"] or ""),
            r["status"],
            "" if r["exit_code"] is None else str(r["exit_code"]),
            "" if r["requests"] is None else f"{r['requests']:,}",
            "" if r["errors"] is None else f"{r['errors']:,}",
        )
    console.print(t)


async def compute_comparison(store: Store, cand: dict[str, Any], baseline_version: str,
                             thresholds: Any) -> tuple[Any, Any, list[Any], list[dict[str, Any]]]:
    """Compare a stored run with the last K completed runs of ``baseline_version`` (same
    scenario and test type). Returns the comparison, the candidate's and the baseline runs'
    stats, and the baseline runs' records. Reads only (``loadgen compare`` stores the result)."""
    from ..judgement.comparison import compare

    k = thresholds.baseline_runs
    if cand["status"] == "running":
        raise UsageError(f"run {cand['id']} has not finished; compare it once it has")
    base_rows = await store.baseline_runs(
        baseline_version, scenario=cand["scenario"], test_type=cand["test_type"], limit=k + 1
    )
    base_rows = [r for r in base_rows if r["id"] != cand["id"]][:k]
    if not base_rows:
        raise UsageError(await no_baseline(store, baseline_version, cand))
    baseline = [await store.run_stats(r) for r in base_rows]
    candidate = await store.run_stats(cand)
    return compare(baseline, candidate, thresholds, baseline_version=baseline_version), candidate, baseline, base_rows


#: How many of a version's scenarios the message without a baseline names.
_HELD_SHOWN = 4


async def no_baseline(store: Store, version: str, cand: dict[str, Any]) -> str:
    """The sentence for a comparison without baseline runs: what was looked for, and what the
    database does hold for that version (scenario identities and test types), so a run whose
    scenario was named or given differently can be matched."""
    head = (f"no completed runs of version {version!r} for scenario {_name(cand['scenario'])}, "
            f"test type {cand['test_type']!r} in {store.shown}")
    held = await store.scenarios_of_version(version, besides=cand["id"])
    if not held:
        other = " other" if cand.get("app_version") == version else ""
        return f"{head}; version {version!r} has no{other} completed runs: run that version first"
    listed = ", ".join(
        f"{_name(r['scenario'])} ({r['test_type']}, {r['runs']} run{'' if r['runs'] == 1 else 's'})"
        for r in held[:_HELD_SHOWN]
    )
    more = f" and {len(held) - _HELD_SHOWN} more" if len(held) > _HELD_SHOWN else ""
    return (f"{head}; version {version!r} has {listed}{more}; give the run --scenario-name "
            "(or --test-type) to match one")


def _name(scenario: str | None) -> str:
    return "(none)" if scenario is None else shown(scenario, 80)


def regression_thresholds(thresholds: Any, baseline_runs: int | None) -> Any:
    """The comparison's thresholds (defaults without a file), with ``--baseline-runs`` applied."""
    from ..judgement.tolerances import Tolerances

    th = thresholds or Tolerances()
    return dataclasses.replace(th, baseline_runs=baseline_runs) if baseline_runs is not None else th


def run_comparison(
    url: DatabaseURL,
    *,
    baseline_version: str,
    candidate: str | None = None,
    candidate_version: str | None = None,
    thresholds: Any = None,
    baseline_runs: int | None = None,
    console: Console | None = None,
    as_json: bool = False,
) -> Any:
    """Compare a candidate run (or the latest run of a version) with the last K completed
    runs of the baseline version for the same scenario and test type; store and print
    the comparison; return it (:class:`loadgen.judgement.comparison.Comparison`)."""
    from ..judgement.render import render_comparison as render

    async def go(store: Store) -> Any:
        cand = await _candidate(store, candidate, candidate_version)
        return await compare_and_store(store, cand, baseline_version, thresholds, baseline_runs)

    result = with_store(url, go)
    if console is not None and not as_json:
        render(result, console)
    return result


async def _candidate(store: Store, run_ref: str | None, version: str | None) -> dict[str, Any]:
    """The run to compare: by reference, else the latest completed run of a version, else the latest."""
    if run_ref is not None:
        return await store.get_run(run_ref)
    if version is None:
        return await store.get_run("latest")
    rows = await store.list_runs(app_version=version, status="completed", limit=1)
    if not rows:
        raise UsageError(f"no completed runs of version {version!r} in {store.shown}")
    return rows[0]


async def compare_and_store(store: Store, cand: dict[str, Any], baseline_version: str, thresholds: Any,
                            baseline_runs: int | None) -> Any:
    """Compare a stored run with its baseline (see :func:`run_comparison`) and store the comparison."""
    th = regression_thresholds(thresholds, baseline_runs)
    result, _, _, base_rows = await compute_comparison(store, cand, baseline_version, th)
    doc = result.to_json()
    head = {
        "created_at": dt.datetime.now(dt.timezone.utc).timestamp(),
        "candidate_run_id": cand["id"],
        "baseline_version": baseline_version,
        "baseline_run_ids": [r["id"] for r in base_rows],
        "scenario": cand["scenario"],
        "test_type": cand["test_type"],
        "thresholds": doc["thresholds"],
        "verdict": result.verdict,
        "regressions": len(result.regressions),
        "improvements": len(result.improvements),
        "noise_estimate": result.noise_estimate,
    }
    await store.save_comparison(head, doc["rows"])
    return result
