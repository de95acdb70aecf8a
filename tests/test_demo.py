"""The demo target, exercised over real loopback HTTP.

Servers run in their own thread (the ``start_demo`` / ``demo_target`` fixtures)
and each test drives them with aiohttp's client under ``asyncio.run``. Timing
assertions are lower bounds only: CI is a noisy 2-core box.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadgen.demo import DemoConfig, start
from loadgen.errors import RunError, UsageError

pytestmark = pytest.mark.timeout(20)


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = None,
    **kwargs: Any,
) -> tuple[int, Any, float]:
    """One request -> (status, decoded JSON or text or None, elapsed seconds)."""
    headers = dict(kwargs.pop("headers", None) or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    began = time.perf_counter()
    async with session.request(method, url, headers=headers, **kwargs) as resp:
        raw = await resp.read()
        elapsed = time.perf_counter() - began
        if resp.content_type == "application/json":
            return resp.status, orjson.loads(raw) if raw else None, elapsed
        return resp.status, raw.decode() if raw else None, elapsed


async def login(session: aiohttp.ClientSession, base: str, username: str = "alice") -> dict[str, Any]:
    status, body, _ = await call(
        session, "POST", f"{base}/api/auth/login", json={"username": username, "password": "password"}
    )
    assert status == 200, body
    return body


def metric_samples(text: str) -> dict[str, list[Any]]:
    """Parsed exposition: family name -> samples."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


# --- config -------------------------------------------------------------------


def test_default_config_is_valid() -> None:
    config = DemoConfig()
    config.validate()
    assert config.processing_time("simple") < config.processing_time("medium") < config.processing_time("complex")


@pytest.mark.parametrize(
    "overrides",
    [
        {"latency_ms": -1},
        {"error_rate": -0.1},
        {"error_rate": 1.5},
        {"error_rate": float("nan")},
        {"workers": 0},
        {"port": -1},
        {"port": 65536},
        {"token_ttl_s": 0},
        {"freeze_every_s": 1.0, "freeze_for_s": 1.0},
        {"freeze_every_s": 1.0, "freeze_for_s": 2.0},
        {"freeze_for_s": 0.5},
        {"freeze_every_s": -1.0},
        {"complex_s": -0.5},
        {"host": ""},
    ],
)
def test_validate_rejects_bad_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(UsageError) as info:
        DemoConfig(**overrides).validate()
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message


def test_start_rejects_bad_config_and_busy_port() -> None:
    async def scenario() -> None:
        with pytest.raises(UsageError):
            await start(DemoConfig(port=0, workers=0))
        first = await start(DemoConfig(port=0))
        try:
            assert first.url == f"http://127.0.0.1:{first.port}" and first.port > 0
            with pytest.raises(RunError):
                await start(DemoConfig(port=first.port))
        finally:
            await first.close()

    asyncio.run(scenario())


# --- auth ---------------------------------------------------------------------


def test_login_verify_refresh_and_expiry(start_demo: Any) -> None:
    demo = start_demo(token_ttl_s=0.5)
    base = demo.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            tokens = await login(s, base)
            assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 0.5
            status, body, _ = await call(s, "GET", f"{base}/api/auth/verify", token=tokens["access_token"])
            assert status == 200 and body["valid"] is True and body["username"] == "alice"
            assert 0 < body["expires_in"] <= 0.5

            await asyncio.sleep(0.7)
            status, _, _ = await call(s, "GET", f"{base}/api/auth/verify", token=tokens["access_token"])
            assert status == 401

            status, renewed, _ = await call(
                s, "POST", f"{base}/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            assert status == 200 and renewed["access_token"] != tokens["access_token"]
            assert renewed["refresh_token"] == tokens["refresh_token"]
            status, _, _ = await call(s, "GET", f"{base}/api/auth/verify", token=renewed["access_token"])
            assert status == 200

    asyncio.run(scenario())


def test_auth_rejections_and_logout(demo_target: Any) -> None:
    base = demo_target.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            login_url = f"{base}/api/auth/login"
            assert (await call(s, "POST", login_url, json={"username": "bob", "password": "nope"}))[0] == 401
            assert (await call(s, "POST", login_url, json={"username": "", "password": ""}))[0] == 401
            assert (await call(s, "POST", login_url, json={"username": "bob", "password": "bob"}))[0] == 200
            assert (await call(s, "POST", login_url, data=b"{not json"))[0] == 400
            assert (await call(s, "POST", login_url, json=["a", "list"]))[0] == 400
            refresh_url = f"{base}/api/auth/refresh"
            assert (await call(s, "POST", refresh_url, json={"refresh_token": "unknown"}))[0] == 401

            verify_url = f"{base}/api/auth/verify"
            assert (await call(s, "GET", verify_url))[0] == 401
            assert (await call(s, "GET", verify_url, token="forged"))[0] == 401
            assert (await call(s, "GET", verify_url, headers={"Authorization": "Basic abc"}))[0] == 401

            tokens = await login(s, base)
            assert (await call(s, "POST", f"{base}/api/auth/logout", token=tokens["access_token"]))[0] == 204
            assert (await call(s, "GET", verify_url, token=tokens["access_token"]))[0] == 401
            assert (await call(s, "POST", refresh_url, json={"refresh_token": tokens["refresh_token"]}))[0] == 401
            assert (await call(s, "POST", f"{base}/api/auth/logout"))[0] == 401

    asyncio.run(scenario())


# --- content jobs ---------------------------------------------------------------


async def wait_done(s: aiohttp.ClientSession, base: str, token: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body, _ = await call(s, "GET", f"{base}/api/content/{job_id}", token=token)
        assert status == 200, body
        if body["status"] in ("done", "failed"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def test_content_job_lifecycle(demo_target: Any) -> None:
    base = demo_target.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            token = (await login(s, base))["access_token"]
            ids = {}
            for kind in ("simple", "medium", "complex"):
                status, body, _ = await call(
                    s, "POST", f"{base}/api/content", token=token, json={"type": kind, "prompt": f"a {kind} ad"}
                )
                assert status == 202 and body["status"] == "queued" and body["job_id"]
                ids[kind] = body["job_id"]
            status, early, _ = await call(s, "GET", f"{base}/api/content/{ids['complex']}", token=token)
            assert status == 200 and early["status"] in ("queued", "processing") and early["result"] is None

            done = {kind: await wait_done(s, base, token, job_id) for kind, job_id in ids.items()}
            for kind, job in done.items():
                assert job["status"] == "done" and job["type"] == kind and job["job_id"] == ids[kind]
                assert isinstance(job["result"], str) and kind in job["result"]
                assert job["queued_ms"] >= 0
            assert done["simple"]["processing_ms"] >= 45
            assert done["medium"]["processing_ms"] >= 190
            assert done["complex"]["processing_ms"] >= 490
            ms = [done[k]["processing_ms"] for k in ("simple", "medium", "complex")]
            assert ms == sorted(ms)

    asyncio.run(scenario())


def test_content_rejections_and_failed_job(start_demo: Any) -> None:
    demo = start_demo(processing_scale=0.1)
    base = demo.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            url = f"{base}/api/content"
            assert (await call(s, "POST", url, json={"type": "simple", "prompt": "x"}))[0] == 401
            token = (await login(s, base))["access_token"]
            assert (await call(s, "POST", url, token=token, json={"type": "epic", "prompt": "x"}))[0] == 400
            assert (await call(s, "POST", url, token=token, json={"type": "simple", "prompt": 3}))[0] == 400
            assert (await call(s, "POST", url, token=token, data=b"nope"))[0] == 400
            assert (await call(s, "GET", f"{url}/does-not-exist", token=token))[0] == 404
            assert (await call(s, "GET", f"{url}/does-not-exist"))[0] == 401

            _, body, _ = await call(s, "POST", url, token=token, json={"type": "simple", "prompt": "!fail now"})
            job = await wait_done(s, base, token, body["job_id"])
            assert job["status"] == "failed" and job["result"] is None
            _, text, _ = await call(s, "GET", f"{base}/metrics")
            samples = metric_samples(text)
            assert samples["demo_jobs_failed"][0].value == 1

    asyncio.run(scenario())


# --- campaigns ------------------------------------------------------------------


def test_campaigns_crud(demo_target: Any) -> None:
    base = demo_target.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            status, page, _ = await call(s, "GET", f"{base}/api/campaigns")
            assert status == 200 and page["total"] == 50 and len(page["items"]) == 20
            status, page, _ = await call(s, "GET", f"{base}/api/campaigns", params={"limit": 5, "offset": 48})
            assert [c["id"] for c in page["items"]] == [49, 50]
            assert (await call(s, "GET", f"{base}/api/campaigns", params={"limit": "x"}))[0] == 400
            assert (await call(s, "GET", f"{base}/api/campaigns", params={"offset": -1}))[0] == 400

            status, one, _ = await call(s, "GET", f"{base}/api/campaigns/7")
            assert status == 200 and one["id"] == 7 and {"name", "budget", "status"} <= one.keys()
            assert (await call(s, "GET", f"{base}/api/campaigns/999"))[0] == 404
            assert (await call(s, "GET", f"{base}/api/campaigns/abc"))[0] == 404

            new = {"name": "Spring sale", "budget": 1200}
            assert (await call(s, "POST", f"{base}/api/campaigns", json=new))[0] == 401
            token = (await login(s, base))["access_token"]
            assert (await call(s, "POST", f"{base}/api/campaigns", token=token, json={"budget": 5}))[0] == 400
            bad_budget = {"name": "x", "budget": "lots"}
            assert (await call(s, "POST", f"{base}/api/campaigns", token=token, json=bad_budget))[0] == 400
            status, created, _ = await call(s, "POST", f"{base}/api/campaigns", token=token, json=new)
            assert status == 201 and created["id"] == 51 and created["name"] == "Spring sale"
            assert created["budget"] == 1200 and created["owner"] == "alice"
            status, fetched, _ = await call(s, "GET", f"{base}/api/campaigns/51")
            assert status == 200 and fetched == created
            assert (await call(s, "GET", f"{base}/api/campaigns"))[1]["total"] == 51

    asyncio.run(scenario())


def test_seeded_campaigns_are_reproducible(start_demo: Any) -> None:
    first, second = start_demo(seed=7), start_demo(seed=7)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            a = (await call(s, "GET", f"{first.url}/api/campaigns", params={"limit": 50}))[1]
            b = (await call(s, "GET", f"{second.url}/api/campaigns", params={"limit": 50}))[1]
            assert a == b

    asyncio.run(scenario())


# --- request counting -------------------------------------------------------------


def test_stats_count_every_request_exactly(demo_target: Any) -> None:
    base = demo_target.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            await call(s, "POST", f"{base}/_stats/reset")
            assert (await call(s, "GET", f"{base}/_stats"))[1] == {"requests": 0}
            plan = (
                [("GET", "/")] * 5
                + [("GET", "/health")] * 5
                + [("GET", "/api/campaigns")] * 10
                + [("GET", "/nowhere")] * 7  # 404
                + [("GET", "/api/auth/verify")] * 6  # 401
                + [("POST", "/api/auth/login")] * 3  # 400 (no body)
                + [("DELETE", "/health")]  # 405
            )
            assert len(plan) == 37
            results = await asyncio.gather(*(call(s, m, base + p) for m, p in plan))
            assert sorted({status for status, _, _ in results}) == [200, 400, 401, 404, 405]
            await call(s, "GET", f"{base}/metrics")  # observing the target is not counted
            await call(s, "GET", f"{base}/_stats")
            assert (await call(s, "GET", f"{base}/_stats"))[1] == {"requests": 37}

            samples = metric_samples((await call(s, "GET", f"{base}/metrics"))[1])["demo_http_requests"]
            by_route = {}
            for sample in samples:
                if sample.name == "demo_http_requests_total":
                    key = (sample.labels["route"], sample.labels["status"])
                    by_route[key] = by_route.get(key, 0) + sample.value
            assert by_route[("/api/campaigns", "200")] == 10
            assert by_route[("unmatched", "404")] == 7
            assert all("nowhere" not in route for route, _ in by_route)

    asyncio.run(scenario())


def test_stats_exact_under_concurrency(demo_target: Any) -> None:
    base = demo_target.url

    async def scenario() -> None:
        connector = aiohttp.TCPConnector(limit=50)
        async with aiohttp.ClientSession(connector=connector) as s:
            await call(s, "POST", f"{base}/_stats/reset")
            await asyncio.gather(*(call(s, "GET", f"{base}/api/campaigns/{i % 60}") for i in range(400)))
            assert (await call(s, "GET", f"{base}/_stats"))[1] == {"requests": 400}

    asyncio.run(scenario())


# --- fault injection ----------------------------------------------------------------


def test_error_rate_one_fails_api_but_not_operations(start_demo: Any) -> None:
    demo = start_demo(error_rate=1.0)
    base = demo.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            for path in ("/", "/api/campaigns", "/api/campaigns/1"):
                status, body, _ = await call(s, "GET", base + path)
                assert status == 500 and body == {"error": "injected"}
            status, _, _ = await call(s, "POST", f"{base}/api/auth/login", json={"username": "a", "password": "a"})
            assert status == 500
            assert (await call(s, "GET", f"{base}/health"))[0] == 200
            assert (await call(s, "GET", f"{base}/metrics"))[0] == 200
            assert (await call(s, "GET", f"{base}/_stats"))[1] == {"requests": 5}

    asyncio.run(scenario())


def test_partial_error_rate_is_seeded(start_demo: Any) -> None:
    async def statuses(base: str) -> list[int]:
        async with aiohttp.ClientSession() as s:
            return [(await call(s, "GET", f"{base}/api/campaigns/1"))[0] for _ in range(60)]

    first = asyncio.run(statuses(start_demo(error_rate=0.5, seed=3).url))
    second = asyncio.run(statuses(start_demo(error_rate=0.5, seed=3).url))
    assert first == second
    assert set(first) == {200, 500}


@pytest.mark.parametrize("demo_target", [{"latency_ms": 150}], indirect=True)
def test_latency_slows_api_responses(demo_target: Any) -> None:
    assert demo_target.config.latency_ms == 150
    base = demo_target.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            for path in ("/api/campaigns", "/"):
                status, _, elapsed = await call(s, "GET", base + path)
                assert status == 200 and elapsed >= 0.15

    asyncio.run(scenario())


def test_freeze_stalls_the_whole_target(start_demo: Any) -> None:
    demo = start_demo(freeze_every_s=0.8, freeze_for_s=0.4)
    base = demo.url

    async def scenario() -> float:
        # Probe back to back across more than one freeze period: a request is
        # issued while the loop is blocked, so it waits for the freeze to end.
        worst = 0.0
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 1.3
            while time.monotonic() < deadline:
                status, _, elapsed = await call(s, "GET", f"{base}/health")
                assert status == 200
                worst = max(worst, elapsed)
        return worst

    assert asyncio.run(scenario()) >= 0.2
    assert demo.state.freezer.freezes >= 1


# --- metrics --------------------------------------------------------------------------


def test_metrics_expose_a_real_backlog(start_demo: Any) -> None:
    demo = start_demo(workers=1)
    base = demo.url

    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            token = (await login(s, base))["access_token"]
            for _ in range(5):
                status, _, _ = await call(
                    s, "POST", f"{base}/api/content", token=token, json={"type": "complex", "prompt": "p"}
                )
                assert status == 202
            await asyncio.sleep(0.05)
            status, health, _ = await call(s, "GET", f"{base}/health")
            assert status == 200 and health["status"] == "ok" and health["queue_length"] >= 3
            status, text, _ = await call(s, "GET", f"{base}/metrics")
            assert status == 200
            samples = metric_samples(text)
            for family in (
                "demo_http_requests",
                "demo_http_request_duration_seconds",
                "demo_queue_length",
                "demo_queue_backlog_age_seconds",
                "demo_jobs_processed",
                "demo_jobs_failed",
                "demo_job_processing_seconds",
                "demo_jobs_published",
            ):
                assert family in samples, family
            assert samples["demo_queue_length"][0].value >= 3
            assert samples["demo_queue_backlog_age_seconds"][0].value > 0
            published = [x for x in samples["demo_jobs_published"] if x.name.endswith("_total")]
            assert published[0].value == 5

    asyncio.run(scenario())


# --- fixtures and CLI entry point ----------------------------------------------------


@pytest.mark.parametrize("demo_target", [{"workers": 2, "seed": 1}], indirect=True)
def test_demo_target_fixture_takes_overrides(demo_target: Any) -> None:
    assert demo_target.config.workers == 2 and demo_target.config.seed == 1
    assert demo_target.url == f"http://127.0.0.1:{demo_target.port}"


def test_serve_prints_url_and_stops_on_sigterm() -> None:
    code = "from loadgen.demo import DemoConfig, serve; serve(DemoConfig(port=0))"
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("demo target listening on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
