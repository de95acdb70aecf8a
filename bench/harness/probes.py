"""What the machine and a process did during a run, read from /proc (core busy time, CPU pressure,
per-thread CPU, dropped SYNs) or over HTTP (a Prometheus-like /metrics scraper)."""

from __future__ import annotations

import http.client
import os
import platform
import threading
import time
import urllib.request
from pathlib import Path

from .processes import sh


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
            self._scrape()
            k += 1
            self._halt.wait(max(0.0, t0 + k * self.interval - time.monotonic()))

    def _scrape(self) -> None:
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

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


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
