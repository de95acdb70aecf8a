"""The example scenarios in scenarios/, run the way users run them.

Each test starts the real demo target in its own thread and runs ``loadgen run``
as a subprocess against it for a few seconds, then compares the summary JSON
with what the target itself counted. The scenarios are what users copy, so a
failed check, an exception or a raw id in a row name is a bug here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

# The demo's job ids are 16 hex digits; campaign ids are numbers in a path segment.
RAW_JOB_ID = re.compile(r"[0-9a-f]{16}")
RAW_NUMERIC_ID = re.compile(r"/\d+(/|$)")

# Environment variables `loadgen run` reads; a developer's shell must not change the runs here.
_LOADGEN_ENV = {"TARGET_HOST", "USERS", "SPAWN_RATE", "RUN_TIME", "APP_VERSION", "TEST_TYPE"}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _LOADGEN_ENV and not k.startswith("LOADGEN_")}


def _requests_seen(demo: Any) -> int:
    with urllib.request.urlopen(demo.url + "/_stats", timeout=10) as r:
        return json.load(r)["requests"]


def _reset_stats(demo: Any) -> None:
    req = urllib.request.Request(demo.url + "/_stats/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.load(r) == {"requests": 0}


def run_scenario(name: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """``loadgen run scenarios/NAME ARGS --quiet --summary-json ...``; the summary document."""
    summary = tmp_path / f"{Path(name).stem}-summary.json"
    cmd = [
        sys.executable, "-m", "loadgen", "run", str(SCENARIOS / name),
        *args, "--quiet", "--summary-json", str(summary),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_clean_env())
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(summary.read_text())


def run_against(demo: Any, name: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """The standard short run: 5 users, all started at once, 3 s, seeded task picks."""
    return run_scenario(
        name, tmp_path, "--host", demo.url, "--users", "5", "--spawn-rate", "50",
        "--run-time", "3s", "--seed", "1", *args,
    )


def assert_clean(summary: dict[str, Any]) -> None:
    """No HTTP errors, no failed checks, no exceptions, and the scenario did check something."""
    failed = {k: v for k, v in summary["checks"].items() if v["fails"]}
    assert failed == {}
    assert summary["exceptions"] == {}
    assert summary["errors"] == 0 and summary["error_rate"] == 0, summary["errors_by_kind"]
    assert summary["checks"], "the scenario made no checks"


def assert_rows(summary: dict[str, Any], required: set[str], allowed: set[str]) -> None:
    rows = set(summary["endpoints"])
    assert required <= rows, f"missing rows: {sorted(required - rows)}"
    # A row per job or campaign id would make results unreadable and memory unbounded.
    for row in rows:
        assert not RAW_JOB_ID.search(row) and not RAW_NUMERIC_ID.search(row), row
    assert rows <= allowed, f"unexpected rows: {sorted(rows - allowed)}"


CASES = {
    "content.py": (
        {"POST /api/auth/login", "POST /api/content", "GET /api/content/[id]"},
        {"POST /api/auth/refresh"},
    ),
    "api.py": (
        {
            "POST /api/auth/login",
            "GET /api/campaigns",
            "GET /api/campaigns/[id]",
            "POST /api/campaigns",
            "GET /health",
        },
        set(),
    ),
    "auth_session.py": (
        {"POST /api/auth/login", "GET /api/auth/verify"},
        {"POST /api/auth/refresh", "POST /api/auth/logout"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scenario_runs_clean_and_counts_what_the_target_saw(name, start_demo, tmp_path):
    demo = start_demo(processing_scale=0.1)
    _reset_stats(demo)
    summary = run_against(demo, name, tmp_path)

    assert summary["requests"] > 0
    assert summary["requests"] == _requests_seen(demo)
    assert summary["users_max"] == 5
    assert_clean(summary)
    required, optional = CASES[name]
    assert_rows(summary, required, required | optional)


def test_content_scenario_reads_its_defaults_from_options(start_demo, tmp_path):
    demo = start_demo(processing_scale=0.1)
    _reset_stats(demo)
    # Only the host (the demo's port is not 8000 here) and a shorter run; at the scenario's
    # own spawn rate of 10/s the ramp to 20 users would take the whole 2 s.
    summary = run_scenario(
        "content.py", tmp_path, "--host", demo.url, "--run-time", "2s", "--spawn-rate", "100"
    )
    assert summary["users_max"] == 20
    assert summary["requests"] == _requests_seen(demo)
    assert_clean(summary)


def test_content_scenario_renews_tokens_before_they_expire(start_demo, tmp_path):
    # Tokens living 1 s expire several times in a 3 s run: renewing them ahead of time
    # must keep every request authorised, with no 401 among the results.
    demo = start_demo(processing_scale=0.1, token_ttl_s=1.0)
    _reset_stats(demo)
    summary = run_against(demo, "content.py", tmp_path)

    assert summary["endpoints"]["POST /api/auth/refresh"]["requests"] >= 5
    assert summary["requests"] == _requests_seen(demo)
    assert_clean(summary)


def test_content_scenario_recovers_when_the_server_drops_its_tokens(start_demo, tmp_path):
    demo = start_demo(processing_scale=0.1)
    _reset_stats(demo)
    tokens = demo.state.tokens
    revoked = threading.Event()

    def revoke_once_all_logged_in() -> None:
        deadline = time.monotonic() + 30
        while len(tokens) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        # As a server restart would: every access token is gone, refresh tokens still work.
        # The token store belongs to the server's loop, so the change is made on that loop.
        demo._loop.call_soon_threadsafe(tokens._by_access.clear)
        revoked.set()

    watcher = threading.Thread(target=revoke_once_all_logged_in, daemon=True)
    watcher.start()
    summary = run_against(demo, "content.py", tmp_path)
    watcher.join(5)
    assert revoked.is_set()

    # Each user's first request after the revocation is a 401 (counted: it is an error),
    # then the user renews its token and everything after succeeds.
    assert summary["exceptions"] == {}
    assert summary["checks"] and not any(v["fails"] for v in summary["checks"].values())
    assert summary["errors_by_kind"] == {"http_4xx": 5}
    assert summary["status_codes"]["401"] == 5
    assert summary["endpoints"]["POST /api/auth/refresh"]["requests"] == 5
    assert summary["endpoints"]["POST /api/auth/refresh"]["errors"] == 0
    assert summary["requests"] == _requests_seen(demo)
