"""The store interface and the SQL both backends share.

PostgreSQL and SQLite hold the same tables and columns (``schema/``); they
differ in drivers, placeholders and how timestamps and JSON travel. The SQL
here uses numbered placeholders (``$1``), which the SQLite backend rewrites to
SQLite's own numbered form (``?1``), and ``ON CONFLICT … DO UPDATE``, which
both speak, so a spool file can be replayed over a partly written run.
"""

from __future__ import annotations

import abc
import importlib.resources
import re
from collections.abc import Sequence
from typing import Any

from ..errors import UsageError
from .records import TOTAL, Row, decode_hist

__all__ = ["Store", "RUN_COLUMNS", "StoreError"]

from ..errors import RunError


class StoreError(RunError):
    """The database could not be reached or refused a statement (exit code 3)."""


RUN_COLUMNS = (
    "id", "app_version", "git_commit", "environment", "test_type", "scenario", "host",
    "generator_host", "model", "loadgen_version", "config", "started_at", "ended_at",
    "status", "exit_code", "duration_s", "requests", "errors", "summary", "stop_reason",
)
_ENDPOINT_COLUMNS = (
    "run_id", "endpoint", "method", "name", "requests", "errors", "error_rate", "rps",
    "bytes_sent", "bytes_received", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms",
    "max_ms", "mean_ms", "min_ms", "status_codes", "errors_by_kind", "latency_hist",
    "latency_min_us", "latency_max_us", "service_hist", "ttfb_hist",
)
_INTERVAL_COLUMNS = (
    "run_id", "shard", "idx", "endpoint", "method", "name", "ts", "start_s", "end_s",
    "requests", "errors", "bytes_sent", "bytes_received", "p50_ms", "p95_ms", "p99_ms",
    "max_ms", "status_codes", "errors_by_kind", "latency_hist", "latency_min_us", "latency_max_us",
)
_STATS_COLUMNS = (
    "run_id", "shard", "idx", "ts", "start_s", "end_s", "iterations", "dropped_iterations",
    "users", "inflight", "target_rate", "cpu_percent", "saturated", "lag_p99_ms", "lag_hist",
    "stall_p99_ms", "stall_max_ms", "stalled", "stall_cause", "failed_iterations",
)
_RESOURCE_COLUMNS = (
    "run_id", "shard", "service", "ts", "pids", "cpu_percent", "rss_bytes", "threads",
    "disk_read_bytes", "disk_write_bytes", "net_sent_bytes", "net_recv_bytes", "net_scope",
)
_QUEUE_COLUMNS = (
    "run_id", "shard", "queue", "ts", "source", "length", "processing_time_s",
    "published_per_s", "consumed_per_s", "error_rate", "backlog_age_s",
)
_COMPARISON_ROW_COLUMNS = (
    "comparison_id", "pos", "metric", "subject", "unit", "baseline", "baseline_min",
    "baseline_max", "candidate", "change", "change_kind", "threshold", "verdict", "note",
)

#: Columns holding a timestamp (epoch seconds in rows) or a JSON document (dicts in rows).
TS_COLUMNS = frozenset({"ts", "started_at", "ended_at", "created_at"})
JSON_COLUMNS = frozenset(
    {"config", "summary", "status_codes", "errors_by_kind", "baseline_run_ids", "thresholds", "part",
     "failed_iterations"}
)
TS_COLUMNS = TS_COLUMNS | {"registered_at"}
BOOL_COLUMNS = frozenset({"saturated", "noise_estimate", "stalled"})


def _upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    cols = ", ".join(columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return f"INSERT INTO {table} ({cols}) VALUES ({params}) ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"


_MIGRATION_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def migrations(kind: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped for a backend, in order."""
    folder = importlib.resources.files("loadgen.schema").joinpath(kind)
    out = []
    for entry in folder.iterdir():
        m = _MIGRATION_FILE.match(entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(out)


class Store(abc.ABC):
    """A results store. Every method is a coroutine; writes are idempotent upserts.

    Backends implement the few driver primitives below; the queries live here
    once, so the two backends cannot drift apart.
    """

    kind: str
    #: The database URL as it may be shown: never with a password.
    shown: str
    #: What the driver raises when the database or the connection fails (a StoreError's cause).
    driver_errors: tuple[type[Exception], ...] = ()

    # -- driver primitives ---------------------------------------------------
    @abc.abstractmethod
    async def _execute(self, sql: str, *args: Any) -> None: ...

    @abc.abstractmethod
    async def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def _apply_migration(self, version: int, name: str, sql: str) -> bool:
        """Apply one migration unless already recorded (atomically, safe against a
        concurrent migrator); True if it was applied now."""

    @abc.abstractmethod
    async def _applied_versions(self) -> set[int]: ...

    @abc.abstractmethod
    def _ts_in(self, epoch: float) -> Any: ...

    @abc.abstractmethod
    def _ts_out(self, value: Any) -> float: ...

    @abc.abstractmethod
    def _json_in(self, obj: Any) -> Any: ...

    @abc.abstractmethod
    def _json_out(self, value: Any) -> Any: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """``async with await open_store(url) as store:``: the store is closed however the block ends."""
        await self.close()

    @abc.abstractmethod
    async def _insert_returning_id(self, sql: str, *args: Any) -> int: ...

    # -- conversions ---------------------------------------------------------
    def _params(self, columns: Sequence[str], row: Row) -> tuple[Any, ...]:
        out = []
        for c in columns:
            v = row.get(c)
            if v is not None:
                if c in TS_COLUMNS:
                    v = self._ts_in(v)
                elif c in JSON_COLUMNS:
                    v = self._json_in(v)
                elif c in BOOL_COLUMNS:
                    v = bool(v)
            out.append(v)
        return tuple(out)

    def _out(self, row: dict[str, Any]) -> Row:
        for c, v in row.items():
            if v is None:
                continue
            if c in TS_COLUMNS:
                row[c] = self._ts_out(v)
            elif c in JSON_COLUMNS:
                row[c] = self._json_out(v)
            elif c in BOOL_COLUMNS:
                row[c] = bool(v)
        return row

    async def _rows(self, sql: str, *args: Any) -> list[Row]:
        return [self._out(r) for r in await self._fetch(sql, *args)]

    # -- schema --------------------------------------------------------------
    async def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; the names of those applied now."""
        known = await self._applied_versions()
        applied = []
        for version, name, sql in migrations(self.kind):
            if version in known:
                continue
            if await self._apply_migration(version, name, sql):
                applied.append(f"{version:03d}_{name}")
        return applied

    # -- writing a run -------------------------------------------------------
    async def begin_run(self, run: Row, *, replace: bool = True) -> None:
        """Record a run as it starts (or replace its record: replays are idempotent).
        Shards of one run all begin it: the first one's record stands (``replace=False``)."""
        sql = _upsert("runs", RUN_COLUMNS, ("id",))
        if not replace:
            sql = sql[: sql.index(" DO UPDATE")] + " DO NOTHING"
        await self._execute(sql, *self._params(RUN_COLUMNS, run))

    # -- shards ------------------------------------------------------------------
    async def register_shard(self, run_id: str, shard: int, shards: int, host: str, now: float) -> None:
        cols = ("run_id", "shard", "shards", "host", "registered_at", "status")
        await self._execute(
            _upsert("run_shards", cols, ("run_id", "shard")),
            *self._params(cols, {"run_id": run_id, "shard": shard, "shards": shards, "host": host,
                                 "registered_at": now, "status": "waiting"}),
        )

    async def shard_rows(self, run_id: str) -> list[Row]:
        return await self._rows(
            "SELECT run_id, shard, shards, host, registered_at, status, part FROM run_shards "
            "WHERE run_id = $1 ORDER BY shard", run_id,
        )

    async def finish_shard(self, run_id: str, shard: int, part: dict[str, Any]) -> None:
        await self._execute(
            "UPDATE run_shards SET status = 'done', part = $3 WHERE run_id = $1 AND shard = $2",
            run_id, shard, self._json_in(part),
        )

    async def claim_merge(self, run_id: str) -> bool:
        """True for exactly one caller, once every shard of the run is done: it merges them."""
        rows = await self._fetch(
            "UPDATE runs SET status = 'merging' WHERE id = $1 AND status = 'running' AND "
            "(SELECT COUNT(*) FROM run_shards WHERE run_id = $1 AND status = 'done') = "
            "(SELECT MAX(shards) FROM run_shards WHERE run_id = $1) RETURNING id",
            run_id,
        )
        return bool(rows)

    async def write_intervals(self, run_id: str, rows: list[Row], stats: list[Row]) -> None:
        if rows:
            await self._executemany(
                _upsert("intervals", _INTERVAL_COLUMNS, ("run_id", "shard", "idx", "endpoint")),
                [self._params(_INTERVAL_COLUMNS, {**r, "run_id": run_id}) for r in rows],
            )
        if stats:
            await self._executemany(
                _upsert("interval_stats", _STATS_COLUMNS, ("run_id", "shard", "idx")),
                [self._params(_STATS_COLUMNS, {**r, "run_id": run_id}) for r in stats],
            )

    async def write_samples(self, run_id: str, resources: list[Row], queues: list[Row]) -> None:
        if resources:
            await self._executemany(
                _upsert("resource_samples", _RESOURCE_COLUMNS, ("run_id", "shard", "service", "ts")),
                [self._params(_RESOURCE_COLUMNS, {**r, "run_id": run_id}) for r in resources],
            )
        if queues:
            await self._executemany(
                _upsert("queue_samples", _QUEUE_COLUMNS, ("run_id", "shard", "queue", "ts")),
                [self._params(_QUEUE_COLUMNS, {**r, "run_id": run_id}) for r in queues],
            )

    async def finish_run(self, run_id: str, update: Row, endpoints: list[Row]) -> None:
        """Record the end of a run: its status, exit code, summary and per-endpoint results."""
        cols = ("ended_at", "status", "exit_code", "duration_s", "requests", "errors", "summary", "stop_reason")
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(cols, start=2))
        await self._execute(f"UPDATE runs SET {sets} WHERE id = $1", run_id, *self._params(cols, update))
        if endpoints:
            await self._executemany(
                _upsert("endpoint_results", _ENDPOINT_COLUMNS, ("run_id", "endpoint")),
                [self._params(_ENDPOINT_COLUMNS, {**r, "run_id": run_id}) for r in endpoints],
            )

    async def save_comparison(self, head: Row, rows: list[Row]) -> int:
        """Store a comparison and its rows; its id."""
        cols = ("created_at", "candidate_run_id", "baseline_version", "baseline_run_ids", "scenario",
                "test_type", "thresholds", "verdict", "regressions", "improvements", "noise_estimate")
        params = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        cid = await self._insert_returning_id(
            f"INSERT INTO comparisons ({', '.join(cols)}) VALUES ({params}) RETURNING id",
            *self._params(cols, head),
        )
        if rows:
            await self._executemany(
                _upsert("comparison_rows", _COMPARISON_ROW_COLUMNS, ("comparison_id", "pos")),
                [self._params(_COMPARISON_ROW_COLUMNS, {**r, "comparison_id": cid, "pos": i})
                 for i, r in enumerate(rows)],
            )
        return cid

    # -- reading -------------------------------------------------------------
    async def list_runs(
        self,
        *,
        app_version: str | None = None,
        scenario: str | None = None,
        test_type: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[Row]:
        """Runs, newest first (without their summary documents)."""
        where, args = [], []
        for col, val in (("app_version", app_version), ("scenario", scenario),
                         ("test_type", test_type), ("status", status)):
            if val is not None:
                args.append(val)
                where.append(f"{col} = ${len(args)}")
        args.append(limit)
        cols = ", ".join(c for c in RUN_COLUMNS if c not in ("summary", "config"))
        sql = (f"SELECT {cols} FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY started_at DESC, id DESC LIMIT ${len(args)}")
        return await self._rows(sql, *args)

    async def get_run(self, ref: str) -> Row:
        """A run by id, unique id prefix, or ``latest``; UsageError if none or ambiguous."""
        cols = ", ".join(RUN_COLUMNS)
        if ref == "latest":
            rows = await self._rows(f"SELECT {cols} FROM runs ORDER BY started_at DESC, id DESC LIMIT 1")
            if not rows:
                raise UsageError(f"no runs are stored in {self.shown}")
            return rows[0]
        rows = await self._rows(f"SELECT {cols} FROM runs WHERE id = $1", ref)
        if rows:
            return rows[0]
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._rows(
            f"SELECT {cols} FROM runs WHERE id LIKE $1 ESCAPE '\\' ORDER BY started_at DESC LIMIT 3", escaped + "%"
        )
        if not rows:
            raise UsageError(f"no run {ref!r} in {self.shown}; `loadgen runs list` shows the stored runs")
        if len(rows) > 1:
            raise UsageError(f"run {ref!r} is ambiguous: it starts {', '.join(r['id'] for r in rows)}")
        return rows[0]

    async def endpoint_results(self, run_id: str) -> list[Row]:
        cols = ", ".join(_ENDPOINT_COLUMNS)
        return await self._rows(f"SELECT {cols} FROM endpoint_results WHERE run_id = $1 ORDER BY endpoint", run_id)

    async def intervals(self, run_id: str) -> list[Row]:
        cols = ", ".join(_INTERVAL_COLUMNS)
        return await self._rows(
            f"SELECT {cols} FROM intervals WHERE run_id = $1 ORDER BY shard, idx, endpoint", run_id
        )

    async def interval_stats(self, run_id: str) -> list[Row]:
        cols = ", ".join(_STATS_COLUMNS)
        return await self._rows(f"SELECT {cols} FROM interval_stats WHERE run_id = $1 ORDER BY shard, idx", run_id)

    async def resource_samples(self, run_id: str) -> list[Row]:
        cols = ", ".join(_RESOURCE_COLUMNS)
        return await self._rows(f"SELECT {cols} FROM resource_samples WHERE run_id = $1 ORDER BY ts, service", run_id)

    async def queue_samples(self, run_id: str) -> list[Row]:
        cols = ", ".join(_QUEUE_COLUMNS)
        return await self._rows(f"SELECT {cols} FROM queue_samples WHERE run_id = $1 ORDER BY ts, queue", run_id)

    async def comparisons(self, candidate_run_id: str) -> list[Row]:
        return await self._rows(
            "SELECT id, created_at, candidate_run_id, baseline_version, baseline_run_ids, scenario, test_type, "
            "thresholds, verdict, regressions, improvements, noise_estimate FROM comparisons "
            "WHERE candidate_run_id = $1 ORDER BY id", candidate_run_id,
        )

    async def comparison_rows(self, comparison_id: int) -> list[Row]:
        cols = ", ".join(_COMPARISON_ROW_COLUMNS)
        return await self._rows(f"SELECT {cols} FROM comparison_rows WHERE comparison_id = $1 ORDER BY pos",
                                comparison_id)

    async def baseline_runs(self, app_version: str, *, scenario: str | None, test_type: str, limit: int) -> list[Row]:
        """The last ``limit`` completed runs of a version for a scenario and test type, newest first."""
        cols = ", ".join(c for c in RUN_COLUMNS if c not in ("summary", "config"))
        scen = "scenario IS NULL" if scenario is None else "scenario = $4"
        args: list[Any] = [app_version, test_type, limit] + ([] if scenario is None else [scenario])
        return await self._rows(
            f"SELECT {cols} FROM runs WHERE app_version = $1 AND test_type = $2 AND {scen} "
            "AND status = 'completed' ORDER BY started_at DESC, id DESC LIMIT $3",
            *args,
        )

    async def scenarios_of_version(self, app_version: str, *, besides: str) -> list[Row]:
        """What a version's completed runs but run ``besides`` (a candidate is never its own
        baseline) were matched on: ``scenario``, ``test_type`` and ``runs`` (how many), the most
        recently run first (for the message when none match)."""
        return await self._rows(
            "SELECT scenario, test_type, COUNT(*) AS runs FROM runs "
            "WHERE app_version = $1 AND status = 'completed' AND id <> $2 "
            "GROUP BY scenario, test_type ORDER BY MAX(started_at) DESC, scenario, test_type",
            app_version, besides,
        )

    async def run_stats(self, run: Row) -> Any:
        """The comparison's view of a stored run (:class:`loadgen.judgement.run_stats.RunStats`)."""
        from ..judgement.run_stats import EndpointStats, RunStats

        endpoints = {}
        for r in await self.endpoint_results(run["id"]):
            key = TOTAL if r["endpoint"] == TOTAL else r["endpoint"]
            endpoints[key] = EndpointStats(
                requests=r["requests"],
                errors=r["errors"],
                duration_s=run["duration_s"] or 0.0,
                latency=decode_hist(r["latency_hist"], r["latency_min_us"], r["latency_max_us"]),
            )
        resources: dict[str, dict[str, float]] = {}
        for r in await self._fetch(
            "SELECT service, AVG(cpu_percent) AS cpu, MAX(rss_bytes) AS rss FROM resource_samples "
            # The generator's own resources say nothing about the version under test.
            "WHERE run_id = $1 AND service <> 'generator' GROUP BY service", run["id"],
        ):
            resources[r["service"]] = {"cpu_percent": float(r["cpu"]), "memory_bytes": float(r["rss"])}
        queues = {
            r["queue"]: float(r["len"])
            for r in await self._fetch(
                "SELECT queue, AVG(length) AS len FROM queue_samples WHERE run_id = $1 AND length IS NOT NULL "
                "GROUP BY queue", run["id"],
            )
        }
        return RunStats(
            run_id=run["id"],
            app_version=run["app_version"],
            started_at=run["started_at"],
            scenario=run["scenario"],
            test_type=run["test_type"],
            endpoints=endpoints,
            resources=resources,
            queues=queues,
        )

    async def set_outcome(self, run_id: str, exit_code: int, summary: dict[str, Any]) -> None:
        """The exit code and summary a run ended with, once the comparison after it decided them."""
        await self._execute(
            "UPDATE runs SET exit_code = $2, summary = $3 WHERE id = $1",
            run_id, *self._params(("exit_code", "summary"), {"exit_code": exit_code, "summary": summary}),
        )
