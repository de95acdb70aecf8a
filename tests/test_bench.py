"""bench/run.py and its harness: the command line, what soak.py imports, the peers' parsers, a
client reaped with os.wait4, and the report's sections. Nothing here generates load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py)
from harness.install import Tools  # noqa: E402
from harness.peers import parse_hey, parse_k6, parse_wrk  # noqa: E402
from harness.processes import ChildRun, Children, Pinning, Processes, run_client  # noqa: E402
from harness.report import report  # noqa: E402
from harness.rows import Row  # noqa: E402
from harness.session import Session  # noqa: E402


def test_help_lists_every_option() -> None:
    out = subprocess.run([sys.executable, str(BENCH / "run.py"), "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    for flag in ("--only", "--duration", "--rates", "--overhead-rounds", "--pg-url", "--no-install",
                 "--server-cpu", "--client-cpu", "--skip-k6-freeze"):
        assert flag in out


def test_soak_imports_what_it_uses() -> None:
    for name in ("REPO", "BENCH", "WORK", "LOGS", "SPOOL", "CHILDREN", "CLIENT_CPU", "start_nginx", "pinned",
                 "free_port", "sqlite_url", "log", "stop_all_children"):
        assert hasattr(run, name), name
    assert run.pinned(run.CLIENT_CPU, ["x"]) == ["taskset", "-c", "1", "x"]
    p = subprocess.Popen(["sleep", "30"], start_new_session=True)
    run.CHILDREN.append(p)
    run.stop_all_children()
    assert p.returncode is not None and not run.CHILDREN


def test_options_and_parts() -> None:
    args = run.parse_args(["--only", "peers,sweep", "--rates", "1k,2.5k"])
    assert args.only == ["peers", "sweep"] and args.rates == [1000, 2500]
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "nope"])


def _run(stdout: str, rc: int = 0) -> ChildRun:
    return ChildRun(argv=[], rc=rc, cpu_s=1.0, stdout=stdout)


def test_peer_parsers() -> None:
    wrk = ("  Latency Distribution\n     50%  1.00ms\n     90%    2.00ms\n     99%    3.50ms\n"
           "  200000 requests in 10.00s, 20.00MB read\n  Non-2xx or 3xx responses: 2\n")
    r = parse_wrk(Row("wrk", "m"), _run(wrk))
    assert r.ok and r.requests == 200000 and r.rps == 20000 and r.errors == 2 and r.p99_ms == 3.5
    hey = ("Summary:\n  Total:\t10.0000 secs\n\nLatency distribution:\n  50% in 0.0010 secs\n"
           "  99% in 0.0030 secs\n\nStatus code distribution:\n  [200]\t9000 responses\n  [500]\t1000 responses\n")
    r = parse_hey(Row("hey", "m"), _run(hey))
    assert r.ok and r.requests == 10000 and r.errors == 1000 and r.p50_ms == 1.0
    assert not parse_wrk(Row("wrk", "m"), _run("", rc=1)).ok


def test_k6_summary(tmp_path: Path) -> None:
    summary = tmp_path / "k6.json"
    summary.write_text(json.dumps({"state": {"testRunDurationMs": 2000},
                                   "metrics": {"http_reqs": {"values": {"count": 500}},
                                               "http_req_duration": {"values": {"med": 1, "p(90)": 2, "p(99)": 3}}}}))
    r = parse_k6(Row("k6", "m"), _run(""), summary)
    assert r.ok and r.rps == 250 and r.p99_ms == 3


def test_client_reaped_with_its_own_cpu_and_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.processes
    monkeypatch.setattr(harness.processes, "LOGS", tmp_path)
    monkeypatch.setattr(harness.processes, "WORK", tmp_path)
    procs = Processes(Pinning(taskset=False), Children())
    burn = [sys.executable, "-c", "import time\nt=time.process_time()\nwhile time.process_time()-t<0.2: pass"]
    r = run_client(procs, "test-burn", burn, timeout=30)
    assert r.rc == 0 and r.cpu_s is not None and r.cpu_s >= 0.15 and not procs.children.procs
    r = run_client(procs, "test-sleep", ["sleep", "30"], timeout=0.3)
    assert r.timed_out and r.wall_s < 10 and "timed out" in r.error()


def test_report_sections() -> None:
    args = run.parse_args(["--only", "peers,loadgen,sweep"])
    s = Session(args, Processes(Pinning(), Children()), Tools(["loadgen"], None, None, Path("/nonexistent")),
                nginx="nginx is not installed")
    ok = Row("wrk", "closed", ok=True, requests=1000, duration_s=1.0, rps=1000.0, us_per_req=5.0)
    s.results["peers"].append(ok)
    s.results["loadgen"].append(Row("loadgen", "closed", ok=True, requests=500, duration_s=1.0, rps=500.0,
                                    us_per_req=10.0))
    s.results["sweep"].append(Row("loadgen", "open --rate 1000", error="exit 2: boom", extra={"target_rate": 1000}))
    text = report(s, ["--only", "peers,loadgen,sweep"], "now", {"nproc": "2", "cpu": "x", "kernel": "k", "os": "o",
                  "python": "3"}, {"loadgen": "v"}, [], None)
    assert "**nginx target unavailable: nginx is not installed**" in text
    assert "| closed | n/a | 0.50× | n/a | n/a | n/a | n/a |" in text  # k6, wrk, Locust, hey; CPU: k6, Locust
    assert "FAILED: exit 2: boom" in text
