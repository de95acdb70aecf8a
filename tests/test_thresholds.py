"""Thresholds (in-run criteria, :mod:`loadgen.judgement.criteria`): parsing every form and every mistake,
judging real recorder totals, aborting a real run."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.console import Console

from loadgen.engine import histogram as hdr
from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.errors import UsageError
from loadgen.engine.recorder import Recorder
from loadgen.summary import build_summary
from loadgen.judgement.abort_on_fail import AbortOnFail
from loadgen.judgement.criteria import Criterion, parse_criteria, parse_criterion
from loadgen.judgement.evaluation import CriterionResult, evaluate, results_to_json
from loadgen.judgement.render import render_criteria

# -- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "endpoint", "metric", "op", "value"),
    [
        ("p95<300ms", None, "p95", "<", 300.0),
        ("p99<=1s", None, "p99", "<=", 1000.0),
        ("p99.9<2s", None, "p99.9", "<", 2000.0),
        ("p(97.5)<400ms", None, "p97.5", "<", 400.0),
        ("p( 99.99 )<5", None, "p99.99", "<", 5.0),
        ("p999<2s", None, "p99.9", "<", 2000.0),  # the summary document's key for p99.9
        ("p50<20", None, "p50", "<", 20.0),  # a bare number is milliseconds, as in k6
        ("med<=20ms", None, "p50", "<=", 20.0),
        ("avg<200ms", None, "mean", "<", 200.0),
        ("mean<1.1s", None, "mean", "<", 1100.0),  # exact: Decimal, not 1100.0000000000002
        ("min>=250us", None, "min", ">=", 0.25),
        ("max<800µs", None, "max", "<", 0.8),
        ("max<800\u03bcs", None, "max", "<", 0.8),  # Greek mu as well as the micro sign
        ("P95<1s", None, "p95", "<", 1000.0),
        ("AVG<3", None, "mean", "<", 3.0),
        ("error_rate<1%", None, "error_rate", "<", 0.01),
        ("error_rate<0.01", None, "error_rate", "<", 0.01),
        ("error_rate <= 0.5 %", None, "error_rate", "<=", 0.005),
        ("errors<10", None, "errors", "<", 10.0),
        ("requests>1000", None, "requests", ">", 1000.0),
        ("requests>1e3", None, "requests", ">", 1000.0),
        ("rps>=50", None, "rps", ">=", 50.0),
        ("rps>=50/s", None, "rps", ">=", 50.0),
        ("rps>=12.5", None, "rps", ">=", 12.5),
        ("dropped_iterations==0", None, "dropped_iterations", "==", 0.0),
        ("iterations!=3", None, "iterations", "!=", 3.0),
        ("checks>99%", None, "checks", ">", 0.99),
        ("checks>0.999", None, "checks", ">", 0.999),
        ("  p95  <  300 ms  ", None, "p95", "<", 300.0),
        ("GET /api/content: p95<300ms", "GET /api/content", "p95", "<", 300.0),
        ("/api/content:p95<300ms", "/api/content", "p95", "<", 300.0),
        ("GET /api/content : error_rate<1%", "GET /api/content", "error_rate", "<", 0.01),
        ("POST /login: checks>=99.5%", "POST /login", "checks", ">=", 0.995),
        ("GET /x: rps>10", "GET /x", "rps", ">", 10.0),
        ("GET /x: requests>=10", "GET /x", "requests", ">=", 10.0),
        ("GET /x: errors==0", "GET /x", "errors", "==", 0.0),
        # Split at the last colon: names may hold colons.
        ("GET http://host:8080/a:b: p99<1s", "GET http://host:8080/a:b", "p99", "<", 1000.0),
        ("GET /a<b>: p95<1s", "GET /a<b>", "p95", "<", 1000.0),
    ],
)
def test_parse_every_form(text, endpoint, metric, op, value):
    t = parse_criterion(text)
    assert isinstance(t, Criterion)
    assert t.expr == text.strip()
    assert (t.endpoint, t.metric, t.op, t.value) == (endpoint, metric, op, value)


def test_parse_percentile_and_kind():
    assert parse_criterion("p(97.5)<1").percentile == 97.5
    assert parse_criterion("med<1").percentile == 50.0
    assert parse_criterion("avg<1").percentile is None
    kinds = {e: parse_criterion(e).kind for e in ("p95<1", "max<1", "error_rate<1%", "checks>1%", "errors<1", "rps>1")}
    assert kinds == {
        "p95<1": "latency",
        "max<1": "latency",
        "error_rate<1%": "rate",
        "checks>1%": "rate",
        "errors<1": "count",
        "rps>1": "rps",
    }


def _one_sentence(msg: str) -> bool:
    return "\n" not in msg and len(re.split(r"(?<=[.!?])\s+", msg.strip())) == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("p95 300ms", "no comparison operator"),
        ("p95=300ms", "'=='"),
        ("p95 =< 300ms", "malformed comparison operator"),
        ("p95<", "no value"),
        ("<300ms", "names no metric"),
        ("latency<300ms", "unknown metric 'latency'"),
        ("perc<300ms", "unknown metric 'perc'"),
        ("p101<1s", "outside 0 to 100"),
        ("p9999<1s", "outside 0 to 100"),
        ("p(abc)<1s", "not a number"),
        ("p95<abc", "does not start with a number"),
        ("p95<-5ms", "negative"),
        ("p95<1e999", "too large"),
        ("p95<5%", "percentage for the latency"),
        ("avg<3m", "unknown time unit 'm'"),
        ("max<3 MS", "unknown time unit 'MS'"),
        ("error_rate<5", "above 1"),
        ("error_rate<150%", "above 100%"),
        ("error_rate<1ms", "unit 'ms'"),
        ("checks>2", "above 1"),
        ("errors<1%", "percentage for the count errors"),
        ("requests>10ms", "unit 'ms'"),
        ("errors<2.5", "not a whole number"),
        ("rps>5ms", "unit 'ms'"),
        ("GET /x: iterations>10", "run as a whole"),
        ("/x: dropped_iterations==0", "run as a whole"),
        (": p95<1s", "no endpoint"),
        ("GET /x:", "no condition"),
        ("GET /x:   ", "no condition"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_parse_errors_are_one_clear_sentence(text, fragment):
    with pytest.raises(UsageError) as info:
        parse_criterion(text)
    msg = str(info.value)
    assert fragment in msg
    assert _one_sentence(msg), msg
    if text.strip():
        assert repr(text.strip()) in msg  # it names the expression


def test_parse_thresholds_takes_a_list_of_strings_only():
    ts = parse_criteria(["p95<300ms", "error_rate<1%"])
    assert [t.metric for t in ts] == ["p95", "error_rate"]
    assert parse_criteria(("rps>1",))[0].metric == "rps"
    assert parse_criteria([]) == ()
    for bad in ("p95<300ms", b"p95<1", {"p95": "<300ms"}, None, 5, [1], ["p95<1", None]):
        with pytest.raises(UsageError) as info:
            parse_criteria(bad)  # type: ignore[arg-type]
        assert "list of strings" in str(info.value) and _one_sentence(str(info.value))
    with pytest.raises(UsageError, match="'bogus<1'"):
        parse_criteria(["p95<1", "bogus<1"])
    with pytest.raises(UsageError):
        parse_criterion(95)  # type: ignore[arg-type]


# -- evaluation against a real recorder --------------------------------------------------


def _feed(rec: Recorder, method: str, name: str, latencies_us, codes=200) -> None:
    """Append request rows as the HTTP client does: intended start 0, done at the latency."""
    ep = rec.endpoint(method, name)
    lat = np.asarray(latencies_us, dtype=np.int64)
    code = np.broadcast_to(np.asarray(codes, dtype=np.int64), lat.shape)
    for us, c in zip(lat.tolist(), code.tolist()):
        ep.buf.extend((0, 0, us * 500, us * 1000, c, 100, 1000))


def _latencies(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.lognormal(np.log(20_000), 0.8, n).astype(np.int64), 1)


@pytest.fixture
def recorder() -> Recorder:
    """Two endpoints sharing a name, a third one, over two intervals (so totals are merges)."""
    rec = Recorder()
    _feed(rec, "GET", "/api/content", _latencies(3000, 1))
    _feed(rec, "POST", "/api/content", _latencies(500, 2) * 3)
    rec.snapshot()
    _feed(rec, "GET", "/api/content", _latencies(2000, 3))
    _feed(rec, "GET", "/health", [1_000] * 99 + [2_000_000])
    rec.snapshot()
    return rec


def _by_expr(results: list[CriterionResult]) -> dict[str, CriterionResult]:
    return {r.criterion.expr: r for r in results}


def test_latency_actuals_are_the_summary_figures(recorder):
    exprs = {
        "p50<1s": "p50",
        "med<1s": "p50",
        "p90<1s": "p90",
        "p95<1s": "p95",
        "p99<1s": "p99",
        "p99.9<1s": "p999",
        "p999<1s": "p999",
        "max<1s": "max",
        "min<1s": "min",
        "avg<1s": "mean",
        "mean<1s": "mean",
    }
    overall = hdr.summarize_ms(recorder.totals.overall.latency)
    get = hdr.summarize_ms(recorder.totals.endpoints["GET /api/content"].latency)
    scoped = {f"GET /api/content: {e}": k for e, k in exprs.items()}
    res = _by_expr(evaluate(parse_criteria([*exprs, *scoped]), recorder, 10.0, final=True))
    for e, key in exprs.items():
        assert res[e].actual == overall[key], e
    for e, key in scoped.items():
        assert res[e].actual == get[key], e
    assert overall["p95"] != get["p95"]  # the scope made a difference
    r = res["p95<1s"]
    assert r.detail == f"p95 = {overall['p95']:,.3f}".rstrip("0").rstrip(".") + " ms"
    assert r.passed is (overall["p95"] < 1000.0)


def test_other_percentiles_are_clamped_like_the_summary(recorder):
    hist = recorder.totals.overall.latency
    res = evaluate(parse_criteria(["p(97.5)<1s", "p(99.99)<1s", "p100<1s", "p0>0"]), recorder, 1.0, final=True)
    lo, hi = hist.min_value, hist.max_value
    for r, p in zip(res, (97.5, 99.99, 100.0, 0.0)):
        assert r.actual == min(max(hdr.percentile_us(hist, p), lo), hi) / 1000.0
    assert res[2].actual == hdr.summarize_ms(hist)["max"]  # p100 is the recorded max, not a bucket top
    assert res[3].actual == hdr.summarize_ms(hist)["min"]


def test_a_name_alone_merges_every_method(recorder):
    merged = hdr.new_histogram()
    for key in ("GET /api/content", "POST /api/content"):
        hdr.merge(merged, recorder.totals.endpoints[key].latency)
    res = evaluate(
        parse_criteria(["/api/content: p95<1s", "/api/content: requests==5500", "POST /api/content: requests==500"]),
        recorder,
        5.0,
        final=True,
    )
    assert res[0].actual == hdr.summarize_ms(merged)["p95"]
    assert res[1].passed and res[1].actual == 5500
    assert res[2].passed and res[2].actual == 500


def test_scope_with_loose_spacing_and_colons_in_names():
    rec = Recorder()
    _feed(rec, "GET", "/a:b", [1000, 2000, 3000])
    _feed(rec, "GET", "urn:x:y", [1000])
    rec.snapshot()
    res = evaluate(
        parse_criteria(["GET   /a:b: requests==3", "GET /a:b: max==3ms", "urn:x:y: requests==1", "GET urn:x:y: p50==1"]),
        rec,
        1.0,
        final=True,
    )
    assert [r.passed for r in res] == [True, True, True, True], [r.detail for r in res]


def test_operators_compare_exactly():
    rec = Recorder()
    _feed(rec, "GET", "/", [250_000] * 10)  # every request exactly 250 ms
    rec.snapshot()
    cases = {
        "p95<250ms": False,
        "p95<=250ms": True,
        "p95==0.25s": True,
        "p95!=250000us": False,
        "p95>249.999": True,
        "p95>=250.001ms": False,
        "avg==250": True,
    }
    res = _by_expr(evaluate(parse_criteria(list(cases)), rec, 1.0, final=True))
    assert {e: r.passed for e, r in res.items()} == cases


def test_error_rate_errors_and_requests():
    rec = Recorder()
    # 200, an expected 404 (recorded as 1404: not an error), 404, 500, a connect error, a timeout.
    _feed(rec, "GET", "/a", [1000] * 6, codes=[200, 1404, 404, 500, -1, -2])
    _feed(rec, "GET", "/b", [1000] * 4)
    rec.endpoint("GET", "/b").record_check("body", False, count_error=True)  # a failed check is an error too
    rec.snapshot()
    res = _by_expr(
        evaluate(
            parse_criteria(
                ["error_rate<50%", "errors==5", "requests==10", "GET /a: error_rate>66%", "GET /b: errors<=1", "GET /b: error_rate<25%"]
            ),
            rec,
            2.0,
            final=True,
        )
    )
    tot = rec.totals.overall
    assert res["error_rate<50%"].actual == tot.errors / tot.requests == 0.5
    assert res["error_rate<50%"].passed is False
    assert res["error_rate<50%"].detail == "error_rate = 50.00% (5 of 10)"
    assert res["errors==5"].passed and res["errors==5"].detail == "errors = 5"
    assert res["requests==10"].passed
    assert res["GET /a: error_rate>66%"].passed and res["GET /a: error_rate>66%"].actual == 4 / 6
    assert res["GET /b: errors<=1"].passed
    assert res["GET /b: error_rate<25%"].actual == 0.25 and not res["GET /b: error_rate<25%"].passed


def test_checks_rate_rps_and_iterations():
    rec = Recorder()
    _feed(rec, "GET", "/a", [1000] * 100)
    _feed(rec, "GET", "/b", [1000] * 100)
    a, b = rec.endpoint("GET", "/a"), rec.endpoint("GET", "/b")
    for i in range(100):
        a.record_check("status", i != 0, count_error=i == 0)  # 99 of 100
        b.record_check("status", True, count_error=False)
    rec.iterations, rec.dropped = 180, 20
    rec.snapshot()
    res = _by_expr(
        evaluate(
            parse_criteria(
                [
                    "checks>99%",
                    "GET /a: checks>99%",
                    "GET /a: checks>=99%",
                    "GET /b: checks==100%",
                    "rps==50",
                    "GET /a: rps==25",
                    "iterations==180",
                    "dropped_iterations==0",
                ]
            ),
            rec,
            4.0,
            final=True,
        )
    )
    assert res["checks>99%"].actual == 199 / 200 and res["checks>99%"].passed
    assert res["checks>99%"].detail == "checks = 99.50% (199 of 200 passed)"
    assert res["GET /a: checks>99%"].actual == 0.99 and not res["GET /a: checks>99%"].passed
    assert res["GET /a: checks>=99%"].passed
    assert res["GET /b: checks==100%"].passed
    assert res["rps==50"].actual == 50.0 and res["rps==50"].passed and res["rps==50"].detail == "rps = 50.00/s"
    assert res["GET /a: rps==25"].passed
    assert res["iterations==180"].passed
    assert res["dropped_iterations==0"].actual == 20 and not res["dropped_iterations==0"].passed


def test_nothing_to_judge_fails_at_the_end_and_waits_during_the_run(recorder):
    exprs = [
        "GET /api/contnet: p95<1s",  # a typo
        "/nowhere: error_rate<1%",
        "/nowhere: requests<5",
        "GET /health: checks>99%",  # requests, but no checks
    ]
    ts = parse_criteria(exprs)
    final = _by_expr(evaluate(ts, recorder, 3.0, final=True))
    for e in exprs:
        assert final[e].passed is False and final[e].actual is None and not final[e].pending
    assert final["GET /api/contnet: p95<1s"].detail == "no requests to GET /api/contnet"
    assert final["/nowhere: requests<5"].detail == "no requests to /nowhere"
    assert final["GET /health: checks>99%"].detail == "no checks ran on GET /health"
    live = _by_expr(evaluate(ts, recorder, 3.0, final=False))
    for e in exprs:
        assert live[e].passed is True and live[e].actual is None and live[e].pending
    assert live["GET /api/contnet: p95<1s"].detail == "no requests to GET /api/contnet yet"


def test_an_empty_run_and_untimed_requests():
    empty = Recorder()
    empty.snapshot()
    res = _by_expr(evaluate(parse_criteria(["p95<1s", "error_rate<1%", "requests>0", "errors==0", "checks>1%"]), empty, 1.0, final=True))
    assert res["p95<1s"].passed is False and res["p95<1s"].detail == "no requests"
    assert res["error_rate<1%"].passed is False
    assert res["requests>0"].actual == 0 and res["requests>0"].passed is False
    assert res["errors==0"].actual == 0 and res["errors==0"].passed is True
    assert res["checks>1%"].detail == "no checks ran"
    # Requests never sent (invalid_request) have no latency: no p95 to speak of, rather than
    # a flattering 0 ms. (Refused connections now carry their wait: issue 10.)
    refused = Recorder()
    _feed(refused, "GET", "/", [5] * 10, codes=-7)
    refused.snapshot()
    r = evaluate(parse_criteria(["p95<1s", "GET /: max<1s"]), refused, 1.0, final=True)
    assert [x.detail for x in r] == ["no timed responses", "no timed responses to GET /"]
    assert not any(x.passed for x in r)


def test_mid_run_counts_fail_only_once_the_rest_of_the_run_cannot_undo_it(recorder):
    # The fixture has 5600 requests and no errors; 2 errors are added here.
    _feed(recorder, "GET", "/health", [1000, 1000], codes=500)
    recorder.snapshot()
    live = _by_expr(
        evaluate(
            parse_criteria(
                ["requests>100000", "requests==7", "requests!=5602", "errors<2", "errors==1", "errors==3", "rps>1e6", "rps<1", "p95<1us"]
            ),
            recorder,
            1.0,
            final=False,
        )
    )
    assert live["requests>100000"].passed and live["requests>100000"].pending  # may yet be reached
    assert live["requests>100000"].detail == "requests = 5,602 so far"
    assert not live["requests==7"].passed  # already past it: can never be equal again
    assert live["requests!=5602"].passed and live["requests!=5602"].pending
    assert not live["errors<2"].passed  # an upper bound crossed stays crossed
    assert not live["errors==1"].passed
    assert live["errors==3"].passed and live["errors==3"].pending
    assert live["rps>1e6"].passed and live["rps>1e6"].pending  # the average rate is judged at the end
    assert live["rps<1"].passed and live["rps<1"].pending
    assert not live["p95<1us"].passed and not live["p95<1us"].pending  # latencies as they stand
    final = _by_expr(evaluate(parse_criteria(["requests>100000", "rps<1", "requests!=5602"]), recorder, 1.0, final=True))
    assert not any(r.passed or r.pending for r in final.values())


def test_render_and_json():
    rec = Recorder()
    _feed(rec, "GET", "/[bold]x", [2_000] * 4)
    rec.snapshot()
    res = evaluate(parse_criteria(["p95<1ms", "GET /[bold]x: requests==4", "GET /nope: p95<1s"]), rec, 1.0, final=True)
    buf = io.StringIO()
    render_criteria(res, Console(file=buf, width=200, color_system=None))
    lines = buf.getvalue().splitlines()
    assert lines == [
        "✗ p95<1ms  p95 = 2 ms",
        "✓ GET /[bold]x: requests==4  requests = 4",  # user text is escaped, not read as markup
        "✗ GET /nope: p95<1s  no requests to GET /nope",
    ]
    assert results_to_json(res) == [
        {"expr": "p95<1ms", "endpoint": None, "metric": "p95", "op": "<", "value": 1.0, "actual": 2.0, "passed": False},
        {
            "expr": "GET /[bold]x: requests==4",
            "endpoint": "GET /[bold]x",
            "metric": "requests",
            "op": "==",
            "value": 4.0,
            "actual": 4.0,
            "passed": True,
        },
        {"expr": "GET /nope: p95<1s", "endpoint": "GET /nope", "metric": "p95", "op": "<", "value": 1000.0, "actual": None, "passed": False},
    ]


# -- end to end: the sink inside a real engine run -----------------------------------------


def _engine(url: str, thresholds: list[str], **cfg) -> tuple[Engine, AbortOnFail]:
    sink = AbortOnFail(parse_criteria(thresholds))
    engine = Engine(RunConfig(model="open", graceful_stop_s=5.0, **cfg), adhoc=AdHocRequest(url), sinks=[sink], handle_signals=False)
    return engine, sink


def test_abort_on_fail_stops_the_run_early(start_demo):
    demo = start_demo(latency_ms=50)
    engine, sink = _engine(demo.url + "/", ["requests>1000000", "p95<1ms"], rate=20, run_time_s=30.0)
    result = engine.run()
    assert result.duration_s < 15.0  # stopped at its first interval, far before the 30 s planned
    assert sink.aborted is not None and sink.aborted.criterion.expr == "p95<1ms"
    assert not sink.aborted.passed and sink.aborted.actual >= 50.0
    assert [r.criterion.expr for r in sink.failures] == ["p95<1ms"]  # the count lower bound was not yet decided
    assert sink.aborted_at_s is not None and sink.aborted_at_s < 15.0
    warning = next(w for w in result.warnings if "run aborted" in w)
    assert warning.startswith("threshold p95<1ms failed at ") and "(p95 = " in warning


def test_passing_run_is_not_aborted_and_final_figures_match_the_summary(start_demo):
    demo = start_demo()
    exprs = ["p95<10s", "GET /: p99<10s", "GET /nope: p95<1s", "requests>1000000", "rps>1000000", "error_rate<1%"]
    engine, sink = _engine(demo.url + "/", exprs, rate=50, run_time_s=1.5)
    result = engine.run()
    assert sink.aborted is None and not any("run aborted" in w for w in result.warnings)
    s = build_summary(result, scenario=None, host=demo.url)
    res = _by_expr(evaluate(sink.criteria, result.recorder, result.schedule_s, final=True))
    assert res["p95<10s"].passed and res["p95<10s"].actual == s["latency_ms"]["p95"]
    assert res["GET /: p99<10s"].actual == s["endpoints"]["GET /"]["latency_ms"]["p99"]
    assert res["rps>1000000"].actual == s["rps"] and not res["rps>1000000"].passed
    assert res["error_rate<1%"].passed and res["error_rate<1%"].actual == s["error_rate"] == 0.0
    assert not res["GET /nope: p95<1s"].passed and res["GET /nope: p95<1s"].detail == "no requests to GET /nope"
    assert not res["requests>1000000"].passed


def test_a_run_that_already_ended_is_not_reported_as_aborted(start_demo):
    # Shorter than one interval: the sink only sees the last snapshot, after the engine stopped.
    demo = start_demo(latency_ms=50)
    engine, sink = _engine(demo.url + "/", ["p95<1ms"], rate=20, run_time_s=0.5)
    result = engine.run()
    assert sink.aborted is None and not any("run aborted" in w for w in result.warnings)
    (final,) = evaluate(sink.criteria, result.recorder, result.schedule_s, final=True)
    assert final.passed is False and final.actual is not None and final.actual >= 50.0
