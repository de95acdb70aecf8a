"""One loadgen run: its command line with an explicit results store, its --summary-json, and the
evidence that the run really went into the store."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

from .console import first_error_line, redact
from .paths import BENCH_DB, OUT, SPOOL, sqlite_url
from .processes import ChildRun, Monitor, sh
from .rows import Row, fail
from .servers import Server
from .session import Session

_RUN_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")


def loadgen_run(s: Session, row: Row, tag: str, args: list[str], timeout: float | None = None,
                server: Server | None = None, db: str | None = None,
                strict_store: bool = False, monitor: Monitor | None = None, cpu: str | None = None) -> Row:
    """One loadgen run. Every run names its store explicitly: `db` (default
    sqlite:///<bench/.work>/bench.db, what a user gets by default but not in
    the cwd), with the spool journal in bench/.work/spool. Whether the run
    really went into the store is checked (stdout "stored as run ID" with the
    summary's run_id, and its rows in the database when it can be read);
    with strict_store a run that was not stored is a failed row, else a note."""
    db = db or sqlite_url(BENCH_DB)
    summary = OUT / f"{tag}.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.unlink(missing_ok=True)
    store = ["--db", db] + ([] if db == "none" else ["--spool-dir", str(SPOOL)])
    argv = s.tools.loadgen + args + store + ["--quiet", "--summary-json", str(summary)]

    def parse(r: Row, run: ChildRun) -> Row:
        parse_loadgen(r, run, summary)
        if r.ok and strict_store and run.rc != 0:
            return fail(r, run.error())
        if r.ok and db != "none":
            why = check_stored(r, run, summary, db)
            if why and strict_store:
                fail(r, f"not stored: {why}")
            elif why:
                r.add_note(f"NOT stored: {why}")
        return r
    return s.measured(row, tag, argv, parse, env=s.tools.loadgen_env, timeout=timeout, server=server,
                      monitor=monitor, cpu=cpu)


def parse_loadgen(row: Row, run: ChildRun, summary: Path) -> Row:
    try:
        data = json.loads(summary.read_text())
        count = int(data["requests"])
        dur = float(data["duration_s"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = run.error() if (run.rc or run.timed_out or run.start_error) else f"no usable --summary-json ({e})"
        return fail(row, why)
    if not count:
        return fail(row, "loadgen reported 0 requests" + (f" ({run.error()})" if run.rc else ""))
    row.fill(run, count, dur)
    lat = data.get("latency_ms") or {}
    row.p50_ms, row.p90_ms, row.p99_ms = lat.get("p50"), lat.get("p90"), lat.get("p99")
    gen = data.get("generator") or {}
    for k in ("errors", "failures", "failed"):
        if isinstance(data.get(k), (int, float)):
            row.errors = int(data[k])
            break
    row.extra.update({
        "rps_reported": data.get("rps"),
        "target_rate": data.get("target_rate"),
        "achieved_rate": data.get("achieved_rate"),
        "dropped_iterations": data.get("dropped_iterations"),
        "lag_p99_ms": (gen.get("lag_ms") or {}).get("p99"),
        "lag_max_ms": (gen.get("lag_ms") or {}).get("max"),
        "gen_cpu_percent": gen.get("cpu_percent"),
        "saturated": gen.get("saturated"),
        "latency_max_ms": lat.get("max"),
    })
    return row


def count_stored(db: str, run_id: str) -> tuple[int, int] | str:
    """(rows in `runs`, rows in `interval_stats`) for run_id, read back from the
    store (SQLite with the stdlib, PostgreSQL with psql); a string says why not."""
    if not _RUN_ID.match(run_id):
        return f"unexpected run id {run_id!r}"
    q = ("SELECT (SELECT count(*) FROM runs WHERE id = '{0}'), "
         "(SELECT count(*) FROM interval_stats WHERE run_id = '{0}')").format(run_id)
    if db.startswith("sqlite:///"):
        try:
            con = sqlite3.connect(f"file:{db[len('sqlite:///'):]}?mode=ro", uri=True, timeout=10)
            try:
                runs, intervals = con.execute(q).fetchone()
            finally:
                con.close()
            return int(runs), int(intervals)
        except sqlite3.Error as e:
            return f"cannot read {db}: {e}"
    if db.startswith(("postgresql://", "postgres://")):
        if not shutil.which("psql"):
            return "psql not installed"
        rc, out = sh(["psql", "-X", "-A", "-t", "-w", "-F", " ", "-d", db, "-c", q], timeout=30,
                     env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
        try:
            runs, intervals = out.split()[:2]
            return int(runs), int(intervals)
        except ValueError:
            return f"psql failed (exit {rc}): {redact(first_error_line(out))}"
    return "unknown kind of store"


def check_stored(row: Row, run: ChildRun, summary: Path, db: str) -> str | None:
    """None when the run is in the store, else why not. Evidence: the summary
    JSON's run_id, loadgen's "stored as run <run_id>" on stdout, and the run's
    row plus one interval_stats row per second read back from the database."""
    try:
        run_id = json.loads(summary.read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        run_id = None
    if not run_id:
        return "the summary JSON has no run_id"
    row.extra["run_id"] = run_id
    out = " ".join(run.stdout.split())  # rich may wrap the line
    if f"stored as run {run_id}" not in out:
        why = f'stdout does not say "stored as run {run_id}"'
        if "spooled to" in out:
            why += " (the database was not reachable: the run was only spooled)"
        return why
    got = count_stored(db, run_id)
    if isinstance(got, str):
        row.extra["stored"] = True
        row.extra["stored_check"] = f"stdout only ({got})"
        return None
    runs, intervals = got
    row.extra["intervals_stored"] = intervals
    if not runs:
        return f"loadgen says stored, but run {run_id} is not in the database"
    if row.duration_s and row.duration_s >= 3 and not intervals:
        return f"run {run_id} is in the database without any interval_stats row"
    row.extra["stored"] = True
    row.extra["stored_check"] = f"in the database: run row + {intervals} intervals"
    return None
