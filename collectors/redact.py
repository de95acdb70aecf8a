"""Keeping passwords out of labels, error messages and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from loadgen.store.url import redact

__all__ = ["REDACTED", "redact_text", "redact_url", "scrub", "split_credentials"]

REDACTED = "***"


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its ``user:password@`` part, and the (percent-decoded) user and password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return bare, user, password


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (the user name is kept, it helps
    debugging): loadgen's one URL redactor, :func:`loadgen.store.url.redact`."""
    return redact(url)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (raw and percent-encoded) replaced by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, REDACTED)
    return text


_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@\s:]*:)[^/@\s]*@")


def redact_text(text: str) -> str:
    """``text`` (a spec, a message) with the password of every ``scheme://user:password@`` in it replaced."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", text)
