"""Database URLs: which store a URL names, and how to show it without its password."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ..errors import UsageError
from ..redact import redact

__all__ = ["DatabaseURL", "parse_db_url", "DEFAULT_DB_URL"]

#: With no --db, LOADGEN_DB_URL or DATABASE_URL: a SQLite file in the working directory.
DEFAULT_DB_URL = "sqlite:///loadgen.db"


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed ``--db`` value. ``url`` holds the password; ``shown`` never does."""

    kind: Literal["postgresql", "sqlite"]
    url: str
    shown: str
    path: str | None = None  # sqlite: the file


def parse_db_url(url: str | None) -> DatabaseURL:
    """Parse ``--db``: ``postgresql://…`` (or ``postgres://``), ``sqlite:///relative.db``,
    ``sqlite:////absolute.db``; None means :data:`DEFAULT_DB_URL`."""
    if url is None or not url.strip():
        url = DEFAULT_DB_URL
    url = url.strip()
    shown = redact(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise UsageError(
            f"--db {shown!r} is not a database URL; use postgresql://USER@HOST/DB or sqlite:///FILE"
        )
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise UsageError(f"--db {shown!r} is not a valid PostgreSQL URL: {exc}") from None
        if not parts.hostname and "host=" not in parts.query:
            raise UsageError(f"--db {shown!r} names no host; use postgresql://USER@HOST[:PORT]/DB")
        return DatabaseURL("postgresql", url, shown)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise UsageError(
                f"--db {shown!r} names no file; use sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = rest[1:]  # sqlite:///x.db -> x.db ; sqlite:////tmp/x.db -> /tmp/x.db
        return DatabaseURL("sqlite", url, shown, path=os.path.expanduser(path))
    raise UsageError(
        f"--db {shown!r}: the scheme {scheme!r} is not supported; use postgresql://… or sqlite:///FILE"
    )
