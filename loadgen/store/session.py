"""The store for the steps after a run, opened once (and only when one needs it).

A run's merge, comparison, outcome and report all read or write the database
after the engine is done. Each used to open (and migrate) its own connection;
here they share one, opened by the first step that asks for it and closed when
the run's session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from . import open_store
from .base import Store, StoreError
from .url import DatabaseURL

__all__ = ["StoreSession"]

T = TypeVar("T")


class StoreSession:
    """``with StoreSession(url) as db: db.run(fn)``: ``fn(store)`` on one event loop and
    one connection for the whole block. ``migrate``: bring the schema up to date when
    it opens (not needed when this process's run writer already did)."""

    def __init__(self, url: DatabaseURL, *, migrate: bool = True) -> None:
        self.url = url
        self.migrate = migrate
        self._runner: asyncio.Runner | None = None
        self._stack = contextlib.AsyncExitStack()
        self._store: Store | None = None

    def __enter__(self) -> StoreSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._runner is None:
            return
        try:
            self._runner.run(self._stack.aclose())
        finally:
            self._runner.close()
            self._runner = None
            self._store = None

    def run(self, fn: Callable[[Store], Awaitable[T]]) -> T:
        """``fn(store)``'s result; the first call opens the store."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self._call(fn))

    async def _call(self, fn: Callable[[Store], Awaitable[T]]) -> T:
        if self._store is None:
            store = await open_store(self.url, migrate=self.migrate)
            self._store = await self._stack.enter_async_context(store)
        try:
            return await fn(self._store)
        except (OSError, TimeoutError, *self._store.driver_errors) as exc:
            # The database died between two steps: one sentence and exit 3, not a traceback.
            raise StoreError(f"the database {self.url.shown} failed: {type(exc).__name__}: {exc}") from None
