"""Drive one user's HTTP client from a test, on a fresh session and event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from loadgen.http.client import Client, Session
from loadgen.engine.recorder import Recorder

__all__ = ["run_client"]


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
