"""The PostgreSQL store, through asyncpg."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import orjson

from .base import Store, StoreError
from .url import DatabaseURL

__all__ = ["PostgresStore"]

#: pg_advisory_xact_lock key serialising migrations (shards may all start at once).
_MIGRATION_LOCK = 0x6C6F6164  # "load"


class PostgresStore(Store):
    kind = "postgresql"
    driver_errors = (asyncpg.PostgresError, asyncpg.InterfaceError)

    def __init__(self, conn: asyncpg.Connection, url: DatabaseURL) -> None:
        self._conn = conn
        self.shown = url.shown

    @classmethod
    async def open(cls, url: DatabaseURL, *, timeout_s: float = 10.0) -> PostgresStore:
        try:
            conn = await asyncpg.connect(url.url, timeout=timeout_s, command_timeout=60)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreError(f"cannot reach the database {url.shown}: {_reason(exc)}") from None
        except ValueError as exc:  # asyncpg's own DSN parsing
            from ..errors import UsageError

            raise UsageError(f"--db {url.shown!r} is not a valid PostgreSQL URL: {exc}") from None
        return cls(conn, url)

    async def _execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, *args)

    async def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self._conn.transaction():
            await self._conn.executemany(sql, rows)

    async def _fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._conn.fetch(sql, *args)]

    async def _insert_returning_id(self, sql: str, *args: Any) -> int:
        return int(await self._conn.fetchval(sql, *args))

    async def _applied_versions(self) -> set[int]:
        async with self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        return {r["version"] for r in await self._conn.fetch("SELECT version FROM schema_migrations")}

    async def _apply_migration(self, version: int, name: str, sql: str) -> bool:
        async with self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if await self._conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                return False
            await self._conn.execute(sql)
            await self._conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
        return True

    def _ts_in(self, epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)

    def _ts_out(self, value: Any) -> float:
        return value.timestamp()

    def _json_in(self, obj: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    def _json_out(self, value: Any) -> Any:
        return orjson.loads(value)

    async def close(self) -> None:
        try:
            await self._conn.close(timeout=5)
        except Exception:  # closing a broken connection must not hide the real error
            self._conn.terminate()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
