"""The engine against hostile scenarios and targets: a run always ends, a signal always
stops it, requests cut off at the end are recorded, failed iterations are counted.

Runs that could hang go through the real CLI in a subprocess, so a hang is a
timeout here, not a stuck test session. Bounds are generous (a busy 2-core box).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hostile import STANDARD, HostileServer, ok_response
from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.scenario import load_scenario

LOADGEN = str(Path(sys.executable).with_name("loadgen"))
RUN_S, STOP_S = 2.0, 1.0
#: A run must end within run time + graceful stop + this (start-up of the interpreter included).
SLACK_S = 12.0


def _scenario(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "s.py"
    f.write_text(textwrap.dedent(body).lstrip())
    return f


def _cli(tmp_path: Path, args: list[str], *, signal_at: Path | None = None, sig: int = signal.SIGTERM,
         bound_s: float = RUN_S + STOP_S + SLACK_S) -> tuple[subprocess.CompletedProcess, float, dict | None]:
    """Run ``loadgen run ARGS``; with ``signal_at``, send ``sig`` once that file exists."""
    out = tmp_path / "summary.json"
    cmd = [LOADGEN, "run", *args, "--db", "none", "--quiet", "--summary-json", str(out)]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if signal_at is not None:
            while not signal_at.exists():
                assert time.monotonic() - t0 < bound_s, "the scenario never reached its blocking call"
                time.sleep(0.05)
            time.sleep(0.3)
            os.kill(p.pid, sig)
        stdout, stderr = p.communicate(timeout=bound_s + 5)
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        pytest.fail(f"loadgen did not end within {bound_s + 5:.0f}s (a hang)\n{stdout}\n{stderr}")
    took = time.monotonic() - t0
    cp = subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr)
    doc = json.loads(out.read_text()) if out.exists() else None
    return cp, took, doc


def _closed(f: Path, host: str) -> list[str]:
    return [str(f), "--host", host, "--users", "2", "--spawn-rate", "100",
            "--run-time", f"{RUN_S:g}s", "--graceful-stop", f"{STOP_S:g}s"]


@pytest.fixture(scope="module")
def target():
    with HostileServer() as srv:
        yield srv


def _ended_cleanly(cp: subprocess.CompletedProcess, took: float, doc: dict | None,
                   bound_s: float = RUN_S + STOP_S + SLACK_S) -> None:
    assert "Traceback" not in cp.stderr, cp.stderr
    assert doc is not None, f"no summary written (exit {cp.returncode})\n{cp.stdout}\n{cp.stderr}"
    assert took < bound_s


# -- symptom 3: tasks that never suspend -----------------------------------------

@pytest.mark.parametrize("body", [
    "undefined_name  # a typo on the first line: NameError before any await",
    "return 1  # no await at all",
])
def test_a_task_that_never_suspends_does_not_hang_the_run(tmp_path, target, body):
    f = _scenario(tmp_path, f"""
        from loadgen import User, task

        class U(User):
            @task
            async def t(self):
                {body}
    """)
    cp, took, doc = _cli(tmp_path, _closed(f, target.url))
    _ended_cleanly(cp, took, doc)


# -- symptom 3: signals while the loop is blocked ----------------------------------

@pytest.mark.parametrize("sig,block,workers", [
    (signal.SIGTERM, "time.sleep(1000)", "1"),
    (signal.SIGINT, "while True:\n                    pass", "1"),
    # A worker's stop arrives on a thread, not as a signal: the watchdog must break its loop too.
    (signal.SIGTERM, "time.sleep(1000)", "2"),
])
def test_a_signal_stops_a_run_whose_loop_is_blocked(tmp_path, target, sig, block, workers):
    mark = tmp_path / "blocked"
    f = _scenario(tmp_path, f"""
        import time
        from loadgen import User, task

        class U(User):
            @task
            async def t(self):
                await self.client.get("/ok")
                open({str(mark)!r}, "w").close()
                {block}
    """)
    # Without the signal the deadline would end it too: give it a long schedule so
    # only the signal can explain an early end.
    args = _closed(f, target.url) + ["--workers", workers]
    args[args.index("--run-time") + 1] = "60s"
    cp, took, doc = _cli(tmp_path, args, signal_at=mark, sig=sig, bound_s=30)
    _ended_cleanly(cp, took, doc, bound_s=30)
    assert doc["interrupted"] is True
    assert doc["requests"] >= 1


# -- symptom 3: the deadline --------------------------------------------------------

def test_a_blocking_task_cannot_outlive_the_deadline(tmp_path, target):
    f = _scenario(tmp_path, """
        import time
        from loadgen import User, task

        class U(User):
            @task
            async def t(self):
                await self.client.get("/ok")
                time.sleep(1000)
    """)
    cp, took, doc = _cli(tmp_path, _closed(f, target.url))
    _ended_cleanly(cp, took, doc)
    assert doc["requests"] >= 1


def test_a_task_swallowing_cancellation_does_not_keep_the_process_alive(tmp_path, target):
    f = _scenario(tmp_path, """
        import asyncio
        from loadgen import User, task

        class U(User):
            @task
            async def t(self):
                await self.client.get("/ok")
                while True:
                    try:
                        await asyncio.sleep(10)
                    except asyncio.CancelledError:
                        pass
    """)
    cp, took, doc = _cli(tmp_path, _closed(f, target.url))
    _ended_cleanly(cp, took, doc)
    assert any("cancel" in w for w in doc["warnings"]), doc["warnings"]


# -- symptom 3: SystemExit / KeyboardInterrupt --------------------------------------

@pytest.mark.parametrize("where,exc", [
    ("t", "SystemExit(3)"),
    ("t", "KeyboardInterrupt()"),
    ("on_start", "SystemExit('bye')"),
    ("on_stop", "KeyboardInterrupt()"),
])
def test_system_exit_in_a_scenario_ends_the_run_with_a_summary(tmp_path, target, where, exc):
    src = f"""
        from loadgen import User, task

        class U(User):
            async def on_start(self):
                {"raise " + exc if where == "on_start" else "pass"}

            async def on_stop(self):
                {"raise " + exc if where == "on_stop" else "pass"}

            @task
            async def t(self):
                await self.client.get("/ok")
                {"raise " + exc if where == "t" else "pass"}
    """
    f = _scenario(tmp_path, src)
    line = next(i for i, text in enumerate(f.read_text().splitlines(), 1) if "raise" in text)
    cp, took, doc = _cli(tmp_path, _closed(f, target.url))
    _ended_cleanly(cp, took, doc)
    # In process: the reason names the file and line.
    config = RunConfig(model="closed", users=2, spawn_rate=100, run_time_s=RUN_S, graceful_stop_s=STOP_S,
                       host=target.url)
    result = Engine(config, scenario=load_scenario(f), handle_signals=False).run()
    name = exc.split("(")[0]
    assert result.stop_reason == f"scenario raised {name} at {f}:{line}"


@pytest.mark.parametrize("exc", ["SystemExit(0)", "KeyboardInterrupt()", "ValueError('no')"])
def test_an_exit_at_import_is_one_sentence(tmp_path, exc):
    f = _scenario(tmp_path, f"""
        import loadgen
        raise {exc}
    """)
    cp = subprocess.run([LOADGEN, "run", str(f), "--host", "http://127.0.0.1:9", "--db", "none", "--quiet"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2
    assert "Traceback" not in cp.stderr
    assert f"{f}:2" in cp.stdout + cp.stderr


# -- symptom 1: requests cut off by the end of the run are recorded -------------------

def test_open_model_intended_equals_recorded_plus_dropped_with_a_stalling_target():
    seen = {"n": 0}
    lock = threading.Lock()

    def one_in_five(conn: socket.socket, req) -> bool:
        with lock:
            seen["n"] += 1
            n = seen["n"]
        if n % 5:
            conn.sendall(ok_response())
            return True
        return STANDARD["/stall"](conn, req)

    with HostileServer({"/fifth": one_in_five}) as srv:
        config = RunConfig(model="open", rate=50, run_time_s=2.0, graceful_stop_s=1.0, max_inflight=200)
        t0 = time.monotonic()
        result = Engine(config, adhoc=AdHocRequest(srv.url + "/fifth"), handle_signals=False).run()
        took = time.monotonic() - t0
        tot = result.recorder.totals
        assert tot.iterations + tot.dropped_iterations == 100
        assert tot.overall.requests == tot.iterations == srv.counts["/fifth"]
        assert tot.overall.errors_by_kind.get("cutoff") == 20
        assert took < 2.0 + 1.0 + 5.0


# -- symptom 12: a target that never accepts ------------------------------------------

def test_a_target_that_never_accepts_does_not_delay_the_end(tmp_path):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    # Fill the accept queue: later connects get no answer to their SYN at all.
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    try:
        run_s, stop_s = 3.0, 2.0
        cp, took, doc = _cli(tmp_path, ["--url", f"http://127.0.0.1:{port}/", "--rate", "5",
                                        "--run-time", "3s", "--graceful-stop", "2s"],
                             bound_s=run_s + stop_s + 8)
        assert doc is not None, cp.stdout + cp.stderr
        assert took < run_s + stop_s + 8
        assert doc["iterations"] + doc["dropped_iterations"] == 15
        assert doc["requests"] == doc["iterations"]
        assert set(doc["errors_by_kind"]) <= {"connect", "cutoff"}
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_on_stop_requests_to_a_target_that_never_accepts_do_not_delay_the_end(tmp_path, target):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    f = _scenario(tmp_path, f"""
        from loadgen import User, task, constant

        class U(User):
            wait_time = constant(0.2)

            @task
            async def t(self):
                await self.client.get("/ok")

            async def on_stop(self):
                await self.client.get("http://127.0.0.1:{port}/logout")
    """)
    try:
        cp, took, doc = _cli(tmp_path, _closed(f, target.url))
        _ended_cleanly(cp, took, doc)
        # Each user's logout was attempted and recorded (cut off: the connect never completes).
        assert doc["endpoints"]["GET /logout"]["requests"] == 2
    finally:
        for s in fillers:
            s.close()
        lsock.close()


# -- symptom 13: failed iterations are counted per task --------------------------------

def test_failed_iterations_are_counted_per_task(tmp_path, target):
    f = _scenario(tmp_path, """
        import asyncio
        from loadgen import User, task, constant

        class U(User):
            wait_time = constant(0.01)
            failed = {"good": 0, "bad": 0, "on_start": 0}

            async def on_start(self):
                if self.index == 0 and U.failed["on_start"] < 3:
                    U.failed["on_start"] += 1
                    raise RuntimeError("login failed")

            @task
            async def bad(self):
                await self.client.get("/ok")
                U.failed["bad"] += 1
                raise KeyError("missing")

            @task
            async def good(self):
                await self.client.get("/ok")
    """)
    sc = load_scenario(f)
    config = RunConfig(model="closed", users=2, spawn_rate=100, run_time_s=1.5, graceful_stop_s=1.0,
                       host=target.url)
    result = Engine(config, scenario=sc, handle_signals=False).run()
    counts = sc.task_sets[0].user_class.failed
    failed = result.recorder.totals.failed_iterations
    assert counts["bad"] > 0 and counts["on_start"] == 3
    assert failed == {"U.bad": counts["bad"], "U.on_start": 3}


def test_a_scenario_that_swallows_every_interruption_still_ends_the_process(tmp_path, target):
    f = _scenario(tmp_path, """
        import time
        from loadgen import User, task

        class U(User):
            @task
            async def t(self):
                await self.client.get("/ok")
                while True:
                    try:
                        time.sleep(1000)
                    except BaseException:
                        pass
    """)
    cp, took, doc = _cli(tmp_path, _closed(f, target.url), bound_s=35)
    # The last resort: no summary can be written while the loop is held, but the process ends.
    assert cp.returncode == 3
    assert "ignores every interruption" in cp.stderr
    assert took < 35
    # With workers, each ends itself the same way; the coordinator reports them dead and
    # still writes the run's summary (and would kill them past its own hard end).
    cp, took, doc = _cli(tmp_path, _closed(f, target.url) + ["--workers", "2"], bound_s=45)
    assert took < 45
    assert doc is not None, cp.stderr
    assert "Traceback" not in cp.stderr
    assert any("died" in w for w in doc["warnings"]), doc["warnings"]


def test_the_run_config_limits_and_name_cap_reach_the_client_and_recorder():
    def big(conn: socket.socket, req) -> bool:
        conn.sendall(ok_response(b"x" * 200_000))
        return True

    with HostileServer({"/big": big}) as srv:
        config = RunConfig(model="open", rate=20, run_time_s=1.0, graceful_stop_s=1.0, max_body_bytes=1024,
                           max_names=7)
        engine = Engine(config, adhoc=AdHocRequest(srv.url + "/big"), handle_signals=False)
        assert engine.recorder.max_names == 7
        tot = engine.run().recorder.totals
    assert tot.overall.requests == 20
    assert tot.overall.errors_by_kind == {"too_large": 20}


def test_open_model_keeps_its_count_when_a_task_blocks_past_the_deadline(tmp_path, target):
    f = _scenario(tmp_path, """
        import time
        from loadgen import User, task

        class U(User):
            blocked = []

            @task
            async def t(self):
                await self.client.get("/ok")
                if not U.blocked:
                    U.blocked.append(1)
                    time.sleep(30)  # holds the loop far past run time + graceful stop
    """)
    config = RunConfig(model="open", rate=10, run_time_s=2.0, graceful_stop_s=1.0, host=target.url)
    t0 = time.monotonic()
    result = Engine(config, scenario=load_scenario(f), handle_signals=False).run()
    assert time.monotonic() - t0 < 2.0 + 1.0 + 6.0
    tot = result.recorder.totals
    assert tot.iterations + tot.dropped_iterations == 20
    assert result.stop_reason == "deadline"
