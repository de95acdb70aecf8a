"""End-to-end runs against the real demo target over loopback (bounded in time and requests)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from loadgen.engine import histogram as hdr
from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.summary import build_summary


def _stats(url: str) -> int:
    with urllib.request.urlopen(url + "/_stats", timeout=10) as r:
        return json.load(r)["requests"]


def _run(url: str, **cfg) -> dict:
    config = RunConfig(**cfg)
    result = Engine(config, adhoc=AdHocRequest(url), handle_signals=False).run()
    return build_summary(result, scenario=None, host=url)


def test_closed_run_counts_exactly_what_the_target_saw(start_demo):
    demo = start_demo()
    before = _stats(demo.url)
    s = _run(demo.url + "/health", model="closed", users=4, spawn_rate=100, run_time_s=1.5)
    assert s["requests"] > 100
    assert _stats(demo.url) - before == s["requests"]
    assert s["errors"] == 0 and s["status_codes"] == {"200": s["requests"]}
    assert s["users_max"] == 4
    lat = s["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]


def test_open_run_holds_its_schedule_exactly(start_demo):
    demo = start_demo()
    before = _stats(demo.url)
    s = _run(demo.url + "/health", model="open", rate=200, run_time_s=2.0)
    # The schedule is exact: 200/s for 2 s is 400 intended arrivals, each one request.
    assert s["iterations"] + s["dropped_iterations"] == 400
    assert s["dropped_iterations"] == 0
    assert s["requests"] == 400 == _stats(demo.url) - before
    assert s["achieved_rate"] == pytest.approx(200, rel=0.05)


def test_stalled_target_shows_in_p99(start_demo):
    # The target freezes 0.5 s every 2 s. Requests that arrive during a freeze wait for
    # its end, so the true p99 is 0.5 - 0.01 * 2 = 0.48 s. A generator with coordinated
    # omission would report a few ms. Only lower bounds: a busy CI box adds latency.
    demo = start_demo(freeze_every_s=2.0, freeze_for_s=0.5)
    s = _run(demo.url + "/health", model="open", rate=100, run_time_s=4.0, max_inflight=500)
    assert s["dropped_iterations"] == 0
    assert s["latency_ms"]["p99"] >= 400
    assert s["latency_ms"]["max"] >= 450
    assert s["latency_ms"]["p50"] < s["latency_ms"]["p99"] / 4


def test_overload_drops_and_counts_instead_of_collapsing(start_demo):
    # 10 slots, 200 ms per request: capacity 50/s against 400/s intended.
    demo = start_demo(latency_ms=200)
    before = _stats(demo.url)
    s = _run(demo.url + "/", model="open", rate=400, run_time_s=2.0, max_inflight=10)
    assert s["iterations"] + s["dropped_iterations"] == 800
    assert s["dropped_iterations"] >= 600
    assert s["requests"] == s["iterations"] == _stats(demo.url) - before
    assert s["requests"] >= 50  # it kept serving at its bound
    assert s["generator"]["saturated"] is True
    assert any("bottleneck" in w for w in s["warnings"])


def test_errors_are_counted_by_kind(start_demo):
    demo = start_demo(error_rate=1.0)
    s = _run(demo.url + "/", model="closed", users=2, spawn_rate=100, run_time_s=0.5)
    assert s["requests"] > 0 and s["errors"] == s["requests"]
    assert s["errors_by_kind"] == {"http_5xx": s["requests"]}


def test_closed_model_reaches_its_user_count(start_demo):
    demo = start_demo()
    s = _run(demo.url + "/health", model="closed", users=40, spawn_rate=200, run_time_s=1.0)
    assert s["users_max"] == 40


def test_stress_reports_the_step_that_broke(start_demo):
    demo = start_demo(latency_ms=120)
    config = RunConfig(model="open", rate=50, run_time_s=10.0, test_type="stress", break_p95_ms=50.0)
    result = Engine(config, adhoc=AdHocRequest(demo.url + "/"), handle_signals=False).run()
    s = build_summary(result, scenario=None, host=demo.url)
    assert s["stress"]["broke_at"]["step"] == 1
    assert "p95" in s["stress"]["broke_at"]["reason"]
    assert s["duration_s"] < 9.0  # it stopped at the broken step


def test_interval_snapshots_merge_to_the_totals(start_demo):
    demo = start_demo()
    snaps = []
    config = RunConfig(model="open", rate=300, run_time_s=2.5)
    result = Engine(
        config, adhoc=AdHocRequest(demo.url + "/health"), sinks=[lambda s, e: snaps.append(s)], handle_signals=False
    ).run()
    assert len(snaps) >= 3
    merged = hdr.new_histogram()
    for s in snaps:
        hdr.merge(merged, s.overall.latency)
    total = result.recorder.totals.overall.latency
    assert merged.total_count == total.total_count == sum(s.overall.requests for s in snaps)
    for p in (50, 90, 99, 99.9):
        assert hdr.percentile_us(merged, p) == hdr.percentile_us(total, p)


def test_stages_and_poisson_arrivals_through_the_engine(start_demo):
    demo = start_demo()
    from loadgen.config import Stage

    # 0 -> 100/s over 1 s (50 arrivals), then 100/s for 1 s (100): exactly 150 intended.
    s = _run(demo.url + "/health", model="open", stages=(Stage(1.0, 100), Stage(1.0, 100)))
    assert s["iterations"] + s["dropped_iterations"] == 150 == s["requests"]
    p = _run(demo.url + "/health", model="open", rate=200, run_time_s=2.0, arrival="poisson", seed=5)
    # 400 expected; Poisson sd 20: five of them either way
    assert abs(p["requests"] - 400) < 100 and p["dropped_iterations"] == 0
    again = _run(demo.url + "/health", model="open", rate=200, run_time_s=2.0, arrival="poisson", seed=5)
    assert again["iterations"] == p["iterations"]  # the seed fixes the schedule


def test_arrivals_in_the_last_millisecond_are_not_cut_off(start_demo):
    demo = start_demo()
    # 2000/s for 1.5 s: the last arrival is due 0.5 ms before the end.
    s = _run(demo.url + "/health", model="open", rate=2000, run_time_s=1.5)
    assert s["iterations"] + s["dropped_iterations"] == 3000
    assert s["requests"] == s["iterations"]
