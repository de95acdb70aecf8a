"""Drive one user's HTTP client from a test, on a fresh session and event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from loadgen.http.client import Client, Session
from loadgen.engine.recorder import EndpointInterval, Recorder

__all__ = ["run_client", "run_bounded", "rows"]


def run_client(
    coro_fn: Callable[[Client], Awaitable[Any]], base_url: str | None, **session_kw: Any
) -> tuple[Any, Recorder, Session]:
    """``coro_fn(client)`` run to completion; returns (its result, the recorder, the session)."""

    async def main() -> tuple[Any, Recorder, Session]:
        rec = Recorder()
        sess = Session(rec, **session_kw)
        sess.start()
        client = Client(sess, base_url)
        try:
            return await coro_fn(client), rec, sess
        finally:
            client.close()
            sess.close()

    return asyncio.run(main())


def run_bounded(coro_fn: Callable[[Client], Awaitable[Any]], base_url: str | None,
                **session_kw: Any) -> tuple[Any, Recorder]:
    """:func:`run_client` with every request bounded by a few seconds (timeout 10 s, connect 5 s)."""
    session_kw.setdefault("timeout_s", 10.0)
    session_kw.setdefault("connect_timeout_s", 5.0)
    result, rec, _ = run_client(coro_fn, base_url, **session_kw)
    return result, rec


def rows(rec: Recorder) -> dict[str, EndpointInterval]:
    """Every row the calls left: one snapshot (taking it closes the interval, so take it once)."""
    return rec.snapshot().endpoints
