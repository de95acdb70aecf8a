"""`loadgen report` and `loadgen run --report`: the commands around loadgen.reports."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def loadgen(*args: str, timeout: float = 180, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def test_run_writes_its_report_and_report_rebuilds_it(demo_target, tmp_path):
    db = f"sqlite:///{tmp_path}/r.db"
    html = tmp_path / "run.html"
    s = tmp_path / "s.json"
    p = loadgen("run", "--url", demo_target.url + "/health", "--rate", "50", "--run-time", "1s", "-q",
                "--db", db, "--report", str(html), "--summary-json", str(s))
    assert p.returncode == 0, p.stdout + p.stderr
    run_id = json.loads(s.read_text())["run_id"]
    text = html.read_text()
    assert f"report written to {html}" in p.stdout
    assert run_id in text and "<svg" in text
    assert "<script" not in text and "src=\"http" not in text and "href=\"http" not in text.split("<body", 1)[0]
    again = tmp_path / "again.html"
    p = loadgen("report", run_id[:12], "-o", str(again), "--db", db)
    assert p.returncode == 0, p.stderr
    assert run_id in again.read_text()


def test_report_errors_are_one_sentence(tmp_path):
    db = f"sqlite:///{tmp_path}/r.db"
    for args, code, expect in [
        (["report", "nope", "-o", str(tmp_path / "x.html"), "--db", db], 2, "no run 'nope'"),
        (["report", "latest", "-o", str(tmp_path / "x.html"), "--format", "pdf", "--db", db], 2, "--format"),
        (["run", "--url", "http://127.0.0.1:9/", "--rate", "1", "--db", "none", "--report", "x.html"], 2,
         "--report is built from the results store"),
    ]:
        p = loadgen(*args)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == code and len(lines) == 1 and expect in lines[0], p.stderr
