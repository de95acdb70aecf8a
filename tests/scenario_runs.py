"""Helpers for the tests of scenario features: write a scenario file, run it through the
real engine (or the real CLI) against a target on 127.0.0.1, read what it did."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from loadgen.config import RunConfig
from loadgen.engine.engine import Engine, RunResult
from loadgen.scenario import Scenario, load_scenario
from loadgen.summary import build_summary

LOADGEN = str(Path(sys.executable).with_name("loadgen"))


def write(tmp_path: Path, body: str, name: str = "s.py") -> Path:
    """A scenario file holding ``body`` (dedented)."""
    f = tmp_path / name
    f.write_text(textwrap.dedent(body).lstrip())
    return f


def load(tmp_path: Path, body: str, name: str = "s.py") -> Scenario:
    return load_scenario(write(tmp_path, body, name))


def module_of(sc: Scenario) -> dict[str, Any]:
    """The scenario module's globals, where a scenario keeps its logs (found through a task it defines)."""
    entries: list[Any] = [e for ts in sc.task_sets for e in ts.tasks]
    while entries:
        e = entries.pop()
        if inspect.isfunction(e):
            return e.__globals__
        entries += getattr(e, "entries", ())
    raise AssertionError("the scenario defines no task function")


def run(sc: Scenario, host: str, **config: Any) -> tuple[RunResult, dict[str, Any]]:
    """Run ``sc`` in this process (closed model, 2 users, 1.5 s unless ``config`` says otherwise)."""
    cfg = {"model": "closed", "users": 2, "spawn_rate": 100.0, "run_time_s": 1.5, "graceful_stop_s": 2.0,
           "host": host, **config}
    result = Engine(RunConfig(**cfg), scenario=sc, handle_signals=False).run()
    return result, build_summary(result, scenario=sc.path, host=host)


def requests_by_name(summary: dict[str, Any]) -> dict[str, int]:
    """Requests per row name (the method left out)."""
    return {key.split(" ", 1)[1]: ep["requests"] for key, ep in summary["endpoints"].items()}


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """``loadgen run ARGS --db none --quiet --summary-json`` in a subprocess; its result and summary."""
    out = tmp_path / "summary.json"
    out.unlink(missing_ok=True)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("LOADGEN_") and k not in ("TARGET_HOST", "USERS", "SPAWN_RATE", "RUN_TIME")}
    proc = subprocess.run([LOADGEN, "run", *args, "--db", "none", "--quiet", "--summary-json", str(out)],
                          capture_output=True, text=True, timeout=timeout, env={**clean, **(env or {})},
                          cwd=tmp_path)
    return proc, json.loads(out.read_text()) if out.exists() else None
