"""Every bad input is one sentence and exit 2 (issue 10, symptom 9).

About a hundred bad command lines, run in-process through ``loadgen.cli.main``
(a few as real subprocesses, environment variables included). For each: exit
code 2, no traceback, a message of one line. Every case starts from a command
line that would otherwise run (1 s against a closed port, nothing stored), so
a value that slips through runs instead of failing fast and the test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loadgen.cli import main

# A run that would start if the case's value were accepted: later options win.
BASE = ["run", "--url", "http://127.0.0.1:9/", "--run-time", "1s", "-q", "--db", "none"]
LONG = "x" * 100_000

BAD: list[tuple[list[str], str]] = [
    # durations: non-finite, negative, zero where it cannot be, absurd, malformed
    (["--run-time", "inf"], "--run-time"),
    (["--run-time", "1e400"], "--run-time"),
    (["--run-time", "nan"], "--run-time"),
    (["--run-time", "-5s"], "--run-time"),
    (["--run-time", "0"], "--run-time"),
    (["--run-time", "99999999999999999999"], "--run-time"),
    (["--run-time", "100000h"], "--run-time"),
    (["--run-time", ""], "--run-time"),
    (["--run-time", "1h30"], "--run-time"),
    (["--run-time", "5x"], "--run-time"),
    (["--run-time", LONG], "--run-time"),
    (["--timeout", "inf"], "--timeout"),
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "nan"], "--timeout"),
    (["--timeout", "-1"], "--timeout"),
    (["--timeout", "0.0000001s"], "--timeout"),
    (["--connect-timeout", "0"], "--connect-timeout"),
    (["--connect-timeout", "inf"], "--connect-timeout"),
    (["--connect-timeout", "1e400"], "--connect-timeout"),
    (["--graceful-stop", "inf"], "--graceful-stop"),
    (["--graceful-stop", "-1"], "--graceful-stop"),
    (["--graceful-stop", "NaN"], "--graceful-stop"),
    # rates and counts
    (["--rate", "nan"], "--rate"),
    (["--rate", "inf"], "--rate"),
    (["--rate", "inf", "--users", "1"], "--rate"),
    (["--rate", "-inf"], "--rate"),
    (["--rate", "0"], "--rate"),
    (["--rate", "-1"], "--rate"),
    (["--rate", "1e12"], "--rate"),
    (["--rate", "abc"], "--rate"),
    (["--rate", ""], "--rate"),
    (["--rate", "1e400"], "--rate"),
    (["--spawn-rate", "nan"], "--spawn-rate"),
    (["--spawn-rate", "0"], "--spawn-rate"),
    (["--spawn-rate", "inf"], "--spawn-rate"),
    (["--spawn-rate", "-3"], "--spawn-rate"),
    (["--spawn-rate", "1e400"], "--spawn-rate"),
    (["--users", "-1"], "--users"),
    (["--users", "0"], "--users"),
    (["--users", "1e9"], "--users"),
    (["--users", "1000000000"], "--users"),
    (["--users", "abc"], "--users"),
    (["--users", "2.5"], "--users"),
    (["--users", "nan"], "--users"),
    (["--max-inflight", "0"], "--max-inflight"),
    (["--max-inflight", "-1"], "--max-inflight"),
    (["--max-inflight", "10000000000"], "--max-inflight"),
    (["--max-inflight", "many"], "--max-inflight"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "lucky"], "--seed"),
    (["--seed", "1" * 40], "--seed"),
    # stages
    (["--stages", "1s:nan"], "stage"),
    (["--stages", "1s:inf"], "stage"),
    (["--stages", "10s"], "stage"),
    (["--stages", "garbage"], "stage"),
    (["--stages", ","], "--stages"),
    (["--stages", "10s:-1"], "stage"),
    (["--stages", "inf:10"], "stage"),
    (["--stages", "1s:1e12"], "stage"),
    (["--stages", "10s:100,,x"], "stage"),
    (["--stages", "10s:100:5"], "'10s:100:5'"),  # not an emoji
    (["--stages", ",".join(["1s:1"] * 20_000)], "--stages"),
    # model, arrival, test type, stress options
    (["--test-type", "smoke"], "--test-type"),
    (["--arrival", "burst", "--rate", "5"], "--arrival"),
    (["--model", "half"], "--model"),
    (["--model", "open"], "open model"),
    (["--break-error-rate", "-1"], "--break-error-rate"),
    (["--break-error-rate", "2"], "--break-error-rate"),
    (["--break-error-rate", "nan"], "--break-error-rate"),
    (["--break-error-rate", "x"], "--break-error-rate"),
    (["--break-p95", "inf"], "--break-p95"),
    (["--break-p95", "0"], "--break-p95"),
    # URLs
    (["--url", ""], "--url"),
    (["--url", "ftp://x/"], "--url"),
    (["--url", "http://"], "--url"),
    (["--url", "http://h:0/"], "--url"),
    (["--url", "http://h:70000/"], "--url"),
    (["--url", "http://h:-1/"], "--url"),
    (["--url", "http://h/a b"], "--url"),
    (["--url", "http://h/a\x00b"], "--url"),
    (["--url", "http://h/a\r\nX-Injected: 1"], "--url"),
    (["--url", "http://h\t/"], "--url"),
    (["--url", "http://" + "a" * 300 + "/"], "--url"),
    (["--url", "http://h/" + LONG], "--url"),
    (["--url", "http://bad_host!/"], "--url"),
    (["--url", "http://[::1/"], "--url"),
    (["--url", "http://h/\u00fc"], "--url"),
    (["--url", "127.0.0.1:80"], "--url"),
    (["--host", "http://"], "--host"),
    (["--host", "ftp://x"], "--host"),
    (["--host", "http://h:99999"], "--host"),
    (["--host", "http://h/ x"], "--host"),
    # methods and headers
    (["--method", "GE T"], "--method"),
    (["--method", ""], "--method"),
    (["--method", "GET\r\n"], "--method"),
    (["--method", "G(ET"], "--method"),
    (["--method", "M" * 1000], "--method"),
    (["-H", "X-Name: \u4e2d\u6587"], "--header"),
    (["-H", "X-Name: a\r\nInjected: 1"], "--header"),
    (["-H", "X-Name: a\nb"], "--header"),
    (["-H", "X-Name: a\x00b"], "--header"),
    (["-H", "X-Name: a\x7fb"], "--header"),
    (["-H", "nocolon"], "--header"),
    (["-H", ": value"], "--header"),
    (["-H", "Bad Name: v"], "--header"),
    (["-H", "Bad(Name): v"], "--header"),
    (["-H", "X: " + LONG], "--header"),
    (["--body", "@/nonexistent/file"], "--body"),
    (["--body", "@/"], "--body"),
    # gates, stores, observability, workers, shards
    (["--threshold", "garbage"], "threshold"),
    (["--threshold", "p95<"], "threshold"),
    (["--threshold", "p95<infms"], "threshold"),
    (["--threshold", "error_rate<nan%"], "threshold"),
    (["--db", "garbage"], "--db"),
    (["--db", "mysql://x/y"], "--db"),
    (["--db", "sqlite://"], "--db"),
    (["--db", "postgresql://h:99999/x"], "--db"),
    (["--workers", "0"], "--workers"),
    (["--workers", "-1"], "--workers"),
    (["--workers", "abc"], "--workers"),
    (["--workers", "100000"], "--workers"),
    (["--metrics-port", "99999"], "--metrics-port"),
    (["--metrics-port", "-1"], "--metrics-port"),
    (["--metrics-port", "http"], "--metrics-port"),
    (["--metrics-grace", "inf"], "--metrics-grace"),
    (["--collect-interval", "0"], "--collect-interval"),
    (["--collect-interval", "inf"], "--collect-interval"),
    (["--monitor", "garbage"], "--monitor"),
    (["--queue", "garbage"], "--queue"),
    (["--shard", "3/2", "--run-id", "r1", "--db", "sqlite:///x.db"], "--shard"),
    (["--shard", "x"], "--shard"),
    (["--shard-wait", "inf", "--shard", "0/2", "--run-id", "r1", "--db", "sqlite:///x.db"], "--shard-wait"),
    (["--run-id", "bad id!"], "--run-id"),
    (["--baseline-runs", "0"], "--baseline-runs"),
    (["--baseline-runs", "nan"], "--baseline-runs"),
    (["--on-worker-failure", "panic"], "--on-worker-failure"),
    (["--thresholds-file", "/nonexistent/th.json"], "/nonexistent/th.json"),
    # response limits and the endpoint-name cap
    (["--max-head-size", "0"], "--max-head-size"),
    (["--max-head-size", "-1"], "--max-head-size"),
    (["--max-head-size", "inf"], "--max-head-size"),
    (["--max-body-size", "1e400"], "--max-body-size"),
    (["--max-body-size", "10XB"], "--max-body-size"),
    (["--max-body-size", "nan"], "--max-body-size"),
    (["--max-body-size", "100PiB"], "--max-body-size"),
    (["--max-decoded-size", "-5MiB"], "--max-decoded-size"),
    (["--max-decoded-size", ""], "--max-decoded-size"),
    (["--max-names", "0"], "--max-names"),
    (["--max-names", "-1"], "--max-names"),
    (["--max-names", "lots"], "--max-names"),
    (["--max-names", "1e9"], "--max-names"),
    # the command line itself
    (["--no-such-option"], "--no-such-option"),
    (["--users"], "--users"),
]


def _ids() -> list[str]:
    return [" ".join(a)[:60].encode("unicode_escape").decode() for a, _ in BAD]


def _run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out, err


def _assert_one_sentence(code: int, out: str, err: str, expect: str) -> str:
    assert "Traceback" not in out + err
    assert code == 2, (code, out, err)
    lines = [ln for ln in (err + out).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert expect in lines[0], lines[0]
    assert len(lines[0]) < 600, "the value is shortened in the message"
    return lines[0]


@pytest.mark.parametrize("args,expect", BAD, ids=_ids())
def test_bad_command_line_is_one_sentence_and_exit_2(args, expect, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run_in_process([*BASE, *args], capsys)
    _assert_one_sentence(code, out, err, expect)


def test_there_are_about_a_hundred_cases():
    assert len(BAD) >= 100


@pytest.mark.parametrize(
    "env,expect",
    [
        ({"RUN_TIME": "inf"}, "--run-time"),
        ({"USERS": "abc"}, "--users"),
        ({"LOADGEN_RATE": "nan"}, "--rate"),
        ({"SPAWN_RATE": "1e400"}, "--spawn-rate"),
        ({"LOADGEN_MAX_BODY_SIZE": "lots"}, "--max-body-size"),
        ({"LOADGEN_MAX_NAMES": "0"}, "--max-names"),
        ({"TARGET_HOST": "http://user:s3cret@h:99999"}, "--host"),
    ],
)
def test_bad_environment_as_a_real_process(env, expect, tmp_path):
    """A few as real subprocesses: the console script's path, the environment's names."""
    args = ["run", "-q", "--db", "none"] + ([] if "RUN_TIME" in env else ["--run-time", "1s"])
    if "TARGET_HOST" not in env:
        args[1:1] = ["--url", "http://127.0.0.1:9/"]
    else:
        scenario = tmp_path / "s.py"
        scenario.write_text("from loadgen import User, task\nclass U(User):\n    @task\n    async def t(self):\n"
                            "        await self.client.get('/')\n")
        args[1:1] = [str(scenario)]
    p = subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=60,
                       env={**os.environ, **env}, cwd=tmp_path)
    _assert_one_sentence(p.returncode, p.stdout, p.stderr, expect)
    assert "s3cret" not in p.stdout + p.stderr


def test_credentials_are_masked_in_messages(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run_in_process([*BASE, "--url", "http://user:s3cret@h:99999/"], capsys)
    line = _assert_one_sentence(code, out, err, "--url")
    assert "s3cret" not in line and "user:***@" in line


def test_good_values_still_parse():
    from loadgen.config import RunConfig, parse_size

    assert parse_size("64KiB", what="--max-head-size") == 65536
    assert parse_size("10MB", what="x") == 10_000_000
    assert parse_size("1GiB", what="x") == 1 << 30
    assert parse_size("1048576", what="x") == 1048576
    assert parse_size("1.5 MiB", what="x") == 3 << 19
    cfg = RunConfig(host="http://u:p@127.0.0.1:8080/base", rate=1_000_000.0, model="open", users=1_000_000,
                    max_head_bytes=4096, max_body_bytes=1, max_decoded_bytes=1 << 40, max_names=1)
    assert cfg.max_names == 1


def test_a_scenario_file_name_that_is_not_utf8_is_one_sentence(tmp_path):
    """A Latin-1 name on a UTF-8 file system: the summary, spool and store keep text, so it is
    refused before the run (it crashed the store writer and the summary once)."""
    name = os.fsencode(tmp_path) + b"/bad\xffname.py"
    with open(name, "wb") as f:
        f.write(b"from loadgen import User, task\nclass U(User):\n    @task\n    async def t(self):\n"
                b"        await self.client.get('/')\n")
    p = subprocess.run([sys.executable, "-m", "loadgen", "run", os.fsdecode(name), "--host", "http://127.0.0.1:9",
                        "--run-time", "1s", "-q"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       errors="replace")
    _assert_one_sentence(p.returncode, p.stdout, p.stderr, "is not valid UTF-8")
