"""The targets the clients measure: started pinned to the server core, polled until they answer."""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .console import first_error_line, log
from .paths import BENCH, LOGS, WORK
from .processes import Processes, free_port


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


def start_server(procs: Processes, name: str, argv: list[str], port: int, path: str, timeout: float = 20,
                 expect_body: bytes | None = None, env: dict | None = None) -> Server | str:
    """A server pinned to the server core, once it answers GET path; else why not."""
    LOGS.mkdir(parents=True, exist_ok=True)
    full = procs.pins.argv(procs.pins.server_cpu, argv)
    err_path = LOGS / f"server-{name}.err"
    log(f"server {name}: {shlex.join(full)}")
    try:
        with open(err_path, "wb") as fe:
            proc = procs.spawn(full, fe, subprocess.STDOUT, env)
    except OSError as e:
        return f"cannot start {name}: {e}"
    why = wait_http(port, path, proc, timeout, expect_body)
    if why:
        procs.children.stop(proc)
        detail = first_error_line(err_path.read_text(errors="replace"))
        return f"{name} {why}" + (f": {detail}" if detail else "")
    return Server(name, proc, port, err_path)


def start_nginx(procs: Processes) -> Server | str:
    """nginx from nginx.conf.template on a free port: one worker answering `200 ok`."""
    if not shutil.which("nginx"):
        return "nginx is not installed"
    prefix = WORK / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = (BENCH / "nginx.conf.template").read_text()
    conf = conf.replace("{{PORT}}", str(port)).replace("{{PREFIX}}", str(prefix))
    conf_path = prefix / "nginx.conf"
    conf_path.write_text(conf)
    return start_server(procs, "nginx", ["nginx", "-p", str(prefix), "-c", str(conf_path),
                                         "-e", str(prefix / "nginx-error.log")],
                        port, "/", expect_body=b"ok")
