"""Comparisons find their baseline: runs are matched on a stable scenario identity (the
``--scenario-name``, else the file's name, else ``METHOD /path?query`` ad hoc), not on the
address or the path as given; old stored keys are migrated to it; without a match, the
message names what the database holds. Real runs over loopback, real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aiohttp_thread import ThreadedApp
from loadgen.engine.engine import AdHocRequest
from loadgen.errors import EXIT_OK, EXIT_USAGE
from loadgen.scenario import load_scenario
from loadgen.session.record import request_target, scenario_key
from loadgen.store import open_store
from loadgen.store.base import Store, migrations

SCENARIO = '''
from loadgen import User, task
{options}
class Reader(User):
    @task
    async def read(self):
        await self.client.get("/api/x", name="x")
'''


def _loadgen(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("LOADGEN_SCENARIO_NAME", "TEST_TYPE", "TARGET_HOST")}
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**clean, **(env or {})})


def _one_sentence(p: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


def _run(db: str, version: str, *what: str, summary: Path | None = None, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict[str, Any] | None]:
    """One short, bounded run (20 requests at 20/s over loopback), stored in ``db``."""
    extra = ["--summary-json", str(summary)] if summary else []
    p = _loadgen("run", *what, "--rate", "20", "--run-time", "1s", "--db", db, "--app-version", version, "-q",
                 *extra, cwd=cwd, env=env)
    return p, json.loads(summary.read_text()) if summary and summary.exists() else None


class Counting:
    """A target on 127.0.0.1 that answers every path and counts the requests it served."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()

        async def any_path(request: web.Request) -> web.Response:
            self.hits[request.path_qs] += 1
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_path)
        self.server = ThreadedApp(app, access_log=False)


@pytest.fixture
def servers() -> Iterator[tuple[Counting, Counting]]:
    a, b = Counting(), Counting()
    try:
        yield a, b
    finally:
        a.server.stop()
        b.server.stop()


def _stored(db: str, method: str, *args: Any) -> Any:
    async def go() -> Any:
        async with await open_store(db) as store:
            return await getattr(store, method)(*args)

    return asyncio.run(go())


# --- the identity ------------------------------------------------------------------------------


def test_the_identity_of_a_file_an_adhoc_request_and_a_name(tmp_path: Path) -> None:
    f = tmp_path / "dir" / "content.py"
    f.parent.mkdir()
    f.write_text(SCENARIO.format(options=""))
    for given in (str(f), os.path.relpath(f), f"{tmp_path}/dir/../dir/./content.py"):
        assert scenario_key(load_scenario(given), None) == "content.py"
    # A locustfile run directly is identified the same way.
    loc = tmp_path / "locustfile.py"
    loc.write_text("from locust import HttpUser, task\n\nclass U(HttpUser):\n    @task\n"
                   "    def x(self):\n        self.client.get('/x')\n")
    assert scenario_key(load_scenario(loc), None) == "locustfile.py"
    # Ad hoc: the method and the request target; never the address, credentials or a fragment.
    adhoc = AdHocRequest(url="https://rc:s3cret@candidate.example:8443/api/x?page=2&password=hunter2#top",
                         method="POST")
    assert scenario_key(None, adhoc) == "POST /api/x?page=2&password=***"
    assert request_target("http://127.0.0.1:8080") == "/" and request_target("http://h?q=1") == "/?q=1"
    assert scenario_key(load_scenario(f), adhoc, "checkout") == "checkout"  # a name wins over both


# --- a baseline found ---------------------------------------------------------------------------


def test_an_adhoc_candidate_on_another_address_finds_its_baseline(servers, tmp_path: Path) -> None:
    prod, rc = servers
    db = f"sqlite:///{tmp_path}/r.db"
    p, base = _run(db, "1.0", "--url", prod.server.url("/api/x"), summary=tmp_path / "b.json")
    assert p.returncode == EXIT_OK, p.stderr
    # Another server, another port, another host name: the same request.
    p, cand = _run(db, "1.1", "--url", rc.server.url("/api/x", host="localhost"), "--baseline-version", "1.0",
                   summary=tmp_path / "c.json")
    assert p.returncode == EXIT_OK, p.stderr
    assert prod.hits["/api/x"] > 0 and rc.hits["/api/x"] > 0  # each run loaded its own server
    assert base is not None and cand is not None and cand["comparison"] is not None
    assert cand["comparison"]["baseline"]["run_ids"] == [base["run_id"]]
    assert cand["comparison"]["scenario"] == "GET /api/x"
    # `loadgen runs list` shows the identity; the summary keeps what was run.
    p = _loadgen("runs", "list", "--db", db, "--json")
    assert p.returncode == 0, p.stderr
    assert [r["scenario"] for r in json.loads(p.stdout)] == ["GET /api/x", "GET /api/x"]
    assert cand["host"].startswith("http://localhost:")


def test_a_scenario_given_by_a_relative_and_an_absolute_path_is_one_scenario(servers, tmp_path: Path) -> None:
    target, _ = servers
    (tmp_path / "scenarios").mkdir()
    f = tmp_path / "scenarios" / "content.py"
    f.write_text(SCENARIO.format(options=""))
    db = f"sqlite:///{tmp_path}/r.db"
    host = ["--host", target.server.url()]
    p, base = _run(db, "1.0", "scenarios/content.py", *host, summary=tmp_path / "b.json", cwd=tmp_path)
    assert p.returncode == EXIT_OK, p.stderr
    p, cand = _run(db, "1.1", str(f), *host, "--baseline-version", "1.0", summary=tmp_path / "c.json")
    assert p.returncode == EXIT_OK, p.stderr
    assert base is not None and cand is not None and cand["comparison"] is not None
    assert cand["comparison"]["baseline"]["run_ids"] == [base["run_id"]]
    assert cand["comparison"]["scenario"] == "content.py"
    assert (base["scenario"], cand["scenario"]) == ("scenarios/content.py", str(f))  # the path as given


def test_a_name_overrides_the_file_and_two_files_sharing_one_compare(servers, tmp_path: Path) -> None:
    target, _ = servers
    named = tmp_path / "checkout_v1.py"
    named.write_text(SCENARIO.format(options='options = {"name": "checkout"}'))
    other = tmp_path / "checkout_v2.py"
    other.write_text(SCENARIO.format(options=""))
    db = f"sqlite:///{tmp_path}/r.db"
    host = ["--host", target.server.url()]
    p, base = _run(db, "1.0", str(named), *host, summary=tmp_path / "b.json")
    assert p.returncode == EXIT_OK, p.stderr
    # Without the name, the other file is another scenario: no baseline, and the message says what there is.
    p, _ = _run(db, "1.1", str(other), *host, "--baseline-version", "1.0")
    assert p.returncode == EXIT_USAGE
    msg = _one_sentence(p)
    assert "for scenario 'checkout_v2.py'" in msg and "version '1.0' has 'checkout' (load, 1 run)" in msg
    # Named through the environment (as --scenario-name), it finds the first file's run.
    p, cand = _run(db, "1.1", str(other), *host, "--baseline-version", "1.0", summary=tmp_path / "c.json",
                   env={"LOADGEN_SCENARIO_NAME": "checkout"})
    assert p.returncode == EXIT_OK, p.stderr
    assert base is not None and cand is not None and cand["comparison"] is not None
    assert cand["comparison"]["baseline"]["run_ids"] == [base["run_id"]]
    assert cand["comparison"]["scenario"] == "checkout"


# --- nothing matches: what the database holds ---------------------------------------------------


def _row(run_id: str, version: str, scenario: str, test_type: str = "load", status: str = "completed",
         started: float = 1.0) -> dict[str, Any]:
    return {"id": run_id, "app_version": version, "test_type": test_type, "scenario": scenario, "model": "open",
            "loadgen_version": "test", "config": {}, "started_at": started, "status": status}


def test_without_a_match_the_message_lists_what_the_version_holds(db_url: str) -> None:
    rows = [_row("a1", "1.2", "api.py", started=1), _row("a2", "1.2", "api.py", started=2),
            _row("a3", "1.2", "api.py", started=3), _row("s1", "1.2", "content.py", "stress", started=4),
            _row("x1", "1.2", "gone.py", status="interrupted", started=5),  # not completed: not a baseline
            _row("o1", "1.1", "content.py", started=6),  # another version
            _row("cand", "1.3", "content.py", started=7)]
    rows += [_row(f"m{i}", "1.4", f"s{i}.py", started=10 + i) for i in range(6)]

    async def store_them() -> None:
        async with await open_store(db_url) as store:
            for r in rows:
                await store.begin_run(r)

    asyncio.run(store_them())
    p = _loadgen("compare", "--baseline-version", "1.2", "--candidate", "cand", "--db", db_url)
    assert p.returncode == EXIT_USAGE
    msg = _one_sentence(p)
    assert msg.startswith("loadgen: error: no completed runs of version '1.2' for scenario 'content.py', "
                          "test type 'load' in "), msg
    assert msg.endswith("; version '1.2' has 'content.py' (stress, 1 run), 'api.py' (load, 3 runs); "
                        "give the run --scenario-name (or --test-type) to match one"), msg
    assert "gone.py" not in msg
    p = _loadgen("compare", "--baseline-version", "1.4", "--candidate", "cand", "--db", db_url)
    assert p.returncode == EXIT_USAGE
    msg = _one_sentence(p)
    assert "'s5.py' (load, 1 run), 's4.py' (load, 1 run), 's3.py' (load, 1 run), 's2.py' (load, 1 run) and 2 more;" \
        in msg, msg
    p = _loadgen("compare", "--baseline-version", "0.9", "--candidate", "cand", "--db", db_url)
    assert p.returncode == EXIT_USAGE
    assert _one_sentence(p).endswith("; version '0.9' has no completed runs: run that version first")


# --- hostile names and URLs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "x" * 10_000, "check\nout", "tab\there"])
def test_a_bad_scenario_name_is_one_sentence_and_exit_2(name: str, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    p = _loadgen("run", "--url", "http://127.0.0.1:9/x", "--rate", "1", "--run-time", "1s", "--db", f"sqlite:///{db}",
                 "--scenario-name", name)
    assert p.returncode == EXIT_USAGE
    msg = _one_sentence(p)
    assert "--scenario-name" in msg and len(msg) < 300
    assert not db.exists()  # refused before anything ran or was stored


def test_a_bad_name_in_the_scenario_file_is_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "s.py"
    f.write_text(SCENARIO.format(options='options = {"name": "two\\nlines"}'))
    p = _loadgen("run", str(f), "--host", "http://127.0.0.1:9", "--rate", "1", "--run-time", "1s", "--db", "none")
    assert p.returncode == EXIT_USAGE
    assert "must be printable text on one line" in _one_sentence(p)


def test_credentials_and_a_password_in_the_query_never_reach_the_identity(servers, tmp_path: Path) -> None:
    target, _ = servers
    db = f"sqlite:///{tmp_path}/r.db"
    url = target.server.url("/api/x?password=hunter2&page=1").replace("://", "://ops:s3cret-pw@")
    p, doc = _run(db, "1.0", "--url", url, summary=tmp_path / "s.json")
    assert p.returncode == EXIT_OK, p.stderr
    assert target.hits["/api/x?password=hunter2&page=1"] > 0  # the request itself is sent as asked
    assert doc is not None
    run = _stored(db, "get_run", doc["run_id"])
    assert run["scenario"] == "GET /api/x?password=***&page=1"
    assert "s3cret-pw" not in json.dumps(run) and "hunter2" not in json.dumps(run)


# --- old runs: the migration --------------------------------------------------------------------

#: Keys as stored before version 4, and the identity each becomes.
OLD_KEYS = {
    "scenarios/content.py": "content.py",
    "/srv/perf/scenarios/content.py": "content.py",
    "api.py": "api.py",
    "./x/../deep/dir/caf\u00e9 d\u00e9j\u00e0.py": "caf\u00e9 d\u00e9j\u00e0.py",
    "GET http://127.0.0.1:8080/api/x": "GET /api/x",
    "GET http://prod.example/api/x?page=2&password=***": "GET /api/x?page=2&password=***",
    "POST https://ops:***@10.0.0.7:8443/orders#frag": "POST /orders",
    "GET http://h.example": "GET /",
    "GET HTTP://h.example:81?q=1": "GET /?q=1",
    "DELETE http://[::1]:9/a/b": "DELETE /a/b",
    "GET /already/new": "GET /already/new",  # a key in the new form is left alone
}


async def _at_version_3(store: Store) -> None:
    await store._applied_versions()  # the bookkeeping table, as a store of that version had it
    for version, name, sql in migrations(store.kind):
        if version < 4:
            await store._apply_migration(version, name, sql)


def test_the_migration_rewrites_old_keys_on_both_backends(db_url: str) -> None:
    async def go() -> tuple[list[str], dict[str, str | None], list[Any], str | None]:
        async with await open_store(db_url, migrate=False) as store:
            await _at_version_3(store)
            for i, old in enumerate([*OLD_KEYS, None]):
                await store.begin_run(_row(f"r{i}", "1.0", old))  # type: ignore[arg-type]
            cid = await store.save_comparison(
                {"created_at": 1.0, "candidate_run_id": "r0", "baseline_version": "0.9", "baseline_run_ids": [],
                 "scenario": "GET http://127.0.0.1:8080/api/x", "test_type": "load", "thresholds": {},
                 "verdict": "pass", "regressions": 0, "improvements": 0, "noise_estimate": False}, [])
            applied = await store.migrate()
            stored = {r["id"]: r["scenario"] for r in await store.list_runs(limit=100)}
            again = await store.migrate()
            (head,) = [c for c in await store.comparisons("r0") if c["id"] == cid]
            return applied, stored, again, head["scenario"]

    applied, stored, again, comparison = asyncio.run(go())
    assert applied == ["004_scenario_identity"] and again == []
    assert stored == {f"r{i}": new for i, new in enumerate([*OLD_KEYS.values(), None])}
    assert comparison == "GET /api/x"
    # What the code derives now equals what the migration made of the keys it stored before.
    assert scenario_key(None, AdHocRequest(url="https://ops:pw@10.0.0.7:8443/orders#frag", method="POST")) \
        == OLD_KEYS["POST https://ops:***@10.0.0.7:8443/orders#frag"]


def test_a_baseline_stored_before_the_change_is_found_after_it(servers, tmp_path: Path) -> None:
    prod, rc = servers
    path = tmp_path / "r.db"
    db = f"sqlite:///{path}"
    p, base = _run(db, "1.0", "--url", prod.server.url("/api/x"), summary=tmp_path / "b.json")
    assert p.returncode == EXIT_OK, p.stderr
    assert base is not None
    # Put the run back as a store of version 3 held it: its old key, migration 4 not yet applied.
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET scenario = ? WHERE id = ?", (f"GET {prod.server.url('/api/x')}", base["run_id"]))
        conn.execute("DELETE FROM schema_migrations WHERE version = 4")
    conn.close()
    p, cand = _run(db, "1.1", "--url", rc.server.url("/api/x"), "--baseline-version", "1.0",
                   summary=tmp_path / "c.json")
    assert p.returncode == EXIT_OK, p.stderr
    assert cand is not None and cand["comparison"]["baseline"]["run_ids"] == [base["run_id"]]
