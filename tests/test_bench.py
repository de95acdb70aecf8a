"""bench/run.py and its harness: the command line, what soak.py imports, the peers' parsers, a
client reaped with os.wait4, and the report's sections. Nothing here generates load."""

from __future__ import annotations

import json
import shutil
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
from harness.tls import H1, H2, check_protocol, check_works, make_cert, render_conf, start_tls_nginx, \
    tls_section, wrong_lines  # noqa: E402


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
    assert run.parse_args(["--only", "tls"]).only == ["tls"] and "tls" in run.parse_args([]).only
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


def test_tls_conf_renders_and_nginx_accepts_it(tmp_path: Path) -> None:
    conf = render_conf(4431, 4432, tmp_path, tmp_path / "c.pem", tmp_path / "k.pem")
    assert "listen 127.0.0.1:4431 ssl http2 backlog=4096;" in conf and "listen 127.0.0.1:4432;" in conf
    assert f"ssl_certificate_key {tmp_path}/k.pem;" in conf and "{{" not in conf
    if not (shutil.which("nginx") and shutil.which("openssl")):
        pytest.skip("nginx or openssl not installed")
    cert = make_cert(tmp_path)
    assert not isinstance(cert, str), cert
    (tmp_path / "nginx.conf").write_text(render_conf(4431, 4432, tmp_path, *cert))
    cp = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                         "-e", str(tmp_path / "error.log")], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr


def test_tls_protocol_check_fails_a_row_that_fell_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real nginx with TLS: HTTP/1.1 requests of the HTTP/2 path are logged, and such a row is failed."""
    if not (shutil.which("nginx") and shutil.which("openssl")):
        pytest.skip("nginx or openssl not installed")
    import harness.processes
    import harness.servers
    for mod in (harness.processes, harness.servers):
        monkeypatch.setattr(mod, "LOGS", tmp_path)
    monkeypatch.setattr(harness.processes, "WORK", tmp_path)
    procs = Processes(Pinning(taskset=False), Children())
    try:
        t = start_tls_nginx(procs, tmp_path / "nginx")
        assert not isinstance(t, str), t
        assert check_works(t) is None  # one HTTP/1.1 GET of /h1: no line; of /h2: one line
        lines = wrong_lines(t.wrong_log, 0)
        assert lines == ["HTTP/1.1 200 GET /h2"]
        assert t.server.stub_status()["requests"] >= 2
    finally:
        procs.children.stop_all()
    row = check_protocol(Row("loadgen", "h2", ok=True, requests=1, extra={"nginx_requests": 1}), H2, lines)
    assert not row.ok and row.error.startswith("not HTTP/2.0: nginx served 1 as HTTP/1.1")
    row = check_protocol(Row("k6", "h1", ok=True, requests=9, extra={"nginx_requests": 10}), H1, [])
    assert row.ok and row.extra["protocol_check"] == "all 10 served as HTTP/1.1"
    assert not check_protocol(Row("k6", "h1", ok=True, requests=9), H1, []).ok  # nothing counted: not verified


def test_tls_section() -> None:
    s = Session(run.parse_args(["--only", "tls"]), Processes(Pinning(), Children()),
                Tools(["loadgen"], None, None, Path("/nonexistent")))
    s.results["tls"] += [
        Row("loadgen", "HTTPS, HTTP/1.1", ok=True, requests=1000, duration_s=1.0, rps=1000.0, us_per_req=20.0,
            extra={"protocol": H1, "nginx_requests": 1000, "protocol_check": "all 1,000 served as HTTP/1.1"}),
        Row("k6", "HTTPS, HTTP/1.1", ok=True, requests=500, duration_s=1.0, rps=500.0, us_per_req=40.0,
            extra={"protocol": H1, "nginx_requests": 500}),
        Row("loadgen", "HTTPS, HTTP/2", error="not HTTP/2.0: nginx served 5 as HTTP/1.1", extra={"protocol": H2})]
    text = "\n".join(tls_section(s))
    assert "| loadgen | HTTPS, HTTP/1.1 | 1,000 | 1,000 | 20.0 |" in text
    assert "all 1,000 served as HTTP/1.1 |" in text
    assert "FAILED: not HTTP/2.0: nginx served 5 as HTTP/1.1" in text
    assert "- HTTP/1.1: loadgen ÷ k6: req/s 2.00×, CPU/req 0.50×" in text
    assert "- HTTP/2.0: loadgen ÷ k6: req/s n/a" in text
