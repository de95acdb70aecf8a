"""--workers N: processes on one host, split exactly and merged exactly, against the real demo target."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import psutil
import pytest

from loadgen.engine import histogram as hdr
from loadgen.config import RunConfig, Stage
from loadgen.scaleout.coordinator import Coordinator, resolve_workers
from loadgen.engine.engine import AdHocRequest
from loadgen.summary import build_summary
from loadgen.engine.workload import arrival_times


def _stats(url: str) -> int:
    with urllib.request.urlopen(url + "/_stats", timeout=10) as r:
        return json.load(r)["requests"]


def test_workers_split_the_poisson_schedule_exactly_and_merge_exactly(demo_target):
    stages = (Stage(1.0, 100.0), Stage(1.5, 300.0))
    config = RunConfig(model="open", stages=stages, arrival="poisson", seed=42, run_time_s=2.5)
    expected = len(list(arrival_times(stages, poisson=True, seed=42)))
    seen: list[Any] = []
    before = _stats(demo_target.url)
    coord = Coordinator(config, workers=2, adhoc=AdHocRequest(demo_target.url + "/health"),
                        sinks=[lambda snap, eng: seen.append(snap)], handle_signals=False)
    result = coord.run()
    doc = build_summary(result, scenario=None, host=demo_target.url)
    # The two shares add up to the single-process schedule, arrival for arrival.
    assert doc["iterations"] + doc["dropped_iterations"] == expected
    assert doc["requests"] == _stats(demo_target.url) - before == doc["iterations"]
    # The run's percentiles are those of merging the intervals' histograms by hand.
    by_hand = hdr.new_histogram()
    for snap in seen:
        hdr.merge(by_hand, snap.overall.latency)
    assert by_hand.total_count == doc["requests"]
    assert hdr.summarize_ms(by_hand) == doc["latency_ms"]
    assert sum(s.iterations for s in seen) == doc["iterations"]
    assert doc["service_time_ms"]["p50"] > 0 and doc["ttfb_ms"]["p50"] > 0


def test_closed_model_users_split_exactly(demo_target):
    config = RunConfig(model="closed", users=5, spawn_rate=100, run_time_s=1.5)
    before = _stats(demo_target.url)
    result = Coordinator(config, workers=2, adhoc=AdHocRequest(demo_target.url + "/health"),
                         handle_signals=False).run()
    doc = build_summary(result, scenario=None, host=demo_target.url)
    assert doc["users_max"] == 5
    assert doc["requests"] == _stats(demo_target.url) - before > 50


def test_cli_workers_count_what_the_target_saw_and_store_one_run(demo_target, tmp_path):
    db = f"sqlite:///{tmp_path}/r.db"
    s = tmp_path / "s.json"
    before = _stats(demo_target.url)
    p = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", "scenarios/api.py", "--host", demo_target.url, "--rate", "60",
         "--run-time", "2s", "--workers", "2", "--db", db, "--summary-json", str(s), "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "Fatal" not in p.stderr
    doc = json.loads(s.read_text())
    assert doc["iterations"] + doc["dropped_iterations"] == 120
    assert doc["requests"] == _stats(demo_target.url) - before
    out = subprocess.run([sys.executable, "-m", "loadgen", "runs", "list", "--json", "--db", db],
                         capture_output=True, text=True, timeout=60)
    runs = json.loads(out.stdout)
    assert len(runs) == 1 and runs[0]["requests"] == doc["requests"]


def test_a_killed_worker_is_reported_and_the_rest_of_the_run_is_kept(demo_target, tmp_path):
    s = tmp_path / "s.json"
    before = _stats(demo_target.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "100",
         "--run-time", "6s", "--workers", "2", "--db", "none", "--summary-json", str(s), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    me = psutil.Process(proc.pid)
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        workers = [c for c in me.children() if "loadgen.scaleout.worker" in " ".join(c.cmdline())]
        if len(workers) == 2 and _stats(demo_target.url) - before > 100:
            victim = workers[1]
        time.sleep(0.1)
    assert victim is not None, "the workers never got going"
    victim.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    doc = json.loads(s.read_text())
    died = [w for w in doc["warnings"] if "died" in w]
    assert len(died) == 1 and "of 2 (1/2 of the load)" in died[0] and "went on" in died[0]
    # The survivor ran its whole share (300 of 600 arrivals), and all it measured is in.
    assert doc["iterations"] >= 300
    assert doc["requests"] <= _stats(demo_target.url) - before


def test_on_worker_failure_stop(demo_target, tmp_path):
    s = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "50",
         "--run-time", "30s", "--workers", "2", "--on-worker-failure", "stop", "--db", "none",
         "--summary-json", str(s), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    me = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    victim = None
    while victim is None and time.monotonic() < deadline:
        workers = [c for c in me.children() if "loadgen.scaleout.worker" in " ".join(c.cmdline())]
        if len(workers) == 2:
            time.sleep(1.5)
            victim = workers[0]
        time.sleep(0.1)
    assert victim is not None
    victim.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    doc = json.loads(s.read_text())
    assert doc["duration_s"] < 25 and any("stopped" in w for w in doc["warnings"])


@pytest.mark.parametrize("value,expect", [("auto", None), ("3", 3), ("1", 1)])
def test_resolve_workers(value, expect):
    n = resolve_workers(value)
    assert n == expect if expect else n >= 1


def test_bad_workers_is_exit_2():
    p = subprocess.run([sys.executable, "-m", "loadgen", "run", "--url", "http://127.0.0.1:9/", "--rate", "1",
                        "--workers", "zero"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--workers" in p.stderr


def test_a_warning_several_parts_gave_says_how_many_did():
    # Each part counts its own users: two workers each cancelling one user must not read as one.
    from loadgen.scaleout.wire import part_warnings

    busy = "1 user(s) were still busy after the graceful stop of 1s and were cancelled"
    parts = [{"warnings": [busy, "only mine"]}, {"warnings": [busy]}]
    assert part_warnings(parts, "workers") == [f"{busy} (in each of 2 workers)", "only mine"]


def test_a_workers_usage_error_comes_back_as_a_usage_error():
    # The request is checked where it is built, in each worker: the error keeps its class (exit 2).
    from loadgen.errors import EXIT_USAGE, UsageError

    config = RunConfig(model="open", rate=10, run_time_s=1)
    coord = Coordinator(config, workers=2, adhoc=AdHocRequest("http://127.0.0.1:9/", method="GE T"),
                        handle_signals=False)
    with pytest.raises(UsageError, match="the --url request cannot be sent") as info:
        coord.run()
    assert type(info.value) is UsageError and info.value.exit_code == EXIT_USAGE


def test_abort_on_fail_with_workers_names_itself(demo_target, tmp_path):
    # Found by review: the workers stopped by the coordinator said "signal", which won.
    s = tmp_path / "s.json"
    p = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "40",
         "--run-time", "30s", "--workers", "2", "--threshold", "requests<20", "--abort-on-fail",
         "--db", "none", "--summary-json", str(s), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
    )
    doc = json.loads(s.read_text())
    assert p.returncode == 1, p.stderr
    assert doc["status"] == "aborted" and doc["stop_reason"].startswith("abort-on-fail: threshold requests<20")
