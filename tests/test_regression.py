"""The regression gate end to end: baseline runs, candidates, thresholds and exit codes,
against the real demo target over loopback and a real results store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadgen.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE

SCENARIO = '''
from loadgen import User, task

class Home(User):
    @task
    async def home(self):
        await self.client.get("/", name="home")
'''


def loadgen(*args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=timeout, **kw
    )


def _one_sentence(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def scenario(tmp_path: Path) -> str:
    f = tmp_path / "home.py"
    f.write_text(SCENARIO)
    return str(f)


def _run(scenario: str, host: str, db: str, version: str, *extra: str) -> subprocess.CompletedProcess:
    # Open model at a fixed rate: throughput is the schedule, latency is the target's.
    return loadgen("run", scenario, "--host", host, "--rate", "50", "--run-time", "3s", "--db", db,
                   "--app-version", version, "-q", *extra)


def test_slower_candidate_fails_the_gate_and_an_equal_one_passes(start_demo, scenario, db_url, tmp_path):
    # A shared CI machine stalls now and then: with a 100 ms service time and 50 % allowed,
    # a false alarm would take a stall of the target or generator of ~50 ms over 8 of the
    # 150 requests of a run, while the 3x slower version is far beyond it.
    fast = start_demo(latency_ms=100)
    slow = start_demo(latency_ms=300)
    th = tmp_path / "thresholds.json"
    th.write_text('{"response_time": 0.5, "error_rate": 0.01}')
    for _ in range(3):
        p = _run(scenario, fast.url, db_url, "1.0")
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
    # Equal candidates, several times: no false alarm.
    for i in range(3):
        s = tmp_path / f"equal{i}.json"
        p = _run(scenario, fast.url, db_url, "1.1", "--baseline-version", "1.0", "--fail-on-regression",
                 "--thresholds-file", str(th), "--summary-json", str(s))
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        assert "PASS" in p.stdout
        doc = json.loads(s.read_text())
        assert doc["comparison"]["verdict"] == "pass" and doc["exit_code"] == 0
    # A slower candidate: exit 1, the regression named.
    s = tmp_path / "slow.json"
    p = _run(scenario, slow.url, db_url, "1.2", "--baseline-version", "1.0", "--fail-on-regression",
             "--thresholds-file", str(th), "--summary-json", str(s))
    assert p.returncode == EXIT_FAILED, p.stdout + p.stderr
    assert "REGRESSION" in p.stdout and "GET home" in p.stdout
    doc = json.loads(s.read_text())
    assert doc["comparison"]["verdict"] == "regression" and doc["exit_code"] == EXIT_FAILED
    regressed = {(r["metric"], r["subject"]) for r in doc["comparison"]["rows"] if r["verdict"] == "regression"}
    assert ("response_time", "GET home") in regressed
    # Without --fail-on-regression the regression is reported, not gated.
    p = _run(scenario, slow.url, db_url, "1.3", "--baseline-version", "1.0")
    assert p.returncode == EXIT_OK and "REGRESSION" in p.stdout
    # The same judgement from `loadgen compare`, stored, and as JSON.
    p = loadgen("compare", "--baseline-version", "1.0", "--candidate-version", "1.2", "--db", db_url, "--json")
    assert p.returncode == EXIT_FAILED, p.stderr
    out = json.loads(p.stdout)
    assert out["verdict"] == "regression" and len(out["baseline"]["run_ids"]) == 3
    p = loadgen("compare", "--baseline-version", "1.0", "--candidate-version", "1.1", "--db", db_url,
                "--thresholds", str(th))
    assert p.returncode == EXIT_OK, p.stdout + p.stderr
    assert "metric" in p.stdout and "verdict" in p.stdout  # the table
    # Fewer baseline runs on request; one run says it has no noise estimate.
    p = loadgen("compare", "--baseline-version", "1.0", "--candidate-version", "1.2", "--baseline-runs", "1",
                "--db", db_url, "--json")
    out = json.loads(p.stdout)
    assert len(out["baseline"]["run_ids"]) == 1 and out["noise_estimate"] is False


def test_comparison_is_stored(start_demo, scenario, tmp_path):
    import asyncio

    from loadgen.store import open_store

    db = f"sqlite:///{tmp_path}/r.db"
    demo = start_demo()
    assert _run(scenario, demo.url, db, "1.0").returncode == 0
    s = tmp_path / "c.json"
    # What is under test is that the comparison is stored with the run, not the verdict on two
    # equal runs: wide tolerances keep a busy shared machine (one baseline run, no noise
    # estimate) from turning it into a "regression".
    wide = tmp_path / "wide.json"
    wide.write_text('{"response_time": 3.0, "throughput": 0.9, "error_rate": 0.05}')
    p = _run(scenario, demo.url, db, "2.0", "--baseline-version", "1.0", "--thresholds-file", str(wide),
             "--summary-json", str(s))
    assert p.returncode == 0, p.stderr
    run_id = json.loads(s.read_text())["run_id"]

    async def go() -> tuple[list, list]:
        store = await open_store(db)
        try:
            heads = await store.comparisons(run_id)
            return heads, await store.comparison_rows(heads[0]["id"])
        finally:
            await store.close()

    heads, rows = asyncio.run(go())
    assert len(heads) == 1 and heads[0]["baseline_version"] == "1.0" and heads[0]["verdict"] == "pass"
    assert {r["metric"] for r in rows} >= {"response_time", "error_rate", "throughput"}


def test_no_baseline_runs_is_a_usage_error(start_demo, scenario, tmp_path):
    db = f"sqlite:///{tmp_path}/r.db"
    demo = start_demo()
    p = _run(scenario, demo.url, db, "2.0", "--baseline-version", "0.9", "--fail-on-regression")
    assert p.returncode == EXIT_USAGE
    assert "no completed runs of version '0.9'" in _one_sentence(p)


# --- in-run thresholds ---------------------------------------------------------------


def test_thresholds_decide_the_exit_code(start_demo, scenario, tmp_path):
    demo = start_demo(latency_ms=20)
    s = tmp_path / "s.json"
    p = loadgen("run", scenario, "--host", demo.url, "--rate", "50", "--run-time", "1s", "-q",
                "--threshold", "p95<1ms", "--threshold", "error_rate<1%", "--summary-json", str(s))
    assert p.returncode == EXIT_FAILED, p.stdout + p.stderr
    doc = json.loads(s.read_text())
    by_expr = {t["expr"]: t for t in doc["thresholds"]}
    assert by_expr["p95<1ms"]["passed"] is False and by_expr["p95<1ms"]["actual"] == doc["latency_ms"]["p95"]
    assert by_expr["error_rate<1%"]["passed"] is True
    p = loadgen("run", scenario, "--host", demo.url, "--rate", "50", "--run-time", "1s", "-q",
                "--threshold", "p95<10s", "--threshold", "GET home: p99<10s", "--threshold", "dropped_iterations==0")
    assert p.returncode == EXIT_OK, p.stdout + p.stderr


def test_thresholds_from_the_scenario_file(start_demo, tmp_path):
    demo = start_demo(latency_ms=20)
    f = tmp_path / "strict.py"
    f.write_text(SCENARIO + '\noptions = {"thresholds": ["p50<1ms"]}\n')
    p = loadgen("run", str(f), "--host", demo.url, "--rate", "20", "--run-time", "1s", "-q")
    assert p.returncode == EXIT_FAILED and "p50<1ms" in p.stdout


def test_abort_on_fail_stops_early_and_is_stored_as_aborted(start_demo, scenario, tmp_path):
    demo = start_demo(latency_ms=50)
    db = f"sqlite:///{tmp_path}/r.db"
    s = tmp_path / "s.json"
    p = loadgen("run", scenario, "--host", demo.url, "--rate", "20", "--run-time", "60s", "-q", "--db", db,
                "--threshold", "p95<1ms", "--abort-on-fail", "--summary-json", str(s))
    assert p.returncode == EXIT_FAILED, p.stdout + p.stderr
    doc = json.loads(s.read_text())
    assert doc["duration_s"] < 30 and doc["status"] == "aborted"
    p = loadgen("runs", "list", "--json", "--db", db)
    assert json.loads(p.stdout)[0]["status"] == "aborted"


@pytest.mark.parametrize(
    "expr,expect",
    [("p95<<3ms", "p95<<3ms"), ("latency<3ms", "latency<3ms"), ("error_rate<5ms", "error_rate<5ms")],
)
def test_bad_threshold_is_exit_2(expr, expect, scenario):
    p = loadgen("run", scenario, "--host", "http://127.0.0.1:9", "--rate", "1", "--run-time", "1s",
                "--threshold", expr)
    assert p.returncode == EXIT_USAGE and expect in _one_sentence(p)


@pytest.mark.parametrize(
    "text,expect",
    [
        ('{"response_time": 0.2,}', "line 1"),
        ('{"response_tme": 0.2}', "unknown"),
        ('{"error_rate": "high"}', "error_rate"),
        ("// only a comment\n", "thresholds file"),
    ],
)
def test_broken_thresholds_file_is_exit_2(text, expect, tmp_path, scenario):
    f = tmp_path / "thresholds.json"
    f.write_text(text)
    p = loadgen("compare", "--baseline-version", "1.0", "--thresholds", str(f))
    assert p.returncode == EXIT_USAGE
    line = _one_sentence(p)
    assert str(f) in line and expect in line
    p = loadgen("run", scenario, "--host", "http://127.0.0.1:9", "--rate", "1", "--run-time", "1s",
                "--thresholds-file", str(f))
    assert p.returncode == EXIT_USAGE and str(f) in _one_sentence(p)


def test_thresholds_file_in_the_old_suites_format_is_accepted(start_demo, scenario, tmp_path):
    f = tmp_path / "thresholds.json"
    f.write_text(
        '{\n  // relative increase allowed\n  "response_time": 0.5,\n  "error_rate": 0.01, // absolute\n'
        '  "cpu_usage": 0.15, "memory_usage": 0.15, "queue_length": 0.25\n}\n'
    )
    demo = start_demo()
    db = f"sqlite:///{tmp_path}/r.db"
    assert _run(scenario, demo.url, db, "1.0").returncode == 0
    p = loadgen("compare", "--baseline-version", "1.0", "--candidate", "latest", "--thresholds", str(f),
                "--db", db, "--json")
    # The candidate "latest" is the baseline's own run, which is never its own baseline.
    assert p.returncode == EXIT_USAGE and "no completed runs" in _one_sentence(p)
    assert _run(scenario, demo.url, db, "1.1").returncode == 0
    p = loadgen("compare", "--baseline-version", "1.0", "--thresholds", str(f), "--db", db, "--json")
    assert p.returncode == EXIT_OK, p.stderr
    assert json.loads(p.stdout)["thresholds"]["response_time"] == 0.5
