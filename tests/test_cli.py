"""The command line as a user meets it: one sentence and exit 2 for bad input, no tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest


def loadgen(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=timeout, **kw
    )


def _one_sentence(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_version():
    p = loadgen("--version")
    assert p.returncode == 0 and p.stdout.startswith("loadgen ")


@pytest.mark.parametrize(
    "source,expect",
    [
        ("from loadgen import User, task\nclass U(User):\n    @task\n    async def t(self)\n        pass\n", ":4: syntax error"),
        ("import no_such_module_here\n", ":1: ModuleNotFoundError"),
        ("from loadgen import User\nclass U(User):\n    pass\n", "no tasks found"),
        ("from loadgen import User, task\nclass U(User):\n    @task\n    def t(self):\n        pass\n", ":3: task U.t must be 'async def'"),
        ("x = 1\n\n\nraise RuntimeError('boom')\n", ":4: RuntimeError: boom"),
        ("options = {'userz': 3}\n", "unknown key"),
    ],
)
def test_broken_scenario_files(tmp_path, source, expect):
    f = tmp_path / "broken.py"
    f.write_text(source)
    p = loadgen("run", str(f), "--host", "http://127.0.0.1:9")
    assert p.returncode == 2
    line = _one_sentence(p)
    assert expect in line and "broken.py" in line


def test_missing_scenario_file(tmp_path):
    p = loadgen("run", str(tmp_path / "nope.py"))
    assert p.returncode == 2 and "does not exist" in _one_sentence(p)


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--url", "http://127.0.0.1:9/", "--run-time", "5x"], "not a duration"),
        (["--url", "htp://x"], "not an http"),
        (["--url", "http://127.0.0.1:99999/"], "not a valid URL"),
        (["--url", "http://127.0.0.1:9/", "--stages", "10s"], "DURATION:TARGET"),
        (["--url", "http://127.0.0.1:9/", "--test-type", "smoke"], "is not one of"),
        (["--url", "http://127.0.0.1:9/", "--header", "nocolon"], "Name: value"),
        ([], "scenario file"),
    ],
)
def test_bad_options(args, expect):
    p = loadgen("run", *args)
    assert p.returncode == 2
    assert expect in _one_sentence(p)


def test_environment_is_read_and_validated():
    env = dict(os.environ, RUN_TIME="forever")
    p = loadgen("run", "--url", "http://127.0.0.1:9/", env=env)
    assert p.returncode == 2 and "'forever' is not a duration" in _one_sentence(p)


def test_refused_connections_are_counted_without_a_traceback(tmp_path):
    out = tmp_path / "s.json"
    p = loadgen("run", "--url", "http://127.0.0.1:9/", "--rate", "50", "--run-time", "1s", "-q", "--summary-json", str(out))
    assert p.returncode == 3, p.stderr
    assert "could not be reached" in _one_sentence(p)
    s = json.loads(out.read_text())
    assert s["requests"] == 50 and s["errors_by_kind"] == {"connect": 50}


def test_adhoc_post_with_headers_and_body(start_demo, tmp_path):
    demo = start_demo()
    out = tmp_path / "s.json"
    p = loadgen(
        "run", "--url", demo.url + "/api/auth/login", "--method", "POST",
        "-H", "Content-Type: application/json", "--body", '{"username":"a","password":"password"}',
        "--rate", "20", "--run-time", "1s", "-q", "--summary-json", str(out),
    )
    assert p.returncode == 0, p.stderr
    s = json.loads(out.read_text())
    assert s["requests"] == 20 and s["status_codes"] == {"200": 20}
    assert list(s["endpoints"]) == ["POST /api/auth/login"]


def test_sigint_stops_gracefully_and_still_writes_the_summary(start_demo, tmp_path):
    demo = start_demo()
    out = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", "--url", demo.url + "/health", "--rate", "100",
         "--run-time", "60s", "-q", "--summary-json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    s = json.loads(out.read_text())
    assert s["interrupted"] is True and s["requests"] > 0 and s["duration_s"] < 30
    assert "interrupted" in stdout


def test_second_sigint_stops_at_once(start_demo, tmp_path):
    demo = start_demo(latency_ms=20000)  # every request hangs for 20 s
    out = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", "--url", demo.url + "/", "--users", "3",
         "--run-time", "60s", "--graceful-stop", "60s", "-q", "--summary-json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)  # far less than the 60 s graceful stop
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert json.loads(out.read_text())["interrupted"] is True
