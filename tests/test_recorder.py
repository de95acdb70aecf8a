"""The recorder's bounds and what flows from it: endpoint names capped and folded, memory
per endpoint, failed iterations, stalls and the rate (issue 10, symptoms 6, 7 and 13)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from loadgen.engine import histogram as hdr
from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine, RunResult
from loadgen.engine.recorder import OTHER_NAME, Recorder
from loadgen.summary import build_summary
from loadgen.judgement.criteria import parse_criteria
from loadgen.judgement.evaluation import evaluate
from loadgen.scaleout.wire import merge_snapshots, snapshot_from_json, snapshot_to_json
from loadgen.engine.workload import shape_of

from hostile import HostileServer, Request, ok_response  # tests/ is on sys.path (rootdir conftest)

pytestmark = pytest.mark.timeout(120)


def _feed(rec: Recorder, name: str, n: int = 1, latency_ns: int = 1_000_000, code: int = 200) -> None:
    t0 = time.perf_counter_ns()
    ep = rec.endpoint("GET", name)
    for _ in range(n):
        ep.buf.extend([t0, t0, t0 + latency_ns // 2, t0 + latency_ns, code, 100, 200])


def _counter_bytes(rec: Recorder) -> int:
    total = 0
    for ei in rec.totals.endpoints.values():
        for h in (ei.latency, ei.service, ei.ttfb):
            if h is not None:
                total += h.counts_len * h.word_size
    return total


def _result(rec: Recorder, *, duration_s: float = 1.0, schedule_s: float = 1.0, **extra) -> RunResult:
    config = RunConfig()
    return RunResult(recorder=rec, config=config, shape=shape_of(config), model=config.model,
                     started_at=time.time(), duration_s=duration_s, schedule_s=schedule_s,
                     interrupted=False, users_max=1, broke_at=None, exceptions={}, warnings=[], **extra)


def test_names_past_the_cap_fold_into_one_row_counted_exactly():
    rec = Recorder(max_names=10)
    for i in range(1000):
        _feed(rec, f"/items/{i}")
    _feed(rec, "/items/3", 5)  # a name with a row of its own keeps it
    snap = rec.snapshot()
    assert len(snap.endpoints) == 11
    assert snap.endpoints[f"GET {OTHER_NAME}"].requests == 990
    assert snap.endpoints["GET /items/3"].requests == 6
    assert rec.totals.overall.requests == 1005
    (w,) = rec.warnings()
    assert "990 distinct request names" in w and "name=" in w and "/api/items/[id]" in w
    doc = build_summary(_result(rec), scenario=None, host=None)
    assert w in doc["warnings"] and len(doc["endpoints"]) == 11 and doc["requests"] == 1005


def test_memory_per_endpoint_is_a_fraction_of_the_full_range():
    # Before issue 10 every endpoint kept three full-range histograms: 3 x 224 KiB of counters.
    rec = Recorder(max_names=10_000)
    for i in range(300):
        _feed(rec, f"/items/{i}", latency_ns=5_000_000)
    rec.snapshot()
    full = hdr.full_histogram()
    per_endpoint = _counter_bytes(rec) / 300
    assert per_endpoint * 5 < 3 * full.counts_len * full.word_size  # 88 KiB against 672 KiB
    # The figures are unchanged: a 5 ms latency reads 5 ms.
    assert rec.totals.endpoints["GET /items/7"].latency.max_value == 5000


def test_unique_paths_without_name_are_bounded_and_all_counted(start_demo):
    # A unique path per request without name= (symptom 7), against a fast local target.
    demo = start_demo()
    with urllib.request.urlopen(demo.url + "/_stats", timeout=10) as r:
        before = json.load(r)["requests"]
    scenario = Path(__file__).parent / "_unique_paths_scenario.py"
    from loadgen.scenario import load_scenario

    sc = load_scenario(scenario)
    config = RunConfig(model="closed", users=8, spawn_rate=1000, run_time_s=3.0, host=demo.url)
    result = Engine(config, scenario=sc, handle_signals=False).run()
    with urllib.request.urlopen(demo.url + "/_stats", timeout=10) as r:
        seen = json.load(r)["requests"] - before
    doc = build_summary(result, scenario=str(scenario), host=demo.url)
    cap = result.recorder.max_names
    assert doc["requests"] == seen > cap + 100
    assert len(doc["endpoints"]) <= cap + 1
    assert doc["endpoints"][f"GET {OTHER_NAME}"]["requests"] == seen - cap
    assert any(f"{seen - cap:,} distinct request names" in w and "name=" in w for w in doc["warnings"])
    assert _counter_bytes(result.recorder) / len(doc["endpoints"]) < 100 * 1024


def test_failed_iterations_are_in_the_summary_and_gate_able():
    rec = Recorder()
    _feed(rec, "/login", 5, code=500)
    for _ in range(5):
        rec.fail_iteration("ContentUser.on_start")  # every login failed
    rec.snapshot()
    doc = build_summary(_result(rec), scenario=None, host=None)
    assert doc["failed_iterations"] == {"total": 5, "by_task": {"ContentUser.on_start": 5}}
    res = evaluate(parse_criteria([
        "failed_iterations==0", "failed_iterations<5", "iteration_failure_rate<1%",
        "ContentUser.on_start: failed_iterations==0", "ContentUser.read: failed_iterations==0",
    ]), rec, 1.0, final=True)
    assert [r.passed for r in res] == [False, False, False, False, True]
    assert res[0].actual == 5 and res[2].actual == 1.0


def test_stalls_failed_iterations_and_stop_reason_cross_processes_and_reach_the_summary():
    a, b = Recorder(), Recorder()
    a.stall_buf.extend([300_000_000])
    b.stall_buf.extend([2_000_000])
    a.fail_iteration("U.t")
    b.fail_iteration("U.t")
    sa, sb = a.snapshot(), b.snapshot()
    sa.stalled, sa.stall_cause = True, "a blocking call in U.t"
    back = [snapshot_from_json(json.loads(json.dumps(snapshot_to_json(s)))) for s in (sa, sb)]
    merged = merge_snapshots(back, target_rate=None)
    assert merged.stalled and merged.stall_cause == "a blocking call in U.t"
    assert merged.failed_iterations == {"U.t": 2} and merged.stall.total_count == 2
    rec = Recorder()
    rec.totals.add(merged)
    rec.totals.stalled_intervals += 1
    extra = {"stop_reason": "signal"} if "stop_reason" in RunResult.__dataclass_fields__ else {}
    doc = build_summary(_result(rec, **extra), scenario=None, host=None)
    g = doc["generator"]
    assert g["stalled_intervals"] == 1 and g["stall_ms"]["max"] == 300.0
    assert doc["failed_iterations"]["total"] == 2
    assert doc["stop_reason"] == extra.get("stop_reason")


def _stall_first(state: dict) -> object:
    lock = threading.Lock()

    def behaviour(conn: socket.socket, req: Request) -> bool:
        with lock:
            first = not state.get("stalled")
            state["stalled"] = True
        if first:
            conn.settimeout(30)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass
            return False
        conn.sendall(ok_response())
        return True

    return behaviour


def test_rps_divides_by_the_time_the_load_was_applied():
    # Symptom 13: the graceful stop waits on one stalled request; the rate must not include it.
    with HostileServer({"/first-stalls": _stall_first({})}) as srv:
        config = RunConfig(model="open", rate=50, run_time_s=2.0, graceful_stop_s=3.0, max_inflight=50)
        result = Engine(config, adhoc=AdHocRequest(srv.url + "/first-stalls"), handle_signals=False).run()
        doc = build_summary(result, scenario=None, host=srv.url)
    assert result.duration_s > 4.0  # the stop waited
    assert doc["requests"] == 100
    assert 40 <= doc["rps"] <= 60, doc["rps"]
    assert doc["load_s"] == pytest.approx(2.0, abs=0.5)
