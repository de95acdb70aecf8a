"""The results store: PostgreSQL through asyncpg, or a SQLite file (the default).

``open_store(url)`` gives a :class:`Store` with the schema migrated; during a
run, :class:`RunWriter` feeds it from the engine's interval stream on its own
thread, journaling to a spool file so that nothing measured is lost.
"""

from __future__ import annotations

from .base import Store, StoreError
from .url import DEFAULT_DB_URL, DatabaseURL, parse_db_url

__all__ = ["Store", "StoreError", "DatabaseURL", "DEFAULT_DB_URL", "parse_db_url", "open_store"]


async def open_store(url: DatabaseURL | str | None, *, migrate: bool = True, timeout_s: float = 10.0) -> Store:
    """Connect to the store a URL names and bring its schema up to date."""
    if not isinstance(url, DatabaseURL):
        url = parse_db_url(url)
    store: Store
    if url.kind == "postgresql":
        from .postgres import PostgresStore

        store = await PostgresStore.open(url, timeout_s=timeout_s)
    else:
        from .sqlite import SQLiteStore

        store = await SQLiteStore.open(url)
    if migrate:
        try:
            await store.migrate()
        except StoreError:
            await store.close()
            raise
        except Exception as exc:
            await store.close()
            raise StoreError(f"cannot migrate the schema of {url.shown}: {exc}") from None
    return store
