"""The bench's child processes: pinned to a core, registered so that every one is killed on exit,
and each client reaped with os.wait4 so that its CPU time is its own."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import IO

from .console import first_error_line, log, redact
from .paths import LOGS, WORK

# monitor(pid, seconds since the start), called every 50 ms while a client runs
Monitor = Callable[[int, float], None]


@dataclass(frozen=True)
class Pinning:
    """The target's core and the clients' core; without taskset nothing is pinned."""

    server_cpu: str = "0"
    client_cpu: str = "1"
    taskset: bool = True

    def argv(self, cpu: str, argv: list[str]) -> list[str]:
        return (["taskset", "-c", cpu] + argv) if self.taskset else argv


def kill_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)  # each child leads its own process group
    except (ProcessLookupError, PermissionError):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass


class Children:
    """Every process the bench started and has not reaped yet: what to kill on exit or Ctrl-C."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def add(self, p: subprocess.Popen) -> None:
        self.procs.append(p)

    def forget(self, p: subprocess.Popen) -> None:
        if p in self.procs:
            self.procs.remove(p)

    def stop(self, p: subprocess.Popen, grace: float = 5.0) -> None:
        if p.returncode is None and p.poll() is None:
            kill_group(p, signal.SIGTERM)
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                kill_group(p, signal.SIGKILL)
                try:
                    p.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        else:
            # the leader is gone; make sure nothing it left in its group survives
            kill_group(p, signal.SIGKILL)
        self.forget(p)

    def stop_all(self) -> None:
        for p in list(self.procs):
            self.stop(p)


@dataclass(frozen=True)
class Processes:
    """How this invocation starts processes: where to pin them, and where to register them."""

    pins: Pinning
    children: Children

    def spawn(self, argv: list[str], stdout: IO[bytes], stderr: IO[bytes] | int, env: dict | None) -> subprocess.Popen:
        """Start argv in bench/.work as the leader of its own process group, and register it."""
        p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                             cwd=WORK, env=env, start_new_session=True, preexec_fn=die_with_parent)
        self.children.add(p)
        return p


def on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGKILL the child if run.py itself dies
    without cleaning up (e.g. SIGKILL); best effort, Linux only."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


@dataclass
class ChildRun:
    """One client run: its exit, its own CPU time (os.wait4) and what it printed."""

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


def run_client(procs: Processes, tag: str, argv: list[str], timeout: float, env: dict | None = None,
               monitor: Monitor | None = None, cpu: str | None = None) -> ChildRun:
    """Run one client pinned to the client core (or `cpu`) as a direct child; reap it with
    os.wait4 so that its rusage is its own (plus its reaped descendants')."""
    LOGS.mkdir(parents=True, exist_ok=True)
    full = procs.pins.argv(cpu or procs.pins.client_cpu, argv)
    run = ChildRun(argv=full)
    out_path, err_path = LOGS / f"{tag}.out", LOGS / f"{tag}.err"
    log(f"{tag}: {redact(shlex.join(full))}")
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        try:
            p = procs.spawn(full, fo, fe, env)
        except OSError as e:
            run.start_error = f"cannot start: {e}"
            return run
        t0 = time.monotonic()
        try:
            status, ru = _reap(p, run, t0 + timeout, t0, monitor)
        except BaseException:
            procs.children.stop(p)  # interrupted: kill it and reap it through Popen
            raise
        p.returncode = os.waitstatus_to_exitcode(status)
        kill_group(p, signal.SIGKILL)  # leftovers in its group, if any
        procs.children.forget(p)
        run.rc = p.returncode
        run.wall_s = time.monotonic() - t0
        run.cpu_s = ru.ru_utime + ru.ru_stime
    run.stdout = out_path.read_text(errors="replace")
    run.stderr = err_path.read_text(errors="replace")
    return run


def _reap(p: subprocess.Popen, run: ChildRun, deadline: float, t0: float,
          monitor: Monitor | None) -> tuple[int, os.struct_rusage]:
    """Poll p with os.wait4 every 50 ms; past the deadline SIGTERM, 5 s later SIGKILL."""
    term_sent = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            return status, ru
        now = time.monotonic()
        if now > deadline and not term_sent:
            run.timed_out = True
            kill_group(p, signal.SIGTERM)
            term_sent = True
            deadline = now + 5
        elif now > deadline:
            kill_group(p, signal.SIGKILL)
            _, status, ru = os.wait4(p.pid, 0)
            return status, ru
        if monitor:
            monitor(p.pid, now - t0)
        time.sleep(0.05)


def sh(argv: list[str], timeout: float = 600, env: dict | None = None) -> tuple[int, str]:
    """A short helper command (not measured): its exit code and its merged output."""
    try:
        cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, timeout=timeout, env=env)
        return cp.returncode, cp.stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
