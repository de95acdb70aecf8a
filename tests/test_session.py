"""The run's session: the summary built once (its document's keys in their documented
order), the summary file kept or failing the run, and the post-run store opened once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest

from loadgen.config import RunConfig
from loadgen.engine.engine import RunResult
from loadgen.errors import RunError
from loadgen.engine.recorder import Recorder
from loadgen.session.summary_file import SummaryFile
from loadgen.session.verdict import unserved
from loadgen.store import Store, parse_db_url
from loadgen.store.session import StoreSession
from loadgen.summary import RunSummary, build_summary, summarize
from loadgen.engine.workload import shape_of

HEAD = ["loadgen_version", "scenario", "host", "app_version", "test_type", "model", "arrival", "started_at",
        "duration_s", "load_s", "interrupted", "stop_reason", "requests", "errors", "error_rate", "rps",
        "iterations", "dropped_iterations", "failed_iterations", "target_rate", "achieved_rate", "users_max",
        "bytes_sent", "bytes_received", "latency_ms", "service_time_ms", "ttfb_ms", "status_codes",
        "errors_by_kind", "checks", "exceptions", "generator", "warnings", "endpoints"]


def _result(config: RunConfig | None = None) -> RunResult:
    config = config or RunConfig()
    return RunResult(recorder=Recorder(), config=config, shape=shape_of(config), model=config.model,
                     started_at=time.time(), duration_s=1.0, schedule_s=1.0, interrupted=False, users_max=1,
                     broke_at=None, exceptions={}, warnings=["w"])


def test_the_document_keeps_its_key_order_and_leaves_out_what_a_run_does_not_have():
    result = _result()
    closed = summarize(result, scenario=None, host=None)
    assert list(closed.to_json()) == HEAD
    assert build_summary(result, scenario=None, host=None) == closed.to_json()
    opened = summarize(_result(RunConfig(model="open", rate=5.0)), scenario=None, host=None)
    assert list(opened.to_json()) == [*HEAD, "scheduled_rate"]
    judged = dataclasses.replace(closed, run_id="r", shards=3, thresholds=[], status="completed", exit_code=0,
                                 comparison={"verdict": "pass"})
    assert list(judged.to_json())[len(HEAD):] == ["run_id", "shards", "thresholds", "status", "exit_code",
                                                  "comparison"]


def test_a_summary_is_never_changed_a_new_one_is_made():
    s = summarize(_result(), scenario=None, host=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.exit_code = 1  # type: ignore[misc]
    more = s.warned("another")
    assert s.warnings == ("w",) and more.warnings == ("w", "another")
    assert more.to_json()["warnings"] == ["w", "another"]


def test_unserved_needs_a_target_failure_and_no_response():
    s = summarize(_result(), scenario=None, host="http://h")
    refused = dataclasses.replace(s, requests=3, errors_by_kind={"connect": 3})
    assert "none of the 3 requests got an HTTP response (connect 3)" in (unserved(refused) or "")
    assert unserved(dataclasses.replace(refused, status_codes={"500": 1})) is None
    assert unserved(dataclasses.replace(refused, errors_by_kind={"cutoff": 3})) is not None
    assert unserved(dataclasses.replace(refused, errors_by_kind={"cutoff": 3}, interrupted=True)) is None


def test_the_summary_file_is_rewritten_and_a_failed_write_fails_the_run(tmp_path):
    s: RunSummary = dataclasses.replace(summarize(_result(), scenario=None, host=None), exit_code=0)
    path = tmp_path / "s.json"
    f = SummaryFile(str(path))
    f.write(s)
    f.write(dataclasses.replace(s, exit_code=1))
    assert json.loads(path.read_text())["exit_code"] == 1 and f.kept
    f.check()
    bad = SummaryFile(str(tmp_path / "missing" / "s.json"))
    bad.write(s)
    assert not bad.kept
    with pytest.raises(RunError, match="could not be written"):
        bad.check()


def test_the_post_run_store_opens_once_and_only_when_asked(tmp_path, monkeypatch):
    import loadgen.store.session as session_module

    opened: list[bool] = []
    real = session_module.open_store

    async def counting(url, *, migrate=True, timeout_s=10.0):  # type: ignore[no-untyped-def]
        opened.append(migrate)
        return await real(url, migrate=migrate, timeout_s=timeout_s)

    monkeypatch.setattr(session_module, "open_store", counting)
    url = parse_db_url(f"sqlite:///{tmp_path}/runs.db")
    with StoreSession(url) as unused:
        assert unused is not None
    assert opened == []
    stores: list[Store] = []

    async def note(store: Store) -> list[str]:
        stores.append(store)
        return await store.migrate()

    with StoreSession(url) as db:
        assert db.run(note) == []  # migrated as it opened
        db.run(note)
    assert opened == [True] and stores[0] is stores[1]
    with pytest.raises(Exception):
        asyncio.run(stores[0]._fetch("SELECT 1"))  # closed with the session


def test_a_database_that_dies_between_steps_is_one_sentence(pg_url, pg_admin_url):
    # The steps after a run share one connection: when the server ends it (a restart, a
    # failover, an admin) the next step says so as a StoreError (exit 3), not a traceback.
    import asyncpg

    from loadgen.store.base import StoreError

    async def backend_pid(store: Store) -> int:
        return int((await store._fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"])

    async def terminate(pid: int) -> None:
        conn = await asyncpg.connect(pg_admin_url, timeout=10)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()

    url = parse_db_url(pg_url)
    with StoreSession(url) as db:
        asyncio.run(terminate(db.run(backend_pid)))
        with pytest.raises(StoreError) as err:
            db.run(backend_pid)
    message = str(err.value)
    assert message.startswith(f"the database {url.shown} failed: ") and "\n" not in message
    assert isinstance(err.value, RunError) and err.value.exit_code == 3
