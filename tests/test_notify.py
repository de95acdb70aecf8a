"""Notifications (issue 14): ``--notify``, ``--notify-on`` and ``loadgen notify RUN``, end to end
through the real CLI against a target and a webhook receiver on 127.0.0.1, and the three payloads
(Slack's Block Kit, Teams' adaptive card, loadgen's JSON document) checked against their
documented shapes and limits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aiohttp_thread import ThreadedApp
from loadgen.errors import EXIT_OK, EXIT_RUN, EXIT_USAGE, UsageError
from loadgen.findings import Findings, findings_of
from loadgen.notify import payload, send_all
from loadgen.notify.deliver import Policy
from loadgen.notify.document import SCHEMA
from loadgen.notify.targets import check_webhook, masked, parse_webhook

SECRET = "s3cretTOKEN"  # in every webhook URL's path or query: it must never be shown

# --- a target and a webhook receiver on 127.0.0.1 ---------------------------------------------


@dataclass
class Received:
    behaviour: str
    key: str
    body: Any
    content_type: str
    at: float


@dataclass
class Server:
    """One aiohttp app: ``GET /ok`` is the target (its latency settable), ``POST /hook/BEHAVIOUR/KEY``
    the receiver, which records each POST and answers as BEHAVIOUR says."""

    app: ThreadedApp | None = None
    delay_s: float = 0.05
    posts: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    served: int = 0  # GET /ok

    def url(self, path: str) -> str:
        assert self.app is not None
        return self.app.url(path)

    def hook(self, behaviour: str, key: str, kind: str = "json") -> str:
        """A webhook URL of this receiver, its secret in the path and the query."""
        return f"{kind}+{self.url(f'/hook/{behaviour}/{key}-{SECRET}')}?sig={SECRET}x"

    def got(self, key: str) -> list[Received]:
        with self.lock:
            return [p for p in self.posts if p.key == key]

    def build(self) -> web.Application:
        async def target(request: web.Request) -> web.Response:
            with self.lock:
                self.served += 1
            await asyncio.sleep(self.delay_s)
            return web.Response(text="ok")

        async def hook(request: web.Request) -> web.StreamResponse:
            behaviour, key = request.match_info["behaviour"], request.match_info["key"].split("-")[0]
            raw = await request.read()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            with self.lock:
                self.posts.append(Received(behaviour, key, body, request.headers.get("Content-Type", ""),
                                           time.monotonic()))
                self.tries[key] += 1
                n = self.tries[key]
            if behaviour == "flaky" and n <= 2:
                return web.Response(status=503, text="try later")
            if behaviour == "busy" and n == 1:
                return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
            if behaviour == "later":
                return web.Response(status=503, headers={"Retry-After": "3600"})
            if behaviour == "down":
                return web.Response(status=500, text="boom")
            if behaviour == "bad":
                return web.Response(status=400, text="invalid_payload\nmore")
            if behaviour == "echo":  # a receiver that repeats the URL it was called on
                return web.Response(status=404, text=f"no hook at {request.path_qs}")
            if behaviour == "echotoken":  # a receiver that names the token it did not know, and the signature
                return web.Response(status=404, text=f"unknown hook {request.match_info['key']}, "
                                                     f"signature {request.query.get('sig', '')}")
            if behaviour == "redirect":
                raise web.HTTPFound(f"/hook/ok/{key}moved")
            if behaviour == "hang":
                await asyncio.sleep(60)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/ok", target)
        app.router.add_post("/hook/{behaviour}/{key}", hook)
        return app


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    srv.app = ThreadedApp(srv.build, shutdown_timeout=1.0, access_log=False)
    with srv.app:
        yield srv


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadgen(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_") and k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True,
                          timeout=timeout, env={**clean, **(env or {})})


def run(server: Server, db: str, version: str, *extra: str, env: dict[str, str] | None = None,
        url: str | None = None) -> subprocess.CompletedProcess[str]:
    # Open model at a fixed rate: throughput is the schedule, latency is the target's.
    return loadgen("run", "--url", url or server.url("/ok"), "--rate", "25", "--run-time", "2s", "--db", db,
                   "--app-version", version, "-q", *extra, env=env)


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


def no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text, text


# --- the documented shapes: checks written from Slack's and Teams' references ---------------

_SLACK_BLOCKS = {"header", "section", "context", "divider"}


def _slack_text(obj: Any, limit: int, *, plain_only: bool = False) -> str:
    assert isinstance(obj, dict) and set(obj) <= {"type", "text", "emoji", "verbatim"}, obj
    assert obj["type"] in (("plain_text",) if plain_only else ("plain_text", "mrkdwn")), obj
    assert "emoji" not in obj or obj["type"] == "plain_text"
    assert isinstance(obj["text"], str) and 1 <= len(obj["text"]) <= limit, obj
    return obj["text"]


def check_slack(msg: Any) -> list[str]:
    """Slack's incoming-webhook message with blocks (layout blocks reference): the mrkdwn texts in it."""
    assert isinstance(msg, dict) and set(msg) <= {"text", "blocks"}
    assert isinstance(msg["text"], str) and 1 <= len(msg["text"]) <= 3000  # the notification's fallback
    blocks = msg["blocks"]
    assert isinstance(blocks, list) and 1 <= len(blocks) <= 50
    texts = [msg["text"]]
    for b in blocks:
        assert b["type"] in _SLACK_BLOCKS, b
        assert len(b.get("block_id", "")) <= 255
        if b["type"] == "header":
            assert set(b) <= {"type", "text", "block_id"}
            _slack_text(b["text"], 150, plain_only=True)
        elif b["type"] == "section":
            assert set(b) <= {"type", "text", "fields", "block_id"} and ("text" in b or "fields" in b)
            if "text" in b:
                texts.append(_slack_text(b["text"], 3000))
            fields = b.get("fields", [])
            assert isinstance(fields, list) and len(fields) <= 10
            texts += [_slack_text(f, 2000) for f in fields]
        elif b["type"] == "context":
            assert set(b) <= {"type", "elements", "block_id"} and 1 <= len(b["elements"]) <= 10
            texts += [_slack_text(e, 3000) for e in b["elements"]]
    return texts


_TEAMS_TEXT_STYLE = {"size": {"Small", "Default", "Medium", "Large", "ExtraLarge"},
                     "weight": {"Lighter", "Default", "Bolder"},
                     "color": {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"},
                     "spacing": {"None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding"}}


def check_teams(msg: Any) -> list[dict[str, Any]]:
    """A Teams workflow webhook's message: one adaptive-card attachment (schema 1.4 or lower),
    its body of TextBlocks and FactSets, the whole under Teams' ~28 KB. The card's body."""
    assert len(json.dumps(msg).encode()) <= 28_000
    assert msg["type"] == "message" and len(msg["attachments"]) == 1
    att = msg["attachments"][0]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["$schema"].startswith("http://adaptivecards.io/schemas/")
    assert tuple(int(x) for x in card["version"].split(".")) <= (1, 4)
    assert isinstance(card["body"], list) and card["body"]
    for el in card["body"]:
        if el["type"] == "TextBlock":
            assert set(el) <= {"type", "text", "wrap", "isSubtle", "maxLines", *_TEAMS_TEXT_STYLE}, el
            assert isinstance(el["text"], str) and el["text"]
            for key, allowed in _TEAMS_TEXT_STYLE.items():
                assert el.get(key, "Default") in allowed, el
        elif el["type"] == "FactSet":
            assert set(el) <= {"type", "facts", "spacing"} and el["facts"], el
            for fact in el["facts"]:
                assert set(fact) == {"title", "value"}
                assert isinstance(fact["title"], str) and isinstance(fact["value"], str) and fact["value"]
        else:
            raise AssertionError(f"an element Teams' card does not expect: {el['type']}")
    return card["body"]


def check_document(doc: Any) -> None:
    """loadgen's JSON document (README, Notifications): every key present, of its type."""
    keys = {"schema", "message", "run_id", "verdict", "exit_code", "error", "loadgen_version", "app_version",
            "baseline_version", "baseline_run_ids", "scenario", "host", "test_type", "status", "stop_reason",
            "started_at", "duration_s", "summary", "failed_thresholds", "regressions", "comparison", "report"}
    assert set(doc) == keys
    assert doc["schema"] == SCHEMA and doc["verdict"] in ("pass", "fail", "regression", "error")
    assert set(doc["summary"]) == {"requests", "errors", "error_rate", "rps", "p50_ms", "p95_ms", "p99_ms"}
    for t in doc["failed_thresholds"]:
        assert set(t) == {"expr", "endpoint", "metric", "op", "value", "actual"}
    for r in doc["regressions"]:
        assert set(r) == {"metric", "label", "subject", "unit", "baseline", "candidate", "change", "change_kind",
                          "threshold", "note"}


# --- one regressed run, one equal run: the receiver hears of the regressed one only ---------


@dataclass
class Runs:
    db: str
    baseline: subprocess.CompletedProcess[str]
    equal: subprocess.CompletedProcess[str]
    regressed: subprocess.CompletedProcess[str]
    baseline_doc: dict[str, Any]
    equal_doc: dict[str, Any]
    regressed_doc: dict[str, Any]
    report: Path


@pytest.fixture(scope="module")
def runs(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    tmp = tmp_path_factory.mktemp("notify-runs")
    db = f"sqlite:///{tmp}/runs.db"
    # Generous tolerances, so a stall of this busy machine cannot make the equal run a
    # "regression" (p95 would have to triple), while the slow version is 9 times slower.
    th = tmp / "thresholds.json"
    th.write_text('{"response_time": 2.0, "error_rate": 0.05, "throughput": 0.5}')
    hooks = ["--notify", server.hook("ok", "runjson"), "--notify", server.hook("ok", "runslack", "slack"),
             "--notify", server.hook("ok", "runteams", "teams")]
    docs = []
    procs = []
    report = tmp / "report.html"
    for version, delay, extra in (("1.0", 0.05, ()), ("1.1", 0.05, ("--baseline-version", "1.0")),
                                  ("1.2", 0.45, ("--baseline-version", "1.0", "--report", str(report)))):
        server.delay_s = delay
        summary = tmp / f"{version}.json"
        p = run(server, db, version, *hooks, "--thresholds-file", str(th), "--summary-json", str(summary), *extra)
        procs.append(p)
        docs.append(json.loads(summary.read_text()) if summary.exists() else {})
        if version == "1.1":  # nothing sent after the baseline and the equal run
            assert not server.got("runjson"), p.stdout
    server.delay_s = 0.05
    return Runs(db, *procs, *docs, report)


def test_a_regressed_run_notifies_once_and_an_equal_run_not_at_all(runs: Runs, server: Server) -> None:
    for p in (runs.baseline, runs.equal, runs.regressed):
        # Notified or not, the exit code is the run's: 0 without --fail-on-regression.
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        no_secret(p.stdout, p.stderr)
    assert runs.equal_doc["comparison"]["verdict"] == "pass"
    assert runs.regressed_doc["comparison"]["verdict"] == "regression"
    assert "notified" not in runs.baseline.stdout + runs.equal.stdout
    port = server.app.port if server.app else 0
    for kind in ("json", "slack", "teams"):
        assert f"notified {kind}+http://127.0.0.1:{port}/***" in runs.regressed.stdout
        got = server.got(f"run{kind}")
        assert len(got) == 1, [g.body for g in got]
        assert got[0].content_type.startswith("application/json")
    doc = server.got("runjson")[0].body
    check_document(doc)
    s = runs.regressed_doc
    assert doc["run_id"] == s["run_id"] and doc["verdict"] == "regression" and doc["exit_code"] == EXIT_OK
    assert doc["app_version"] == "1.2" and doc["baseline_version"] == "1.0"
    assert doc["baseline_run_ids"] == [runs.baseline_doc["run_id"]]
    assert doc["loadgen_version"] == s["loadgen_version"] and doc["started_at"] == s["started_at"]
    assert doc["summary"]["requests"] == s["requests"] > 0 and doc["summary"]["p95_ms"] == s["latency_ms"]["p95"]
    assert doc["report"] == str(runs.report) and runs.report.is_file()
    assert doc["failed_thresholds"] == [] and doc["error"] is None
    latency = {r["subject"]: r for r in doc["regressions"] if r["metric"] == "response_time"}
    assert set(latency) == {"GET /ok", "total"}
    row = latency["GET /ok"]
    assert row["unit"] == "ms" and row["change_kind"] == "relative" and row["label"] == "p95"
    assert row["baseline"] < 300 < 400 <= row["candidate"] and row["change"] > 2.0 and row["threshold"] == 2.0
    assert "REGRESSION" in doc["message"] and "2 regressions" in doc["message"]


def test_slack_and_teams_receive_their_own_payloads(runs: Runs, server: Server) -> None:
    slack = server.got("runslack")[0].body
    texts = check_slack(slack)
    assert slack["blocks"][0]["text"]["text"].startswith("loadgen REGRESSION")
    assert any("*Regressions*" in t and "`GET /ok` p95" in t for t in texts)
    assert any("`1.2`" in t for t in texts) and any("`1.0`" in t for t in texts)
    body = check_teams(server.got("runteams")[0].body)
    assert body[0]["text"].startswith("loadgen REGRESSION") and body[0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for el in body if el["type"] == "FactSet" for f in el["facts"]}
    assert facts["App version"] == "1.2" and facts["Baseline version"] == "1.0"
    assert facts["GET /ok"].startswith("p95 ") and "→" in facts["GET /ok"]


def test_the_stored_run_holds_no_webhook(runs: Runs, tmp_path: Path) -> None:
    db_file = Path(runs.db.removeprefix("sqlite:///"))
    stored = b"".join(f.read_bytes() for f in db_file.parent.glob(db_file.name + "*"))
    assert stored and SECRET.encode() not in stored and b"/hook/" not in stored
    p = loadgen("runs", "export", "latest", "--db", runs.db)
    assert p.returncode == 0 and "/hook/" not in p.stdout
    no_secret(p.stdout, p.stderr)


# --- loadgen notify RUN ---------------------------------------------------------------------


def test_loadgen_notify_sends_a_stored_run_whatever_its_verdict(runs: Runs, server: Server) -> None:
    regressed = runs.regressed_doc["run_id"]
    p = loadgen("notify", regressed, "--notify", server.hook("ok", "again"), "--db", runs.db)
    assert p.returncode == EXIT_OK, p.stdout + p.stderr
    assert f"of run {regressed} (regression)" in p.stdout
    no_secret(p.stdout, p.stderr)
    [got] = server.got("again")
    sent_at_run_time = server.got("runjson")[0].body
    # The same document as at the run's end, from the stored summary; only the report is not known.
    assert got.body == {**sent_at_run_time, "report": None}
    # LOADGEN_NOTIFY holds URLs separated by spaces; a passing run is sent too, when asked for.
    equal = runs.equal_doc["run_id"]
    p = loadgen("notify", equal[:-1], "--db", runs.db,
                env={"LOADGEN_NOTIFY": f"{server.hook('ok', 'envone')} {server.hook('ok', 'envtwo', 'slack')}"})
    assert p.returncode == EXIT_OK, p.stdout + p.stderr
    assert server.got("envone")[0].body["verdict"] == "pass" and server.got("envone")[0].body["run_id"] == equal
    check_slack(server.got("envtwo")[0].body)


def test_loadgen_notify_unknown_run_missing_url_and_unreachable_receiver(runs: Runs, server: Server) -> None:
    p = loadgen("notify", "nosuchrun-42", "--notify", server.hook("ok", "never"), "--db", runs.db)
    assert p.returncode == EXIT_USAGE and "nosuchrun-42" in one_line(p)
    p = loadgen("notify", "latest", "--db", runs.db)
    assert p.returncode == EXIT_USAGE and "--notify" in one_line(p)
    port = refused_port()
    p = loadgen("notify", "latest", "--db", runs.db, "--notify", f"http://127.0.0.1:{port}/hook/{SECRET}")
    assert p.returncode == EXIT_RUN, p.stdout + p.stderr
    line = one_line(p)
    assert f"http://127.0.0.1:{port}/***" in line and "refused" in line and "after 3 attempts" in line
    no_secret(p.stdout, p.stderr)
    assert not server.got("never")


# --- delivery: retries, back-off, timeouts; never the run's exit code -------------------------


def test_failed_deliveries_are_warnings_and_the_exit_code_stands(server: Server, tmp_path: Path) -> None:
    """One passing run told (--notify-on always) to a receiver that answers 503 twice, one that
    always answers 500, one that never answers, and a refused port: each attempt's timeout
    (LOADGEN_NOTIFY_TIMEOUT) and the back-off bound the run's end."""
    port = refused_port()
    hooks = [server.hook("flaky", "flaky"), server.hook("down", "down"), server.hook("hang", "hang"),
             f"http://127.0.0.1:{port}/hook/{SECRET}"]
    started = time.monotonic()
    p = run(server, f"sqlite:///{tmp_path}/r.db", "2.0", "--notify-on", "always",
            *[a for h in hooks for a in ("--notify", h)], env={"LOADGEN_NOTIFY_TIMEOUT": "1"})
    elapsed = time.monotonic() - started
    assert p.returncode == EXIT_OK, p.stdout + p.stderr
    no_secret(p.stdout, p.stderr)
    out = " ".join(p.stdout.split())
    assert f"notified json+http://127.0.0.1:{server.app.port if server.app else 0}/***" in out
    assert len(server.got("flaky")) == 3 and server.got("flaky")[-1].body["verdict"] == "pass"
    assert "HTTP 500 Internal Server Error: boom (after 3 attempts)" in out and len(server.got("down")) == 3
    assert "no answer within 1 s" in out and server.got("hang"), out[-1500:]
    assert f"http://127.0.0.1:{port}/*** could not be delivered: the connection was refused" in out
    assert out.count("could not be delivered") == 3
    # 2 s of load, then at most 3 attempts of 1 s and 3 s of back-off (the default timeout would take 33 s)
    assert elapsed < 30


def _quick(timeout_s: float = 5.0) -> Policy:
    return Policy(timeout_s=timeout_s, backoff_s=(0.2, 0.2))


def _findings(**over: Any) -> Findings:
    return findings_of(_summary(**over))


def test_retry_after_is_honoured_and_final_answers_are_not_retried(server: Server) -> None:
    f = _findings()
    [d] = send_all(f, [server.hook("busy", "busy")], policy=_quick())
    first, second = server.got("busy")
    assert d.ok and d.attempts == 2 and d.status == 200
    assert second.at - first.at >= 0.9  # Retry-After: 1, beyond the 0.2 s back-off
    # A Retry-After beyond the bound ends the delivery at once.
    [d] = send_all(f, [server.hook("later", "later")], policy=_quick())
    assert not d.ok and d.attempts == 1 and len(server.got("later")) == 1
    assert d.error == "HTTP 503 Service Unavailable; no time left to try again"
    [d] = send_all(f, [server.hook("bad", "bad")], policy=_quick())
    assert not d.ok and d.attempts == 1 and len(server.got("bad")) == 1
    assert d.error == "HTTP 400 Bad Request: invalid_payload"
    # A redirect is not followed: the payload goes to the URL given only.
    [d] = send_all(f, [server.hook("redirect", "redir")], policy=_quick())
    assert not d.ok and "redirect" in (d.error or "") and not server.got("redirmoved")
    # What a receiver says is shown scrubbed of the URL it was called on.
    [d] = send_all(f, [server.hook("echo", "echo")], policy=_quick())
    assert not d.ok and d.error and d.error.startswith("HTTP 404 Not Found: no hook at ***")
    no_secret(d.error, repr(d))


def test_every_url_is_sent_at_once_within_one_bound(server: Server) -> None:
    f = _findings()
    started = time.monotonic()
    ds = send_all(f, [server.hook("hang", "h1"), server.hook("hang", "h2"), server.hook("ok", "fine")],
                  policy=Policy(timeout_s=1.0, attempts=1))
    assert time.monotonic() - started < 20  # two hangs of 1 s each, side by side
    assert [d.ok for d in ds] == [False, False, True]
    assert ds[0].error == "no answer within 1 s" and ds[2].kind == "json" and ds[2].status == 200


# --- --notify-on, and a run that could not be carried out ----------------------------------


def test_notify_on_regression_skips_a_failed_threshold(server: Server, tmp_path: Path) -> None:
    p = run(server, f"sqlite:///{tmp_path}/r.db", "3.0", "--threshold", "p95<1ms", "--notify-on", "regression",
            "--notify", server.hook("ok", "onreg"))
    assert p.returncode == 1, p.stdout + p.stderr
    assert not server.got("onreg") and "notified" not in p.stdout


def test_a_run_that_could_not_be_carried_out_is_told_by_default(server: Server, tmp_path: Path) -> None:
    port = refused_port()
    p = run(server, f"sqlite:///{tmp_path}/r.db", "4.0", "--notify", server.hook("ok", "err"),
            "--notify", server.hook("ok", "errteams", "teams"), url=f"http://127.0.0.1:{port}/x")
    assert p.returncode == EXIT_RUN, p.stdout + p.stderr
    no_secret(p.stdout, p.stderr)
    [got] = server.got("err")
    check_document(got.body)
    assert got.body["verdict"] == "error" and got.body["exit_code"] == EXIT_RUN and got.body["error"]
    assert got.body["app_version"] == "4.0"
    body = check_teams(server.got("errteams")[0].body)
    assert body[0]["text"].startswith("loadgen ERROR") and "could not be carried out" in body[1]["text"]


# --- URLs: kinds, masking, absurd input -------------------------------------------------------


def test_the_kind_comes_from_the_host_or_a_prefix() -> None:
    kinds = {
        "https://hooks.slack.com/services/T0/B0/XYZ": "slack",
        "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x": "teams",
        "https://default1234.environment.api.powerplatform.com/powerautomate/automations/direct/x": "teams",
        "https://contoso.webhook.office.com/webhookb2/abc": "teams",
        "https://ci.example.com/hooks/loadgen": "json",
        "slack+http://127.0.0.1:9/x": "slack",
        "teams+https://example.com/x": "teams",
        "json+https://hooks.slack.com/services/x": "json",
    }
    for url, kind in kinds.items():
        hook = parse_webhook(url)
        assert hook.kind == kind, url
        assert "/***" in hook.shown and hook.shown in repr(hook) and "services" not in repr(hook) + hook.shown
    assert parse_webhook("slack+http://127.0.0.1:9/x?y=1").url == "http://127.0.0.1:9/x?y=1"
    assert masked(f"https://hooks.slack.com/services/{SECRET}?t={SECRET}") == "https://hooks.slack.com/***"
    assert masked(f"not a url {SECRET}") == "***"


@pytest.mark.parametrize(("value", "words"), [
    ("ftp://x/y", "not an http or https URL"),
    ("http://", "has no host"),
    (f"https://user:{SECRET}@example.com/{SECRET}", "user name or password"),
    (f"discord+https://example.com/{SECRET}", "not an http or https URL"),
    (f"hooks.slack.com/services/{SECRET}", "not an http or https URL"),
    (f"http://example.com:99999/{SECRET}", "cannot be read"),
    (f"http://example.com/\x07{SECRET}", "control characters"),
])
def test_absurd_urls_are_one_sentence_without_the_secret(value: str, words: str) -> None:
    with pytest.raises(UsageError) as exc:
        check_webhook(value, "--notify")
    assert words in str(exc.value) and str(exc.value).startswith("--notify ")
    no_secret(str(exc.value))


@pytest.mark.parametrize(("args", "env"), [
    (("--notify", "ftp://x"), {}),
    (("--notify", "http://"), {}),
    (("--notify", f"https://user:{SECRET}@example.com/{SECRET}"), {}),
    ((), {"LOADGEN_NOTIFY": f"http://example.com/ok mailto:{SECRET}@example.com"}),
    (("--notify", "http://127.0.0.1:9/x"), {"LOADGEN_NOTIFY_TIMEOUT": "soon"}),
])
def test_absurd_notify_input_stops_the_run_before_it_starts(server: Server, tmp_path: Path, args: tuple[str, ...],
                                                            env: dict[str, str]) -> None:
    before = len(server.posts), server.served
    p = loadgen("run", "--url", server.url("/ok"), "--rate", "5", "--run-time", "30s", "-q",
                "--db", f"sqlite:///{tmp_path}/r.db", *args, env=env, timeout=25)
    assert p.returncode == EXIT_USAGE, p.stdout + p.stderr
    line = one_line(p)
    assert "--notify" in line or "LOADGEN_NOTIFY" in line
    no_secret(p.stdout, p.stderr)
    assert (len(server.posts), server.served) == before  # refused before the run, not after it


# --- payloads: hostile names, hundreds of rows ------------------------------------------------

HOSTILE = "<!channel> *bold* _it_ ~gone~ `tick` a|b & <http://evil.example|click here>"


def _row(subject: str, i: int = 0) -> dict[str, Any]:
    return {"metric": "response_time", "label": "p95", "subject": subject, "unit": "ms", "baseline": 10.0 + i,
            "candidate": 40.0 + i, "change": 3.0, "change_kind": "relative", "threshold": 0.2,
            "verdict": "regression", "note": None}


def _summary(rows: list[dict[str, Any]] | None = None, thresholds: list[dict[str, Any]] | None = None,
             **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": "20260101-000000-abcd", "scenario": "checkout.py", "host": "http://127.0.0.1:1",
        "app_version": "1.2", "loadgen_version": "0.1.0", "test_type": "load",
        "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 60.0, "status": "completed", "exit_code": 0,
        "requests": 1200, "errors": 6, "error_rate": 0.005, "rps": 20.0,
        "latency_ms": {"p50": 12.0, "p95": 41.5, "p99": 80.25}, "thresholds": thresholds or [],
        "endpoints": {}, "warnings": [],
    }
    if rows is not None:
        doc["comparison"] = {"verdict": "regression" if rows else "pass", "summary": "REGRESSION: …",
                             "baseline": {"app_version": "1.1", "run_ids": ["a", "b", "c"]}, "rows": rows}
    return {**doc, **over}


def _threshold(expr: str, i: int = 0) -> dict[str, Any]:
    return {"expr": expr, "endpoint": None, "metric": "p95", "op": "<", "value": 300.0, "actual": 412.0 + i,
            "passed": False}


def test_markup_in_user_text_is_escaped() -> None:
    f = findings_of(_summary(rows=[_row(HOSTILE)], thresholds=[_threshold(f"{HOSTILE}: p95<300ms")],
                             app_version="*1.2*", scenario="<!here>.py", exit_code=1), report="/tmp/a *b*.html")
    assert f.verdict == "fail" and len(f.regressions) == 1
    texts = check_slack(payload("slack", f))
    joined = "\n".join(texts)
    for text in texts:
        # No raw control character of Slack's is left: no link, mention or broken entity.
        assert not re.search(r"[<>]|&(?!amp;|lt;|gt;)", text), text
        # Outside inline code, the user's characters format nothing.
        outside = re.sub(r"`[^`\n]*`", "", text)
        for word in ("bold", "_it_", "~gone~", "|", "evil", "channel", "here"):
            assert word not in outside, (word, text)
    assert "&lt;!channel&gt;" in joined and "&lt;http://evil.example|click here&gt;" in joined
    assert "`*1.2*`" in joined and texts[-1].endswith("report: `/tmp/a *b*.html`")
    teams = json.dumps(check_teams(payload("teams", f)))
    assert r"\\*bold\\* \\_it\\_ \\~gone\\~" in teams and r"\\`tick\\`" in teams
    assert "*1.2*" not in teams.replace(r"\\*", "")
    doc = payload("json", f)
    check_document(doc)
    # The JSON document is data: the user's text as it was.
    assert doc["regressions"][0]["subject"] == HOSTILE and doc["report"] == "/tmp/a *b*.html"


def test_hundreds_of_findings_stay_within_every_limit() -> None:
    rows = [_row(f"GET /api/{'x' * 900}/{i}", i) for i in range(400)]
    thresholds = [_threshold(f"GET /p{i}{'&' * 600}: p95<300ms", i) for i in range(300)]
    f = _findings(rows=rows, thresholds=thresholds, scenario="s" * 5000, app_version="v" * 3000,
                  run_id="r" * 500, exit_code=1)
    assert len(f.regressions) == 400 and len(f.failed_thresholds) == 300
    texts = check_slack(payload("slack", f))
    assert any("…and " in t and "more" in t for t in texts if t.startswith("*Regressions*"))
    assert any("…and " in t for t in texts if t.startswith("*Failed thresholds*"))
    body = check_teams(payload("teams", f))
    fact_sets = [el for el in body if el["type"] == "FactSet"]
    assert all(len(fs["facts"]) <= 20 for fs in fact_sets)
    assert any(el.get("text") == "…and 380 more" for el in body)
    doc = payload("json", f)
    assert len(doc["regressions"]) == 400 and len(doc["failed_thresholds"]) == 300  # complete


def test_the_error_verdict_reads_so_in_every_payload() -> None:
    f = findings_of({"run_id": "r1", "app_version": "9", "test_type": "load", "host": "http://127.0.0.1:1/x"},
                    error="no request was served: every connection was refused")
    assert f.verdict == "error"
    texts = check_slack(payload("slack", f))
    assert "could not be carried out" in texts[1] and "`no request was served" in texts[1]
    body = check_teams(payload("teams", f))
    assert "could not be carried out" in body[1]["text"]
    doc = payload("json", f)
    check_document(doc)
    assert doc["verdict"] == "error" and doc["exit_code"] == EXIT_RUN and doc["regressions"] == []
