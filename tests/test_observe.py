"""`loadgen run` with live metrics and collectors: what a user wires up on the command line."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from loadgen.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE

QUEUE_SCENARIO = '''
from loadgen import User, task

class Jobs(User):
    @task
    async def enqueue(self):
        await self.client.post("/api/content", json={"type": "medium", "prompt": "x"}, name="enqueue",
                               headers={"Authorization": "Bearer " + self.token})

    async def on_start(self):
        r = await self.client.post("/api/auth/login", json={"username": "u1", "password": "password"})
        self.token = r.json()["access_token"]
'''


def loadgen(*args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=timeout, **kw
    )


def _counter(text: str, family: str) -> float:
    total = 0.0
    for fam in text_string_to_metric_families(text):
        if fam.name == family:
            total += sum(s.value for s in fam.samples if s.name == family + "_total")
    return total


def test_metrics_are_served_during_the_run_and_match_it(demo_target, tmp_path):
    s = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "100",
         "--run-time", "3s", "--metrics-port", "0", "--metrics-grace", "20s", "--summary-json", str(s),
         "--db", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    url = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        m = re.search(r"metrics at (http://\S+/metrics)", line)
        if m:
            url = m.group(1)
    assert url, "the run did not print its metrics address"
    seen = 0.0
    final = None
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            break  # the exporter has stopped
        value = _counter(text, "loadgen_requests")
        assert value >= seen  # a counter only grows
        seen = value
        if "loadgen_run_finished" in text and re.search(r"^loadgen_run_finished\{.*\} 1(\.0)?$", text, re.M):
            final = value
            break
        time.sleep(0.3)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_OK, err
    doc = json.loads(s.read_text())
    assert final == doc["requests"] == 300


def test_metrics_port_in_use_is_exit_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = loadgen("run", "--url", "http://127.0.0.1:9/", "--rate", "1", "--run-time", "1s",
                    "--metrics-port", str(port))
    assert p.returncode == EXIT_USAGE
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"--metrics-port {port} is in use" in lines[0]


def test_bad_monitor_and_queue_specs_are_exit_2():
    for args in (["--monitor", "api=pidd:12"], ["--queue", "q=kafka://x"], ["--monitor", "nolabel"]):
        p = loadgen("run", "--url", "http://127.0.0.1:9/", "--rate", "1", "--run-time", "1s", *args)
        assert p.returncode == EXIT_USAGE, p.stderr
        assert len([ln for ln in p.stderr.splitlines() if ln.strip()]) == 1 and "Traceback" not in p.stderr


def _run_queue(scenario: str, demo: Any, db: str, version: str, *extra: str) -> subprocess.CompletedProcess:
    return loadgen("run", scenario, "--host", demo.url, "--rate", "8", "--run-time", "4s", "--db", db,
                   "--app-version", version, "-q", "--monitor", f"demo=pid:{_pid()}",
                   "--queue", f"content=prometheus:{demo.url}/metrics", *extra)


def _pid() -> int:
    import os

    return os.getpid()  # the demo target runs in this test process's threads


def test_collector_samples_are_stored_and_feed_the_comparison(start_demo, tmp_path):
    """Baseline: jobs are processed as they come. Candidate: one slow worker, so the queue backs up;
    the comparison names the queue_length regression."""
    f = tmp_path / "jobs.py"
    f.write_text(QUEUE_SCENARIO)
    db = f"sqlite:///{tmp_path}/r.db"
    quick = start_demo(workers=4, processing_scale=0.05)
    for _ in range(3):
        p = _run_queue(str(f), quick, db, "1.0")
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
    slow = start_demo(workers=1, processing_scale=5.0)
    s = tmp_path / "slow.json"
    p = _run_queue(str(f), slow, db, "1.1", "--baseline-version", "1.0", "--fail-on-regression",
                   "--summary-json", str(s))
    assert p.returncode == EXIT_FAILED, p.stdout + p.stderr
    doc = json.loads(s.read_text())
    assert doc["queues"]["content"]["length"]["max"] >= 3
    assert doc["resources"]["demo"]["rss_bytes"]["max"] > 10 * 2**20
    assert "generator" in doc["resources"]
    regressed = {(r["metric"], r["subject"]) for r in doc["comparison"]["rows"] if r["verdict"] == "regression"}
    assert ("queue_length", "content") in regressed
    metrics = {r["metric"] for r in doc["comparison"]["rows"]}
    assert {"cpu_usage", "memory_usage"} <= metrics
    # Stored with the run.
    import asyncio

    from loadgen.store import open_store

    async def go() -> tuple[list, list]:
        store = await open_store(db)
        try:
            return await store.resource_samples(doc["run_id"]), await store.queue_samples(doc["run_id"])
        finally:
            await store.close()

    res, que = asyncio.run(go())
    assert {r["service"] for r in res} == {"demo", "generator"}
    assert max(q["length"] for q in que) >= 3
