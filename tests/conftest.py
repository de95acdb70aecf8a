"""Shared pytest fixtures."""

from __future__ import annotations

import os

from collections.abc import Callable, Iterator
from typing import Any

import pytest


# --- demo target (loadgen.demo) ---------------------------------------------


@pytest.fixture
def start_demo() -> Iterator[Callable[..., Any]]:
    """Factory: ``start_demo(**DemoConfig overrides)`` -> a running ThreadedDemo.

    The server runs on 127.0.0.1, a free port, in its own thread with its own
    event loop (so load can be driven from the test's thread); it has ``.url``,
    ``.port``, ``.config``, ``.state`` and is stopped at teardown.
    """
    from loadgen.demo import DemoConfig, ThreadedDemo

    started: list[ThreadedDemo] = []

    def _start(**overrides: Any) -> ThreadedDemo:
        overrides.setdefault("port", 0)
        demo = ThreadedDemo.start(DemoConfig(**overrides))
        started.append(demo)
        return demo

    yield _start
    for demo in started:
        demo.stop()


@pytest.fixture
def demo_target(request: pytest.FixtureRequest, start_demo: Callable[..., Any]) -> Any:
    """A running demo target with default settings, or the overrides given by indirect parametrisation.

    ``@pytest.mark.parametrize("demo_target", [{"latency_ms": 5}], indirect=True)``
    """
    return start_demo(**getattr(request, "param", {}))


# --- CI: a skipped test is a failed one --------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """With LOADGEN_REQUIRE_ALL set (as .ci/run does), a skip fails: CI must not pass on missing servers."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("LOADGEN_REQUIRE_ALL") and rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.longrepr = f"skipped, but LOADGEN_REQUIRE_ALL is set: {reason}"


# --- PostgreSQL (a real server) ----------------------------------------------


def _pg_reachable(url: str) -> bool:
    import asyncio

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
        return True
    except Exception:
        return False


def _throwaway_postgres(tmp: Any) -> tuple[str, Callable[[], None]] | None:
    """initdb + pg_ctl into a temp dir on a free port (as the postgres user when we are root)."""
    import glob
    import pwd
    import shutil
    import socket
    import subprocess

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (bins[-1] if bins else None)
    if not initdb:
        return None
    bindir = os.path.dirname(initdb)
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            return None
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    data = os.path.join(tmp, "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(prefix + [initdb, "-D", data, "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    subprocess.run(
        prefix + [os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-l", os.path.join(tmp, "log"),
                  "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1", "start"],
        check=True, capture_output=True,
    )

    def stop() -> None:
        subprocess.run(prefix + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server we may create databases in: $LOADGEN_TEST_PG_URL, else the
    local default (postgres@127.0.0.1:5432), else a throwaway cluster, else skip."""
    url = os.environ.get("LOADGEN_TEST_PG_URL")
    if url:
        if not _pg_reachable(url):
            pytest.fail(f"LOADGEN_TEST_PG_URL={url} is not reachable")
        yield url
        return
    default = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _pg_reachable(default):
        yield default
        return
    try:
        started = _throwaway_postgres(str(tmp_path_factory.mktemp("pg")))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL: none at 127.0.0.1:5432 and a throwaway one failed to start: {exc}")
    if started is None:
        pytest.skip("no PostgreSQL: none at 127.0.0.1:5432, no initdb to start one (set LOADGEN_TEST_PG_URL)")
    url, stop = started
    try:
        yield url
    finally:
        stop()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped after)."""
    import asyncio
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    name = f"loadgen_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_admin_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    parts = urlsplit(pg_admin_url)
    yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Each store test runs against SQLite and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/results.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture(autouse=True)
def _isolated_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No test writes loadgen.db into the checkout or spools into the home directory."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LOADGEN_DB_URL", f"sqlite:///{tmp_path}/default-loadgen.db")
    monkeypatch.setenv("LOADGEN_SPOOL_DIR", str(tmp_path / "spool"))
    # Inside GitHub Actions every run would append its markdown to the job's real summary.
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """loadgen honours HTTP_PROXY and friends, as requests does: a machine's own proxy settings
    must not route the tests' loopback traffic; proxy tests set their own."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
