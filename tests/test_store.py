"""The results store against a real PostgreSQL and SQLite: exact histograms, spooling,
killed runs, browsing, and what a user sees when the database is wrong."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from array import array
from typing import Any

import numpy as np
import pytest

from loadgen.engine import histogram as hdr
from loadgen.engine.recorder import ROW, Recorder
from loadgen.store import open_store, parse_db_url
from loadgen.store.records import TOTAL, decode_hist
from loadgen.store.writer import RunWriter


def loadgen(*args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=timeout, **kw
    )


def query(url: str, fn_name: str, *args: Any) -> Any:
    async def go() -> Any:
        store = await open_store(url)
        try:
            return await getattr(store, fn_name)(*args)
        finally:
            await store.close()

    return asyncio.run(go())


def _one_sentence(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# --- schema ---------------------------------------------------------------------


def test_migrations_apply_once_and_are_recorded(db_url):
    async def go() -> tuple[list[str], list[str], list[dict]]:
        store = await open_store(db_url, migrate=False)
        try:
            first = await store.migrate()
            second = await store.migrate()
            rows = await store._fetch("SELECT version, name FROM schema_migrations ORDER BY version")
            return first, second, rows
        finally:
            await store.close()

    first, second, rows = asyncio.run(go())
    assert first and first[0] == "001_init"
    assert second == []
    assert [r["version"] for r in rows] == list(range(1, len(first) + 1))


def test_db_migrate_command(db_url):
    p = loadgen("db", "migrate", "--db", db_url)
    assert p.returncode == 0 and "applied 001_init" in p.stdout
    p = loadgen("db", "migrate", "--db", db_url)
    assert p.returncode == 0 and "up to date" in p.stdout


# --- exactness ------------------------------------------------------------------


def _feed(rec: Recorder, latencies_us: np.ndarray, t0: int) -> None:
    ep = rec.endpoint("GET", "/x")
    rows = np.zeros((len(latencies_us), ROW), dtype=np.int64)
    rows[:, 0] = t0
    rows[:, 1] = t0
    rows[:, 2] = t0 + latencies_us * 500
    rows[:, 3] = t0 + latencies_us * 1000
    rows[:, 4] = 200
    rows[:, 5] = 100
    rows[:, 6] = 1000
    ep.buf = array("q", rows.ravel().tobytes())


def test_interval_histograms_merge_to_exact_percentiles_over_any_window(db_url, tmp_path):
    """Intervals written through the writer, read back and merged over a window, give
    exactly the histogram of that window's raw latencies (every count, every percentile)."""
    rng = np.random.default_rng(7)
    rec = Recorder()
    t0 = 1_000_000_000
    rec.start(t0)
    raw: list[np.ndarray] = []
    writer = RunWriter(parse_db_url(db_url), _run_row("exact"), spool_dir=tmp_path / "spool")
    writer.start()
    assert writer.db_error is None
    for i in range(6):
        lat = (rng.lognormal(mean=8 + i * 0.3, sigma=0.7, size=2000)).astype(np.int64) + 1
        raw.append(lat)
        _feed(rec, lat, t0)
        snap = rec.snapshot(t0 + (i + 1) * 1_000_000_000)
        writer(snap)
    outcome = writer.finish({"status": "completed", "duration_s": 6.0, "requests": 12000, "errors": 0,
                             "ended_at": time.time(), "exit_code": 0, "summary": {}}, [])
    assert outcome.stored and outcome.spool_path is None
    rows = [r for r in query(db_url, "intervals", "exact") if r["endpoint"] == "GET /x"]
    assert [r["idx"] for r in rows] == list(range(6))
    for lo, hi in [(0, 6), (1, 3), (4, 5), (2, 6)]:
        merged = hdr.new_histogram()
        for r in rows[lo:hi]:
            hdr.merge(merged, decode_hist(r["latency_hist"], r["latency_min_us"], r["latency_max_us"]))
        direct = hdr.new_histogram()
        hdr.record_us(direct, np.concatenate(raw[lo:hi]))
        assert merged.total_count == direct.total_count
        assert np.array_equal(hdr._counts_view(merged), hdr._counts_view(direct))
        assert hdr.summarize_ms(merged) == hdr.summarize_ms(direct)
        for p in (50, 90, 99, 99.9, 99.99):
            assert hdr.percentile_us(merged, p) == hdr.percentile_us(direct, p)


def _run_row(run_id: str, **kw: Any) -> dict[str, Any]:
    return {"id": run_id, "test_type": "load", "model": "open", "loadgen_version": "test", "config": {},
            "started_at": time.time(), "status": "running", **kw}


def test_stored_run_gives_back_the_percentiles_it_printed(db_url, demo_target, tmp_path):
    summary = tmp_path / "s.json"
    p = loadgen("run", "scenarios/api.py", "--host", demo_target.url, "--rate", "150", "--run-time", "2s",
                "--app-version", "9.9", "--db", db_url, "--summary-json", str(summary), "-q")
    assert p.returncode == 0, p.stderr
    doc = json.loads(summary.read_text())
    assert f"stored as run {doc['run_id']}" in p.stdout
    rows = {r["endpoint"]: r for r in query(db_url, "endpoint_results", doc["run_id"])}
    assert set(rows) == set(doc["endpoints"]) | {TOTAL}
    for key, ep in [*doc["endpoints"].items(), (TOTAL, doc)]:
        r = rows[key]
        hist = decode_hist(r["latency_hist"], r["latency_min_us"], r["latency_max_us"])
        assert hist.total_count > 0
        assert hdr.summarize_ms(hist) == ep["latency_ms"], key
        assert r["requests"] == ep["requests"] and r["errors"] == ep["errors"]
        assert r["p95_ms"] == ep["latency_ms"]["p95"]
    # The run's intervals add up to the run.
    ints = [r for r in query(db_url, "intervals", doc["run_id"]) if r["endpoint"] == TOTAL]
    assert sum(r["requests"] for r in ints) == doc["requests"]
    merged = hdr.new_histogram()
    for r in ints:
        hdr.merge(merged, decode_hist(r["latency_hist"], r["latency_min_us"], r["latency_max_us"]))
    assert hdr.summarize_ms(merged) == doc["latency_ms"]
    run = query(db_url, "get_run", doc["run_id"][:12])
    assert run["status"] == "completed" and run["exit_code"] == 0 and run["app_version"] == "9.9"
    assert run["summary"]["requests"] == doc["requests"]
    assert run["config"]["rate"] == 150


# --- nothing lost -----------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_down_spools_and_imports_back_with_nothing_lost(pg_url, demo_target, tmp_path):
    down = f"postgresql://loadgen:hunter2@127.0.0.1:{_closed_port()}/nowhere"
    spool = tmp_path / "spool"
    summary = tmp_path / "s.json"
    p = loadgen("run", "--url", demo_target.url + "/health", "--rate", "100", "--run-time", "2s",
                "--db", down, "--spool-dir", str(spool), "--summary-json", str(summary), "-q")
    assert p.returncode == 0, p.stderr
    assert "hunter2" not in p.stdout + p.stderr
    files = list(spool.glob("*.jsonl"))
    assert len(files) == 1
    assert "hunter2" not in files[0].read_text()
    assert f"loadgen import {files[0]}" in p.stdout.replace("\n", "")
    doc = json.loads(summary.read_text())
    imp = loadgen("import", str(files[0]), "--db", pg_url)
    assert imp.returncode == 0, imp.stderr
    assert f"imported run {doc['run_id']}" in imp.stdout and "complete" in imp.stdout
    assert not files[0].exists()
    run = query(pg_url, "get_run", doc["run_id"])
    assert run["status"] == "completed" and run["requests"] == doc["requests"] == 200
    rows = {r["endpoint"]: r for r in query(pg_url, "endpoint_results", doc["run_id"])}
    total = rows[TOTAL]
    assert total["requests"] == doc["requests"]
    hist = decode_hist(total["latency_hist"], total["latency_min_us"], total["latency_max_us"])
    assert hdr.summarize_ms(hist) == doc["latency_ms"]
    stats = query(pg_url, "interval_stats", doc["run_id"])
    assert len(stats) == doc["generator"]["intervals"]
    assert sum(s["iterations"] for s in stats) == doc["iterations"]


def test_database_lost_mid_run_is_completed_from_the_journal(pg_url, demo_target, tmp_path):
    """Connections killed mid-run: the writer falls back to its journal and replays it at the end."""
    import asyncpg

    summary = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "100",
         "--run-time", "4s", "--db", pg_url, "--spool-dir", str(tmp_path / "spool"),
         "--summary-json", str(summary), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    dbname = pg_url.rsplit("/", 1)[1]

    async def kill_connections() -> int:
        conn = await asyncpg.connect(pg_url)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                n = await conn.fetchval("SELECT count(*) FROM interval_stats") if await conn.fetchval(
                    "SELECT to_regclass('interval_stats') IS NOT NULL") else 0
                if n >= 1:
                    break
                await asyncio.sleep(0.1)
            return await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", dbname)
        finally:
            await conn.close()

    killed = asyncio.run(kill_connections())
    out, err = proc.communicate(timeout=120)
    assert killed >= 1
    assert proc.returncode == 0, err
    doc = json.loads(summary.read_text())
    assert f"stored as run {doc['run_id']}" in out
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    stats = query(pg_url, "interval_stats", doc["run_id"])
    assert len(stats) == doc["generator"]["intervals"]
    assert sum(s["iterations"] for s in stats) == doc["iterations"] == 400
    assert query(pg_url, "get_run", doc["run_id"])["requests"] == doc["requests"]


def test_sigkilled_run_keeps_its_flushed_intervals(db_url, demo_target, tmp_path):
    spool = tmp_path / "spool"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "50",
         "--run-time", "60s", "--db", db_url, "--spool-dir", str(spool), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        runs: list[dict] = []
        stats: list[dict] = []
        while time.monotonic() < deadline:
            try:
                runs = query(db_url, "list_runs")
                stats = query(db_url, "interval_stats", runs[0]["id"]) if runs else []
            except Exception:  # noqa: BLE001 - the schema may be mid-creation
                pass
            if len(stats) >= 3:
                break
            time.sleep(0.2)
        assert len(stats) >= 3, "the run never flushed three intervals"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    run_id = runs[0]["id"]
    stats = query(db_url, "interval_stats", run_id)
    assert len(stats) >= 3
    assert [s["idx"] for s in stats] == list(range(len(stats)))
    ints = [r for r in query(db_url, "intervals", run_id) if r["endpoint"] == TOTAL]
    assert sum(r["requests"] for r in ints) >= 100
    assert query(db_url, "get_run", run_id)["status"] == "running"
    # The journal survived too, and importing it marks the run incomplete, keeping every interval.
    files = list(spool.glob("*.jsonl"))
    assert len(files) == 1
    imp = loadgen("import", str(files[0]), "--db", db_url)
    assert imp.returncode == 0 and "incomplete" in imp.stdout, imp.stderr
    assert query(db_url, "get_run", run_id)["status"] == "incomplete"
    assert len(query(db_url, "interval_stats", run_id)) >= len(stats)


# --- browsing -----------------------------------------------------------------------


def test_runs_list_show_export(db_url, demo_target, tmp_path):
    ids = []
    for version in ("1.0", "1.1"):
        s = tmp_path / f"{version}.json"
        p = loadgen("run", "--url", demo_target.url + "/health", "--rate", "50", "--run-time", "1s",
                    "--app-version", version, "--db", db_url, "--summary-json", str(s), "-q")
        assert p.returncode == 0, p.stderr
        ids.append(json.loads(s.read_text())["run_id"])
    p = loadgen("runs", "list", "--json", "--db", db_url)
    assert p.returncode == 0, p.stderr
    listed = json.loads(p.stdout)
    assert [r["id"] for r in listed] == ids[::-1]  # newest first
    assert {"id", "app_version", "started_at", "status"} <= set(listed[0])
    assert listed[0]["app_version"] == "1.1" and listed[0]["status"] == "completed"
    p = loadgen("runs", "list", "--json", "--app-version", "1.0", "--db", db_url)
    assert [r["id"] for r in json.loads(p.stdout)] == [ids[0]]
    p = loadgen("runs", "list", "--limit", "1", "--json", "--db", db_url)
    assert len(json.loads(p.stdout)) == 1
    p = loadgen("runs", "show", ids[0], "--db", db_url)
    assert p.returncode == 0 and "GET /health" in p.stdout and "p95" in p.stdout
    p = loadgen("runs", "export", ids[1], "--db", db_url)
    assert p.returncode == 0
    exported = json.loads(p.stdout)
    assert exported == json.loads((tmp_path / "1.1.json").read_text())
    p = loadgen("runs", "show", "nonexistent", "--db", db_url)
    assert p.returncode == 2 and "no run 'nonexistent'" in _one_sentence(p)


def test_default_store_is_loadgen_db_in_the_working_directory(demo_target, tmp_path, monkeypatch):
    monkeypatch.delenv("LOADGEN_DB_URL")
    p = loadgen("run", "--url", demo_target.url + "/health", "--rate", "20", "--run-time", "1s", "-q",
                cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "loadgen.db").exists()
    assert "sqlite:///loadgen.db" in p.stdout
    p = loadgen("runs", "list", "--json", cwd=tmp_path)
    assert len(json.loads(p.stdout)) == 1


def test_db_none_stores_nothing(demo_target, tmp_path, monkeypatch):
    monkeypatch.delenv("LOADGEN_DB_URL")
    p = loadgen("run", "--url", demo_target.url + "/health", "--rate", "20", "--run-time", "1s", "-q",
                "--db", "none", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "loadgen.db").exists() and "stored" not in p.stdout


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "db,expect",
    [
        ("mysql://root:s3cret@127.0.0.1/x", "scheme 'mysql' is not supported"),
        ("not a url", "is not a database URL"),
        ("sqlite://", "names no file"),
        ("postgresql://u:s3cret@127.0.0.1:99999/x", "not a valid PostgreSQL URL"),
        ("sqlite:////nonexistent-dir/deeper/x.db", "does not exist"),
    ],
)
def test_bad_dsn_is_one_sentence(db, expect):
    p = loadgen("runs", "list", "--db", db)
    line = _one_sentence(p)
    assert expect in line
    assert "s3cret" not in p.stderr + p.stdout
    assert p.returncode == (3 if "does not exist" in expect else 2)


def test_bad_dsn_on_run_is_exit_2_before_any_load(tmp_path):
    p = loadgen("run", "--url", "http://127.0.0.1:9/", "--rate", "10", "--run-time", "1s",
                "--db", "mysql://root:s3cret@127.0.0.1/x")
    assert p.returncode == 2 and "not supported" in _one_sentence(p)


def test_unreachable_database_for_browsing_is_exit_3_without_password():
    p = loadgen("runs", "list", "--db", f"postgresql://u:s3cret@127.0.0.1:{_closed_port()}/x")
    assert p.returncode == 3
    line = _one_sentence(p)
    assert "cannot reach the database" in line and "s3cret" not in line and "***" in line


def test_password_is_never_stored(pg_url, demo_target, tmp_path):
    # Trust authentication ignores the password, so the run really reaches the database.
    with_pw = pg_url.replace("://postgres@", "://postgres:t0psecret@")
    assert "t0psecret" in with_pw
    s = tmp_path / "s.json"
    p = loadgen("run", "--url", demo_target.url + "/health", "--rate", "20", "--run-time", "1s", "-q",
                "--db", with_pw, "--summary-json", str(s))
    assert p.returncode == 0, p.stderr
    assert "t0psecret" not in p.stdout + p.stderr + s.read_text()
    run = query(pg_url, "get_run", "latest")
    assert "t0psecret" not in json.dumps(run)


def test_generator_health_failed_iterations_and_stop_reason_are_stored(db_url, tmp_path):
    # Issue 10 (symptoms 6, 13): migration 003 keeps the loop's stalls per interval, the
    # failed iterations by task and why the run stopped.
    rec = Recorder()
    t0 = 1_000_000_000
    rec.start(t0)
    rec.stall_buf.extend([2_000_000, 300_000_000])
    rec.fail_iteration("U.on_start")
    snap = rec.snapshot(t0 + 1_000_000_000)
    snap.stalled, snap.stall_cause = True, "a blocking call in U.read"
    writer = RunWriter(parse_db_url(db_url), _run_row("health"), spool_dir=tmp_path / "spool")
    writer.start()
    writer(snap)
    outcome = writer.finish({"status": "interrupted", "duration_s": 1.0, "requests": 0, "errors": 0,
                             "ended_at": time.time(), "exit_code": 0, "summary": {"stop_reason": "signal"},
                             "stop_reason": "signal"}, [])
    assert outcome.stored
    (st,) = query(db_url, "interval_stats", "health")
    assert st["stalled"] is True and st["stall_cause"] == "a blocking call in U.read"
    assert st["stall_max_ms"] == 300.0 and st["stall_p99_ms"] >= 299.0
    assert st["failed_iterations"] == {"U.on_start": 1}
    assert query(db_url, "get_run", "health")["stop_reason"] == "signal"
