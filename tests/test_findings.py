"""Findings: one reading of a summary document, which every output shares."""

from __future__ import annotations

from loadgen.findings import findings_of


def _summary(**extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "run_id": "r1", "scenario": "scenarios/content.py", "host": "http://127.0.0.1:8000/x?api_key=s3cret#frag",
        "app_version": "1.1", "test_type": "load", "requests": 100, "errors": 2, "error_rate": 0.02, "rps": 10.0,
        "latency_ms": {"p50": 5.0, "p95": 9.5, "p99": float("nan")}, "exit_code": 0, "warnings": ["w"],
        "endpoints": {"GET /x": {"method": "GET", "name": "/x", "requests": 100, "errors": 2, "error_rate": 0.02,
                                 "rps": 10.0, "latency_ms": {"p50": 5.0, "p95": 9.5, "p99": 12.0}}},
    }
    doc.update(extra)
    return doc


def _threshold(passed: bool) -> dict[str, object]:
    return {"expr": "p95<100ms", "endpoint": None, "metric": "p95", "op": "<", "value": 100.0, "actual": 150.0,
            "passed": passed}


def _comparison(verdict: str) -> dict[str, object]:
    row = {"metric": "response_time", "label": "p95", "subject": "GET /x", "unit": "ms", "baseline": 10.0,
           "candidate": 20.0, "change": 1.0, "change_kind": "relative", "threshold": 0.1, "verdict": verdict}
    return {"verdict": "regression" if verdict == "regression" else "pass", "scenario": "GET /x",
            "baseline": {"run_ids": ["b1", "b2"], "app_version": "1.0"}, "summary": "one line", "rows": [row]}


def test_a_passing_run_without_a_comparison() -> None:
    f = findings_of(_summary())
    assert f.verdict == "pass" and not f.compared and f.baseline_version is None
    assert f.p95_ms == 9.5 and f.p99_ms is None  # not a number: no figure rather than NaN in a message
    assert [e.name for e in f.endpoints] == ["/x"] and f.endpoints[0].p99_ms == 12.0


def test_the_target_is_shown_without_its_query() -> None:
    assert findings_of(_summary()).host == "http://127.0.0.1:8000/x"


def test_a_failed_threshold_is_fail_even_with_a_regression() -> None:
    f = findings_of(_summary(thresholds=[_threshold(False)], comparison=_comparison("regression"), exit_code=1))
    assert f.verdict == "fail"
    assert [t.expr for t in f.failed_thresholds] == ["p95<100ms"]
    assert [c.subject for c in f.regressions] == ["GET /x"] and f.baseline_run_ids == ("b1", "b2")


def test_a_regression_not_gated_is_still_a_regression() -> None:
    f = findings_of(_summary(thresholds=[_threshold(True)], comparison=_comparison("regression"), exit_code=0))
    assert f.verdict == "regression" and f.baseline_version == "1.0" and f.comparison_summary == "one line"


def test_an_equal_comparison_passes() -> None:
    f = findings_of(_summary(comparison=_comparison("ok")))
    assert f.verdict == "pass" and f.compared and not f.regressions


def test_a_run_not_carried_out_is_an_error_with_exit_3() -> None:
    f = findings_of({"run_id": "r2", "scenario": None}, error="the target could not be reached")
    assert (f.verdict, f.exit_code, f.error) == ("error", 3, "the target could not be reached")
    assert f.requests == 0 and f.endpoints == ()


def test_ad_hoc_runs_are_named_by_the_comparisons_identity() -> None:
    assert findings_of(_summary(scenario=None, comparison=_comparison("ok"))).scenario == "GET /x"


def test_a_damaged_stored_summary_is_read_field_by_field() -> None:
    f = findings_of({"requests": "many", "thresholds": "none", "comparison": [], "endpoints": None,
                     "latency_ms": {"p95": True}, "exit_code": 1.5})
    assert f.requests == 0 and f.thresholds == () and not f.compared and f.p95_ms is None and f.exit_code is None


def test_a_stored_run_that_was_not_carried_out_says_why_from_its_figures() -> None:
    """``loadgen notify RUN`` of a stored exit-3 run: the sentence is rebuilt from the figures."""
    f = findings_of(_summary(exit_code=3, status_codes={}, errors_by_kind={"connect": 90, "timeout": 10}))
    assert f.verdict == "error"
    assert f.error == "none of the 100 requests got an HTTP response (connect 90, timeout 10)"
    assert findings_of({"exit_code": 3}).error is not None  # never "unknown error"
