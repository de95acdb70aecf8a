"""The embedded default store: one SQLite file.

The driver is the standard library's (synchronous) ``sqlite3``. That is fine
for an async interface here: during a run the store lives on the writer's own
thread and loop (never the engine's), and the CLI's commands have nothing else
to do while a query runs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from typing import Any

import orjson

from .base import Store, StoreError
from .url import DatabaseURL

__all__ = ["SQLiteStore"]

_PLACEHOLDER = re.compile(r"\$(\d+)")


class SQLiteStore(Store):
    kind = "sqlite"
    driver_errors = (sqlite3.Error,)

    def __init__(self, url: DatabaseURL) -> None:
        assert url.path is not None
        self.shown = url.shown
        self.path = url.path
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise StoreError(f"cannot open {self.shown}: the folder {folder} does not exist")
        try:
            # isolation_level=None: autocommit, with explicit BEGIN where several statements belong together.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.row_factory = sqlite3.Row
            # WAL lets a report or `runs list` read while a run writes.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.shown}: {exc}") from None

    @classmethod
    async def open(cls, url: DatabaseURL) -> SQLiteStore:
        return cls(url)

    @staticmethod
    def _sql(sql: str) -> str:
        return _PLACEHOLDER.sub(r"?\1", sql)

    async def _execute(self, sql: str, *args: Any) -> None:
        self._db.execute(self._sql(sql), args)

    async def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._db.execute("BEGIN")
        try:
            self._db.executemany(self._sql(sql), rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    async def _fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute(self._sql(sql), args).fetchall()]

    async def _insert_returning_id(self, sql: str, *args: Any) -> int:
        return int(self._db.execute(self._sql(sql), args).fetchone()[0])

    async def _applied_versions(self) -> set[int]:
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        return {r[0] for r in self._db.execute("SELECT version FROM schema_migrations")}

    async def _apply_migration(self, version: int, name: str, sql: str) -> bool:
        # BEGIN IMMEDIATE takes the write lock first, so two processes migrating at once serialise.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                self._db.execute("ROLLBACK")
                return False
            for statement in _statements(sql):
                self._db.execute(statement)
            self._db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, self._ts_in(dt.datetime.now(dt.timezone.utc).timestamp())),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return True

    def _ts_in(self, epoch: float) -> str:
        return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="microseconds")

    def _ts_out(self, value: Any) -> float:
        return dt.datetime.fromisoformat(value).timestamp()

    def _json_in(self, obj: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    def _json_out(self, value: Any) -> Any:
        return orjson.loads(value)

    async def close(self) -> None:
        self._db.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``sqlite3.execute`` takes one at a time;
    ``executescript`` would commit behind our transaction's back). The schema's
    statements contain no semicolons inside literals; comments are dropped."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
