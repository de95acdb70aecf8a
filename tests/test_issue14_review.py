"""Issue 14's finished parts under a hostile review: each test here failed before its fix.

The publish step after a usage error and under Ctrl-C, CI files on a pipe or an endless
device, a receiver that repeats the webhook's token, a target's user name (a token sent
as Basic auth), a change "from 0" in a notification, migration 004 on methods that are
not letters only, and the message without a baseline that named the candidate itself.
Real runs over loopback, a real webhook receiver, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, JUnitXml

from aiohttp_thread import ThreadedApp
from loadgen.errors import EXIT_FAILED, EXIT_USAGE
from loadgen.findings import findings_of
from loadgen.notify import payload, send_all
from loadgen.notify.deliver import Policy
from loadgen.outputs import render_junit, render_markdown, write_markdown
from loadgen.store import open_store
from loadgen.store.history import no_baseline
from test_notify import Server, check_document, loadgen, no_secret
from test_scenario_identity import _at_version_3, _row


@pytest.fixture(scope="module")
def receiver() -> Iterator[Server]:
    """``GET /ok``, a target; ``POST /hook/BEHAVIOUR/KEY``, a webhook receiver (tests/test_notify.py)."""
    srv = Server(delay_s=0.0)
    srv.app = ThreadedApp(srv.build, shutdown_timeout=1.0, access_log=False)
    with srv.app:
        yield srv


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOADGEN_", "GITHUB_")) and k != "DATABASE_URL"}
    return {**clean, **extra}


# --- the publish step -----------------------------------------------------------------------------


def test_a_missing_baseline_is_told_everywhere_and_every_copy_says_exit_2(receiver: Server, tmp_path: Path) -> None:
    """A CI gate whose baseline is gone exits 2 after the run: the summary file and the stored run
    said exit 0, and no CI file and no notification told anybody."""
    md, xml, summary = tmp_path / "perf.md", tmp_path / "junit.xml", tmp_path / "summary.json"
    db = f"sqlite:///{tmp_path}/r.db"
    p = loadgen("run", "--url", receiver.url("/ok"), "--rate", "20", "--run-time", "1s", "-q", "--db", db,
                "--app-version", "2.0", "--baseline-version", "1.0", "--markdown", str(md), "--junit", str(xml),
                "--summary-json", str(summary), "--notify", receiver.hook("ok", "nobase"))
    assert p.returncode == EXIT_USAGE, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    no_secret(p.stdout, p.stderr)
    why = "no completed runs of version '1.0'"
    doc = json.loads(summary.read_text())
    assert doc["exit_code"] == EXIT_USAGE and any(why in w for w in doc["warnings"]), doc
    [got] = receiver.got("nobase")
    check_document(got.body)
    assert got.body["verdict"] == "error" and got.body["exit_code"] == EXIT_USAGE and why in got.body["error"]
    assert got.body["summary"]["requests"] == doc["requests"] > 0  # what was measured is told too
    text = md.read_text(encoding="utf-8")
    assert text.startswith("## ⚠️ Performance: the run could not be carried out") and text.count(why) == 1
    suite = {s.name: s for s in JUnitXml.fromfile(str(xml))}["run"]
    [case] = list(suite)
    [error] = case.result
    assert isinstance(error, Error) and why in (error.message or "")
    # The stored run says so too, and `loadgen notify` later tells the same verdict.
    p = loadgen("notify", doc["run_id"], "--db", db, "--notify", receiver.hook("ok", "nobaselater"))
    assert p.returncode == 0, p.stdout + p.stderr
    [later] = receiver.got("nobaselater")
    assert later.body["verdict"] == "error" and later.body["exit_code"] == EXIT_USAGE


def test_ctrl_c_while_a_notification_waits_keeps_the_runs_exit_code(receiver: Server, tmp_path: Path) -> None:
    """Ctrl-C during a notification's wait ended the run with 130 instead of its own exit code."""
    summary = tmp_path / "summary.json"
    args = [sys.executable, "-m", "loadgen", "run", "--url", receiver.url("/ok"), "--rate", "20", "--run-time", "1s",
            "-q", "--db", "none", "--threshold", "p95<0.001ms", "--summary-json", str(summary),
            "--notify", receiver.hook("hang", "sigint")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(LOADGEN_NOTIFY_TIMEOUT="60"))
    try:
        deadline = time.monotonic() + 90
        while not receiver.got("sigint") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.got("sigint") and proc.poll() is None, "the notification was never sent"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in out + err, err[-2000:]
    no_secret(out, err)
    assert proc.returncode == EXIT_FAILED, out + err
    said = " ".join((out + err).split())
    assert "could not be delivered: interrupted (Ctrl-C) before an answer" in said, said
    assert json.loads(summary.read_text())["exit_code"] == EXIT_FAILED


# --- CI files on what is not a regular file ------------------------------------------------------


def test_a_step_summary_on_a_pipe_with_no_reader_is_a_warning_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "step_summary"
    os.mkfifo(fifo)
    failed: list[BaseException | None] = []

    def write() -> None:
        try:
            write_markdown(findings_of({"run_id": "r1"}), str(fifo), append=True)
            failed.append(None)
        except OSError as exc:
            failed.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(15)
    if writer.is_alive():  # release it: one open for reading and writing meets either side
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
        pytest.fail("writing the step summary to a pipe nobody reads blocked")
    [exc] = failed
    assert isinstance(exc, OSError) and "a pipe nobody reads" in str(exc)


def test_a_step_summary_on_an_endless_device_is_not_read_to_its_end() -> None:
    """``GITHUB_STEP_SUMMARY=/dev/zero`` (or /dev/full): the tail of the file was read to find a
    blank line, without end, until memory ran out."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from loadgen.findings import findings_of; from loadgen.outputs import write_markdown; "
            "write_markdown(findings_of({'run_id': 'r1'}), '/dev/zero', append=True)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-1000:]


def test_markdown_given_the_step_summary_itself_is_appended_once(tmp_path: Path) -> None:
    """``--markdown "$GITHUB_STEP_SUMMARY"``: the file was replaced (what earlier steps wrote was
    lost), then the same document appended to it again."""
    from rich.console import Console

    from loadgen.session.options import PublishOptions
    from loadgen.session.publish import publish

    step = tmp_path / "step_summary.md"
    step.write_text("## Build\n\nbuilt\n", encoding="utf-8")
    publish({"run_id": "r1", "exit_code": 0}, PublishOptions(markdown=str(tmp_path / "." / step.name),
                                                             step_summary=str(step)), Console(quiet=True))
    doc = render_markdown(findings_of({"run_id": "r1", "exit_code": 0}))
    assert step.read_text(encoding="utf-8") == "## Build\n\nbuilt\n\n" + doc


# --- secrets ----------------------------------------------------------------------------------------


def test_a_receiver_that_repeats_the_token_never_shows_it(receiver: Server) -> None:
    """The receiver's answer was scrubbed of the whole path and query only: a receiver that names
    the one path segment (the token) or the signature's value showed them in the warning."""
    [d] = send_all(findings_of({"run_id": "r1"}), [receiver.hook("echotoken", "echo2")],
                   policy=Policy(timeout_s=5.0, backoff_s=(0.2, 0.2)))
    assert not d.ok and d.status == 404 and d.error and d.error.startswith("HTTP 404 Not Found: unknown hook ")
    no_secret(d.error)


def test_a_user_name_in_the_target_reaches_no_chat_room_or_pull_request() -> None:
    """``https://TOKEN@host``: a token sent as Basic auth's user name; the findings dropped the
    target's query (for its tokens) but kept its user-info."""
    token = "ghp_T0KENuser"
    f = findings_of({"run_id": "r1", "host": f"https://{token}:***@api.example:8443/x?api_key=k", "exit_code": 0})
    assert f.host == "https://***@api.example:8443/x"
    texts = [render_markdown(f), render_junit(f).decode(), *(json.dumps(payload(k, f)) for k in ("slack", "teams",
                                                                                                "json"))]
    assert all(token not in t for t in texts)


# --- one way to read a finding ---------------------------------------------------------------------------


def test_a_change_from_zero_and_a_limit_read_the_same_in_a_notification_and_the_markdown() -> None:
    """The notifications cast a finding to a comparison row, so a change from 0 showed "–" (the
    markdown: "from 0"), and wrote a threshold's limit their own way (0.50 % for 0.5 %)."""
    row = {"metric": "cpu_usage", "label": "CPU", "subject": "api", "unit": "percent", "baseline": 0.0,
           "candidate": 12.5, "change": None, "change_kind": "relative", "threshold": 0.15, "verdict": "regression",
           "note": None}
    threshold = {"expr": "error_rate<=0.5%", "endpoint": None, "metric": "error_rate", "op": "<=", "value": 0.005,
                 "actual": 0.02, "passed": False}
    f = findings_of({"run_id": "r1", "exit_code": 1, "thresholds": [threshold],
                     "comparison": {"baseline": {"app_version": "1.0", "run_ids": ["b1"]}, "rows": [row]}})
    md = render_markdown(f)
    assert "| from 0 |" in md and "| 2.00 % | <= 0.5 % |" in md
    slack = json.dumps(payload("slack", f), ensure_ascii=False)
    assert "0.0 % → 12.5 % (from 0, threshold +15 %)" in slack and "2.00 %, must be &lt;= 0.5 %" in slack
    teams = json.dumps(payload("teams", f), ensure_ascii=False)
    assert "0.0 % → 12.5 % (from 0, threshold +15 %)" in teams and "2.00 %, must be <= 0.5 %" in teams


# --- the scenario identity --------------------------------------------------------------------------


def test_the_migration_keeps_methods_that_are_not_letters_only(db_url: str) -> None:
    """An HTTP method is a token (M-SEARCH, BREW_2): its old ad-hoc key became a file's name."""
    old = {"M-SEARCH http://127.0.0.1:8/x": "M-SEARCH /x", "BREW_2 https://h.example/": "BREW_2 /",
           "PROP.FIND http://[::1]:9/a?b=1#c": "PROP.FIND /a?b=1"}

    async def go() -> dict[str, str]:
        async with await open_store(db_url, migrate=False) as store:
            await _at_version_3(store)
            for i, key in enumerate(old):
                await store.begin_run(_row(f"r{i}", "1.0", key))
            await store.migrate()
            return {r["id"]: r["scenario"] for r in await store.list_runs(limit=10)}

    stored = asyncio.run(go())
    assert stored == {f"r{i}": new for i, new in enumerate(old.values())}


def test_without_a_baseline_the_candidate_does_not_count_as_what_the_version_holds(db_url: str) -> None:
    """A first run compared with its own version was told the version holds its own scenario."""
    async def go() -> tuple[str, str]:
        async with await open_store(db_url) as store:
            await store.begin_run(_row("c1", "1.0", "content.py", started=2))
            await store.begin_run(_row("o1", "1.0", "api.py", started=1))
            cand: dict[str, Any] = await store.get_run("c1")
            first = await no_baseline(store, "1.0", cand)
            await store.begin_run(_row("c2", "1.1", "content.py", started=3))
            return first, await no_baseline(store, "1.1", await store.get_run("c2"))

    first, alone = asyncio.run(go())
    assert "version '1.0' has 'api.py' (load, 1 run);" in first and "'content.py' (" not in first, first
    assert alone.endswith("; version '1.1' has no other completed runs: run that version first"), alone
