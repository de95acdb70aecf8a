"""The CI outputs of a run's findings (issue 14): the markdown summary (``--markdown``, and
GitHub's step summary), JUnit XML (``--junit``), read back as CI reads them: the markdown
rendered by a GFM parser, the XML by junitparser. Then real runs of the CLI against a
server on 127.0.0.1 whose latency the test switches, with a results store in tmp_path."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite
from markdown_it import MarkdownIt

from aiohttp_thread import ThreadedApp
from loadgen.errors import EXIT_FAILED, EXIT_OK, EXIT_RUN, EXIT_USAGE
from loadgen.findings import findings_of
from loadgen.outputs import MAX_CHARS, render_junit, render_markdown, write_junit, write_markdown

GFM = MarkdownIt("commonmark").enable("table")


# --- summary documents, as RunSummary.to_json() writes them ---------------------------


def _endpoint(method: str, name: str, requests: int = 100, errors: int = 0, p95: float = 30.0) -> dict[str, Any]:
    return {"method": method, "name": name, "requests": requests, "errors": errors,
            "error_rate": errors / requests if requests else 0.0, "rps": requests / 10,
            "latency_ms": {"p50": p95 / 2, "p95": p95, "p99": p95 * 1.5}}


def _threshold(expr: str, metric: str, op: str, value: float, actual: float | None, passed: bool,
               endpoint: str | None = None) -> dict[str, Any]:
    return {"expr": expr, "endpoint": endpoint, "metric": metric, "op": op, "value": value, "actual": actual,
            "passed": passed}


def _row(subject: str, verdict: str, *, metric: str = "response_time", label: str = "p95", unit: str = "ms",
         baseline: float | None = 12.1, candidate: float | None = 31.0, change: float | None = 1.56,
         kind: str = "relative", threshold: float = 0.2, note: str | None = None) -> dict[str, Any]:
    return {"metric": metric, "label": label, "subject": subject, "unit": unit, "baseline": baseline,
            "candidate": candidate, "change": change, "change_kind": kind, "threshold": threshold,
            "verdict": verdict, "note": note}


def _summary(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "loadgen_version": "0.1.0", "scenario": "scenarios/content.py", "host": "http://127.0.0.1:8000",
        "app_version": "1.1", "test_type": "load", "started_at": "2026-01-02T03:04:05+00:00", "duration_s": 10.0,
        "stop_reason": None, "requests": 1000, "errors": 4, "error_rate": 0.004, "rps": 100.0,
        "latency_ms": {"p50": 10.0, "p95": 30.0, "p99": 45.0},
        "warnings": [], "endpoints": {"GET /a": _endpoint("GET", "/a")},
        "run_id": "20260102-030405-abcd", "status": "completed", "exit_code": 0,
    }
    doc.update(over)
    return doc


def _comparison(*rows: dict[str, Any], runs: int = 3) -> dict[str, Any]:
    return {"baseline": {"app_version": "1.0", "run_ids": [f"r{i}" for i in range(runs)]}, "rows": list(rows)}


FAILED = _summary(
    exit_code=EXIT_FAILED,
    thresholds=[_threshold("p95<100ms", "p95", "<", 100.0, 305.0, False),
                _threshold("error_rate<1%", "error_rate", "<", 0.01, 0.004, True),
                _threshold("GET /a: rps>=50", "rps", ">=", 50.0, 100.0, True, endpoint="GET /a")],
    comparison=_comparison(
        _row("GET /a", "regression"),
        _row("GET /a", "ok", metric="error_rate", label="error rate", unit="fraction", baseline=0.002,
             candidate=0.004, change=0.002, kind="absolute", threshold=0.01),
        _row("GET /b", "insufficient data", baseline=5.0, candidate=6.0, change=0.2, note="12 requests"),
        _row("GET /new", "new", baseline=None, change=None),
        _row("total", "improvement", metric="throughput", label="throughput", unit="req/s", baseline=80.0,
             candidate=100.0, change=0.25),
    ),
)


def _cells(html: str) -> list[list[str]]:
    """Each table row of rendered HTML as its cells' inner HTML."""
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)]


# --- markdown -----------------------------------------------------------------------------


def test_markdown_of_a_failed_run_names_each_failure_with_its_numbers():
    doc = render_markdown(findings_of(FAILED, report="results/report.html"))
    assert doc.startswith("## ❌ Performance: failed\n")
    assert "1 of 3 thresholds failed; 1 regression against `1.0`." in doc
    assert "| ❌ | `p95<100ms` | 305 ms | < 100 ms |" in doc
    assert "| ✅ | `error_rate<1%` | 0.40 % | < 1 % |" in doc
    assert doc.index("p95<100ms") < doc.index("error_rate<1%")  # the failed one first
    assert "| ✅ | `GET /a: rps>=50` | 100.0 req/s | >= 50 req/s |" in doc
    # The regression against the baseline: the same cells as `loadgen compare` prints.
    regressions = doc[doc.index("### Regressions against `1.0`"):doc.index("### Improvements")]
    assert "| p95 (ms) | `GET /a` | 12.1 | 31.0 | +156 % | +20 % | **REGRESSION** |" in regressions
    improvements = doc[doc.index("### Improvements"):doc.index("<details>")]
    assert "| throughput (req/s) | **total** | 80.0 | 100.0 | +25 % | -20 % | improvement |" in improvements
    others = doc[doc.index("<details>"):doc.index("</details>")]
    assert "3 other compared metrics (ok 1, insufficient data 1, new 1)" in others
    assert "+0.20 pp" in others and "insufficient data (12 requests)" in others
    # The run's facts and figures, the endpoints, the report.
    for fact in ("run `20260102-030405-abcd`", "scenario `scenarios/content.py`", "version `1.1`",
                 "baseline `1.0` (median of 3 runs)", "exit code 1"):
        assert fact in doc, fact
    assert "| 1,000 | 4 | 0.40 % | 100.0 | 10.0 | 30.0 | 45.0 |" in doc
    assert "| `GET` | `/a` | 100 | 0 | 15.0 | 30.0 | 45.0 | 10.0 |" in doc
    assert doc.rstrip().endswith("HTML report: `results/report.html`")
    # Every table renders with the cells its head names.
    html = GFM.render(doc)
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    assert len(tables) == 6
    for table in tables:
        rows = _cells(table)
        assert all(len(r) == len(rows[0]) for r in rows), rows


@pytest.mark.parametrize("summary,error,headline,line", [
    (_summary(thresholds=[_threshold("p95<1s", "p95", "<", 1000.0, 30.0, True)],
              comparison=_comparison(_row("GET /a", "ok", candidate=12.0, change=-0.01))),
     None, "## ✅ Performance: passed", "The threshold was met; no regression against `1.0` (median of 3 runs)."),
    (_summary(), None, "## ✅ Performance: passed", "No thresholds and no comparison with a baseline"),
    (_summary(comparison=_comparison(_row("GET /a", "regression"), runs=1)), None,
     "## ❌ Performance: regression",
     "1 regression against `1.0` (reported, not gated: the run's exit code is 0)."),
    (_summary(exit_code=EXIT_FAILED, comparison=_comparison(_row("GET /a", "regression"), runs=1)), None,
     "## ❌ Performance: regression", "1 regression against `1.0`."),
    ({"run_id": "r1", "scenario": "s.py", "host": "http://127.0.0.1:9", "app_version": "2.0"},
     "the target http://127.0.0.1:9 could not be reached or served: none of the 5 requests got an HTTP response",
     "## ⚠️ Performance: the run could not be carried out",
     "Reason: `the target http://127.0.0.1:9 could not be reached"),
])
def test_the_headline_says_the_verdict(summary, error, headline, line):
    doc = render_markdown(findings_of(summary, error=error))
    assert doc.splitlines()[0] == headline
    assert line in doc
    if error:
        assert "| requests |" not in doc  # nothing was measured: no table of zeros


HOSTILE_NAMES = [
    "/a|b|c",
    "/`tick`",
    "``/double``",
    "<script>alert(1)</script>",
    "/line\nbreak\r\n## heading",
    "/@octocat/#1/**bold**/[link](http://x)",
    "/ctl\x00\x07\x1b[31mred\x7f",
    "\\|/back\\slash|",
]


def test_what_users_write_cannot_break_the_markdown():
    endpoints = {f"GET {n}": _endpoint("GET", n, requests=100 + i) for i, n in enumerate(HOSTILE_NAMES)}
    summary = _summary(
        endpoints=endpoints,
        thresholds=[_threshold("GET /a|b|c: p95<1ms", "p95", "<", 1.0, 3.0, False, endpoint="GET /a|b|c")],
        comparison=_comparison(*(_row(f"GET {n}", "regression") for n in HOSTILE_NAMES)),
        warnings=["a scenario raised <img src=x onerror=alert(1)>\nValueError: `x` | @octocat"],
        scenario="<b>s</b>.py", app_version="1.1 | <i>",
    )
    doc = render_markdown(findings_of(summary))
    html = GFM.render(doc)
    for tag in ("<script", "<img", "<b>", "<i>", "<strong>bold", "<a href", "<h2>heading"):
        assert tag not in html, tag
    codes = [re.sub(r"&lt;", "<", re.sub(r"&gt;", ">", re.sub(r"&quot;", '"', c))).replace("&amp;", "&")
             for c in re.findall(r"<code>(.*?)</code>", html, re.S)]
    for name in HOSTILE_NAMES:
        shown = " ".join(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", name).split())
        assert shown in codes, (name, shown)
    assert "a scenario raised <img src=x onerror=alert(1)> ValueError: `x` | @octocat" in codes
    # Every row of every table has its head's number of cells: no name split a row.
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        rows = _cells(table)
        assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows), rows


def test_thousands_of_endpoints_stay_within_a_comment():
    long = "/api/" + "x|`<" * 100  # 405 characters, each of them worth escaping
    endpoints = {f"GET {long}{i}": _endpoint("GET", f"{long}{i}", requests=10_000 - i) for i in range(5_000)}
    summary = _summary(
        endpoints=endpoints,
        thresholds=[_threshold(f"GET {long}{i}: p95<1ms", "p95", "<", 1.0, 3.0, i % 2 == 0) for i in range(400)],
        comparison=_comparison(*(_row(f"GET {long}{i}", "regression" if i % 3 else "ok") for i in range(3_000))),
        warnings=[f"warning {i}: " + "w" * 2_000 for i in range(1_000)],
    )
    f = findings_of(summary)
    doc = render_markdown(f)
    assert len(doc) <= MAX_CHARS
    assert doc.startswith("## ❌ Performance: failed")
    assert "200 of 400 thresholds failed; 2,000 regressions against `1.0`." in doc
    # The busiest endpoint is there, and how many more there are.
    assert "/api/x\\|`<" in doc
    more = re.search(r"_… and ([\d,]+) more endpoints \(([\d,]+) requests\)\._", doc)
    assert more, doc[-3000:]
    assert re.search(r"### Endpoints: the ([\d,]+) busiest of 5,000", doc)
    assert re.search(r"_… and [\d,]+ more \([\d,]+ of them failed\)\._", doc)
    assert re.search(r"- _… and [\d,]+ more\._", doc)
    html = GFM.render(doc)
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        rows = _cells(table)
        assert all(len(r) == len(rows[0]) for r in rows)


def test_two_hundred_endpoints_show_the_fifty_busiest():
    endpoints = {f"GET /e{i}": _endpoint("GET", f"/e{i}", requests=1_000 + i) for i in range(200)}
    doc = render_markdown(findings_of(_summary(endpoints=endpoints)))
    assert "### Endpoints: the 50 busiest of 200" in doc
    assert "`/e199`" in doc and "`/e150`" in doc and "`/e149`" not in doc
    assert f"_… and 150 more endpoints ({sum(1_000 + i for i in range(150)):,} requests)._" in doc


def test_the_step_summary_is_appended_to(tmp_path):
    f = findings_of(FAILED)
    doc = render_markdown(f)
    summary = tmp_path / "step_summary.md"
    summary.write_text("## Another step\n")
    write_markdown(f, str(summary), append=True)
    assert summary.read_text(encoding="utf-8") == "## Another step\n\n" + doc
    write_markdown(f, str(summary), append=True)  # a second run's summary: after a blank line again
    assert summary.read_text(encoding="utf-8") == "## Another step\n\n" + doc + "\n" + doc
    no_newline = tmp_path / "no_newline.md"
    no_newline.write_text("text without a newline")
    write_markdown(f, str(no_newline), append=True)
    assert no_newline.read_text(encoding="utf-8") == "text without a newline\n\n" + doc
    fresh = tmp_path / "fresh.md"
    write_markdown(f, str(fresh), append=True)
    assert fresh.read_text(encoding="utf-8") == doc
    # --markdown replaces its file.
    own = tmp_path / "own.md"
    own.write_text("an old run's summary\n")
    write_markdown(f, str(own))
    assert own.read_text(encoding="utf-8") == doc


# --- JUnit ------------------------------------------------------------------------------------


def _suites(path: Path) -> dict[str, TestSuite]:
    xml = JUnitXml.fromfile(str(path))
    return {s.name: s for s in xml}


def _results(suite: TestSuite) -> dict[str, list[Any]]:
    return {case.name: list(case.result) for case in suite}


def test_junit_has_a_case_per_threshold_and_per_compared_metric(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(findings_of(FAILED), str(path))
    xml = JUnitXml.fromfile(str(path))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (1 + 3 + 5, 2, 0, 2)
    suites = _suites(path)
    assert set(suites) == {"run", "thresholds", "comparison"}
    assert (suites["run"].tests, suites["run"].failures, suites["run"].errors) == (1, 0, 0)
    assert suites["run"].time == 10.0

    thresholds = _results(suites["thresholds"])
    assert set(thresholds) == {"p95<100ms", "error_rate<1%", "GET /a: rps>=50"}
    assert thresholds["error_rate<1%"] == [] and thresholds["GET /a: rps>=50"] == []
    (failure,) = thresholds["p95<100ms"]
    assert isinstance(failure, Failure)
    assert failure.message == "p95 was 305 ms; the limit < 100 ms is not met"
    assert "measured: 305 ms" in failure.text and "limit: < 100 ms" in failure.text
    assert (suites["thresholds"].tests, suites["thresholds"].failures) == (3, 1)

    comparison = _results(suites["comparison"])
    assert set(comparison) == {"p95 GET /a", "error rate GET /a", "p95 GET /b", "p95 GET /new", "throughput total"}
    assert {case.classname for case in suites["comparison"]} == {"comparison with 1.0"}
    (regression,) = comparison["p95 GET /a"]
    assert isinstance(regression, Failure)
    assert regression.message == "regression: p95 of GET /a 12.1 ms → 31.0 ms (+156 %, threshold +20 %)"
    for line in ("baseline: 12.1 ms (median of 3 runs of 1.0)", "candidate: 31.0 ms", "change: +156 %",
                 "tolerance: +20 %"):
        assert line in regression.text, line
    (insufficient,) = comparison["p95 GET /b"]
    assert isinstance(insufficient, Skipped) and insufficient.message == "insufficient data: 12 requests"
    (new,) = comparison["p95 GET /new"]
    assert isinstance(new, Skipped) and new.message.startswith("new")
    assert comparison["error rate GET /a"] == [] and comparison["throughput total"] == []
    assert (suites["comparison"].tests, suites["comparison"].failures, suites["comparison"].skipped) == (5, 1, 2)


def test_junit_of_a_run_that_could_not_be_carried_out(tmp_path):
    path = tmp_path / "junit.xml"
    why = "the target http://127.0.0.1:9 could not be reached or served"
    write_junit(findings_of({"run_id": "r1", "host": "http://127.0.0.1:9"}, error=why), str(path))
    xml = JUnitXml.fromfile(str(path))
    assert (xml.tests, xml.failures, xml.errors) == (1, 0, 1)
    (error,) = _results(_suites(path)["run"])["run"]
    assert isinstance(error, Error) and error.message == why


def test_junit_of_a_run_with_nothing_to_judge_has_one_passing_case(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(findings_of(_summary(warnings=["the generator was saturated"])), str(path))
    xml = JUnitXml.fromfile(str(path))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (1, 0, 0, 0)
    (case,) = list(_suites(path)["run"])
    assert case.name == "run" and case.is_passed and case.time == 10.0
    assert "1,000 requests, 4 errors (0.40 %)" in case.system_out
    assert case.system_err == "the generator was saturated"
    props = {p.name: p.value for p in _suites(path)["run"].properties()}
    assert props["app_version"] == "1.1" and props["requests"] == "1000" and props["verdict"] == "pass"


def test_junit_is_well_formed_whatever_the_names(tmp_path):
    names = ["/ctl\x00\x01\x0b\x1b[0m\x7f\x85end", "/x]]>&<'\"", "/\ud800lone", "/ü/ç/😀"]
    summary = _summary(
        exit_code=EXIT_FAILED,
        thresholds=[_threshold(f"GET {n}: p95<1ms", "p95", "<", 1.0, 2.0, False, endpoint=f"GET {n}")
                    for n in names],
        comparison=_comparison(*(_row(f"GET {n}", "regression", note="\x00note") for n in names)),
        warnings=["\x1b[31mred\x1b[0m <warning> & ]]>"],
    )
    data = render_junit(findings_of(summary))
    ET.fromstring(data)  # well-formed
    path = tmp_path / "junit.xml"
    path.write_bytes(data)
    got = set(_results(_suites(path)["thresholds"]))
    assert got == {"GET /ctl[0mend: p95<1ms", "GET /x]]>&<'\": p95<1ms", "GET /lone: p95<1ms", "GET /ü/ç/😀: p95<1ms"}
    assert len(_results(_suites(path)["comparison"])) == 4


# --- real runs of the CLI ------------------------------------------------------------------------


class SwitchableTarget:
    """A target on 127.0.0.1 whose answers take ``latency_s``, which the test sets."""

    def __init__(self) -> None:
        self.latency_s = 0.0
        self.requests = 0
        self._lock = threading.Lock()
        self.server = ThreadedApp(self._app, access_log=False)

    def _app(self) -> web.Application:
        import asyncio

        async def handle(_: web.Request) -> web.Response:
            with self._lock:
                self.requests += 1
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/x", handle)
        return app

    @property
    def url(self) -> str:
        return self.server.url("/x")


@pytest.fixture
def target() -> Iterator[SwitchableTarget]:
    t = SwitchableTarget()
    yield t
    t.server.stop()


def _env(**extra: str) -> dict[str, str]:
    # Not the environment's own step summary (the suite may itself run in GitHub Actions).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADGEN_", "GITHUB_"))}
    env["NO_COLOR"] = "1"
    return {**env, **extra}


def _args(url: str, *extra: str, run_time: str = "2s") -> list[str]:
    # Open model at a fixed rate: 60 requests, enough for the comparison to judge latency.
    return [sys.executable, "-m", "loadgen", "run", "--url", url, "--rate", "30", "--run-time", run_time, "-q",
            *extra]


def _loadgen(url: str, *extra: str, env: dict[str, str] | None = None,
             run_time: str = "2s") -> subprocess.CompletedProcess[str]:
    return subprocess.run(_args(url, *extra, run_time=run_time), capture_output=True, text=True, timeout=120,
                          env=env or _env())


def test_a_slowed_candidate_fails_in_every_ci_output(target, tmp_path):
    db = f"sqlite:///{tmp_path}/results.db"
    p = _loadgen(target.url, "--db", db, "--app-version", "1.0")
    assert p.returncode == EXIT_OK, p.stdout + p.stderr
    # The candidate answers 300 ms slower: a regression far beyond the default 20 % on p95,
    # whatever a busy machine adds to the baseline's few milliseconds.
    target.latency_s = 0.3
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("## Build\n\nbuilt in 3 minutes\n")
    markdown, junit, summary_json = tmp_path / "perf.md", tmp_path / "junit.xml", tmp_path / "summary.json"
    p = _loadgen(target.url, "--db", db, "--app-version", "1.1", "--baseline-version", "1.0",
                 "--fail-on-regression", "--threshold", "p95<100ms", "--threshold", "error_rate<50%",
                 "--markdown", str(markdown), "--junit", str(junit), "--summary-json", str(summary_json),
                 env=_env(GITHUB_STEP_SUMMARY=str(step_summary)))
    assert p.returncode == EXIT_FAILED, p.stdout + p.stderr
    # Every CI file was written (a busy machine may add a warning of its own: the generator's).
    assert "could not be written" not in p.stdout + p.stderr, p.stdout + p.stderr

    doc = markdown.read_text(encoding="utf-8")
    assert step_summary.read_text(encoding="utf-8") == "## Build\n\nbuilt in 3 minutes\n\n" + doc
    assert doc.startswith("## ❌ Performance: failed\n")
    assert "1 of 2 thresholds failed; 2 regressions against `1.0`." in doc
    assert "| `GET` | `/x` |" in doc

    import json

    s = json.loads(summary_json.read_text())
    p95 = s["latency_ms"]["p95"]
    suites = _suites(junit)
    thresholds = _results(suites["thresholds"])
    (failure,) = thresholds["p95<100ms"]
    assert isinstance(failure, Failure) and f"p95 was {p95:,.0f} ms" in failure.message
    assert thresholds["error_rate<50%"] == []
    comparison = _results(suites["comparison"])
    (regression,) = comparison["p95 GET /x"]
    row = next(r for r in s["comparison"]["rows"] if r["subject"] == "GET /x" and r["label"] == "p95")
    assert isinstance(regression, Failure) and row["verdict"] == "regression"
    assert f"candidate: {row['candidate']:,.0f} ms" in regression.text
    assert "baseline: " in regression.text and "(median of 1 run of 1.0)" in regression.text
    assert "tolerance: +20 %" in regression.text
    assert {"throughput GET /x", "error rate GET /x"} <= set(comparison)


def test_an_output_lost_during_the_run_is_a_warning(target, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    junit, markdown = out / "junit.xml", tmp_path / "perf.md"
    # 4 s of load: time enough for this thread to see the first request and remove the folder.
    args = _args(target.url, "--db", "none", "--junit", str(junit), "--markdown", str(markdown), run_time="4s")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 60
        while target.requests == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if target.requests == 0:
            proc.kill()
            pytest.fail(f"the run never reached the target: {proc.communicate()}")
        out.rmdir()  # checked writable before the run, gone before its end
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_OK, stdout + stderr
    said = " ".join((stdout + stderr).split())
    assert f"warning: the JUnit XML could not be written to {junit}" in said, said
    assert markdown.read_text(encoding="utf-8").startswith("## ✅ Performance: passed")


def test_an_unwritable_junit_path_is_exit_2_before_the_run(target, tmp_path):
    p = _loadgen(target.url, "--db", "none", "--junit", str(tmp_path / "no" / "such" / "dir" / "junit.xml"))
    assert p.returncode == EXIT_USAGE
    assert "Traceback" not in p.stdout + p.stderr
    assert "--junit" in p.stderr and "cannot be written" in p.stderr
    assert target.requests == 0


def test_a_run_that_could_not_be_carried_out_is_told_too(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: every connect is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    step_summary, junit = tmp_path / "step_summary.md", tmp_path / "junit.xml"
    step_summary.write_text("before\n")
    p = _loadgen(f"http://127.0.0.1:{port}/x", "--db", "none", "--junit", str(junit),
                 env=_env(GITHUB_STEP_SUMMARY=str(step_summary)), run_time="1s")
    assert p.returncode == EXIT_RUN, p.stdout + p.stderr
    text = step_summary.read_text(encoding="utf-8")
    assert text.startswith("before\n\n## ⚠️ Performance: the run could not be carried out\n")
    assert f"127.0.0.1:{port}" in text
    xml = JUnitXml.fromfile(str(junit))
    assert (xml.errors, xml.failures) == (1, 0)
    (error,) = _results(_suites(junit)["run"])["run"]
    assert isinstance(error, Error) and "could not be reached" in error.message

