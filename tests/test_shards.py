"""A run split into shards (processes here; hosts in real use) meeting in a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from loadgen.engine import histogram as hdr
from loadgen.scaleout.shards import parse_shard
from loadgen.store import open_store
from loadgen.store.records import TOTAL, decode_hist
from loadgen.scaleout.wire import hist_from_json


def _stats(url: str) -> int:
    with urllib.request.urlopen(url + "/_stats", timeout=10) as r:
        return json.load(r)["requests"]


def query(url: str, fn: str, *args: Any) -> Any:
    async def go() -> Any:
        store = await open_store(url)
        try:
            return await getattr(store, fn)(*args)
        finally:
            await store.close()

    return asyncio.run(go())


def test_three_shards_are_one_run_counted_and_merged_exactly(pg_url, demo_target, tmp_path):
    before = _stats(demo_target.url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "loadgen", "run", "scenarios/api.py", "--host", demo_target.url,
             "--rate", "90", "--run-time", "2s", "--shard", f"{i}/3", "--run-id", "sharded-1",
             "--db", pg_url, "--app-version", "7.0", "--summary-json", str(tmp_path / f"s{i}.json"), "-q",
             "--spool-dir", str(tmp_path / f"spool{i}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(3)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err
    merged_by = [out for out, _ in outs if "all 3 shards merged" in out]
    assert len(merged_by) == 1  # exactly one shard merged the run
    run = query(pg_url, "get_run", "sharded-1")
    assert run["status"] == "completed" and run["app_version"] == "7.0"
    doc = run["summary"]
    assert doc["shards"] == 3
    # Exactly the single-process schedule (90/s for 2 s), and exactly what the target saw.
    assert doc["iterations"] + doc["dropped_iterations"] == 180
    assert doc["requests"] == _stats(demo_target.url) - before
    # The run's percentiles equal merging the shards' histograms by hand.
    rows = query(pg_url, "shard_rows", "sharded-1")
    assert sorted(r["shard"] for r in rows) == [0, 1, 2] and all(r["status"] == "done" for r in rows)
    by_hand = hdr.new_histogram()
    for r in rows:
        for ep in r["part"]["endpoints"].values():
            hdr.merge(by_hand, hist_from_json(ep["latency"]))
    assert by_hand.total_count == doc["requests"]
    assert hdr.summarize_ms(by_hand) == doc["latency_ms"]
    total = {r["endpoint"]: r for r in query(pg_url, "endpoint_results", "sharded-1")}[TOTAL]
    stored = decode_hist(total["latency_hist"], total["latency_min_us"], total["latency_max_us"])
    assert hdr.summarize_ms(stored) == doc["latency_ms"]
    # Each shard's intervals are kept under its number; together they are the run.
    ints = [r for r in query(pg_url, "intervals", "sharded-1") if r["endpoint"] == TOTAL]
    assert {r["shard"] for r in ints} == {0, 1, 2}
    assert sum(r["requests"] for r in ints) == doc["requests"]
    # One run for the browsing commands.
    p = subprocess.run([sys.executable, "-m", "loadgen", "runs", "list", "--json", "--db", pg_url],
                       capture_output=True, text=True, timeout=60)
    assert [r["id"] for r in json.loads(p.stdout)] == ["sharded-1"]


def test_a_missing_shard_times_out_with_one_sentence(pg_url, demo_target):
    p = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "10",
         "--run-time", "1s", "--shard", "0/2", "--run-id", "lonely", "--shard-wait", "2s", "--db", pg_url, "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 3
    assert "only 1 of 2 shards of run lonely registered" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "value,env,expect",
    [
        ("1/3", {}, (1, 3)),
        (None, {"LOADGEN_SHARD": "0/2"}, (0, 2)),
        (None, {"JOB_COMPLETION_INDEX": "2", "LOADGEN_SHARDS": "4"}, (2, 4)),
        (None, {}, None),
    ],
)
def test_parse_shard(value, env, expect):
    assert parse_shard(value, env) == expect


@pytest.mark.parametrize("args,expect", [
    (["--shard", "3/3", "--run-id", "x"], "index must be below"),
    (["--shard", "1-3", "--run-id", "x"], "must look like I/N"),
    (["--shard", "0/3"], "needs --run-id"),
    (["--shard", "0/3", "--run-id", "x", "--db", "none"], "needs a results database"),
    (["--run-id", "bad id!"], "--run-id"),
])
def test_bad_shard_options_are_exit_2(args, expect):
    p = subprocess.run([sys.executable, "-m", "loadgen", "run", "--url", "http://127.0.0.1:9/", "--rate", "1",
                        *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and expect in p.stderr, p.stderr


def test_importing_the_last_shards_spool_merges_the_run(pg_url, demo_target, tmp_path):
    """A shard whose database went away at its end leaves a spool; importing it completes the set."""
    import orjson

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "loadgen", "run", "--url", demo_target.url + "/health", "--rate", "40",
             "--run-time", "1s", "--shard", f"{i}/2", "--run-id", "late-shard", "--db", pg_url, "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, out + err
    merged = query(pg_url, "get_run", "late-shard")["summary"]
    run = query(pg_url, "get_run", "late-shard")
    part1 = next(r for r in query(pg_url, "shard_rows", "late-shard") if r["shard"] == 1)["part"]

    async def as_if_shard_1_never_arrived() -> None:
        store = await open_store(pg_url)
        try:
            await store._execute("UPDATE runs SET status = 'running', summary = NULL WHERE id = $1", "late-shard")
            await store._execute("DELETE FROM endpoint_results WHERE run_id = $1", "late-shard")
            await store._execute("UPDATE run_shards SET status = 'waiting', part = NULL WHERE shard = 1")
        finally:
            await store.close()

    asyncio.run(as_if_shard_1_never_arrived())
    spool = tmp_path / "late-shard-shard1.jsonl"
    begin = {k: run[k] for k in ("id", "test_type", "model", "loadgen_version", "config", "started_at", "scenario",
                                 "host")}
    begin["status"] = "running"
    spool.write_bytes(
        orjson.dumps({"op": "begin_run", "format": 1, "run": begin, "sharded": True}) + b"\n"
        + orjson.dumps({"op": "finish_shard", "shard": 1, "part": part1}) + b"\n"
    )
    p = subprocess.run([sys.executable, "-m", "loadgen", "import", str(spool), "--db", pg_url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "every shard of run late-shard is in: merged" in p.stdout
    again = query(pg_url, "get_run", "late-shard")
    assert again["status"] == "completed"
    assert again["summary"]["requests"] == merged["requests"] == 40
    assert again["summary"]["latency_ms"] == merged["latency_ms"]
