"""Secrets out of everything shown or stored: URLs (targets, databases, collector
sources) and free text (a spec, a message). loadgen's one redactor."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["REDACTED", "mask_userinfo", "redact", "redact_text", "scrub", "split_credentials", "strip_credentials"]

REDACTED = "***"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (also in a query's password=); the
    user name is kept, it helps debugging. loadgen's one redactor: database URLs,
    target URLs, collector sources."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unparsable (a bad IPv6 literal, say): hide all of the user-info
        return mask_userinfo(url)
    netloc = parts.netloc
    secret_query = any(
        q.partition("=")[0].lower() in ("password", "passwd", "sslpassword") for q in parts.query.split("&")
    )
    if ":" not in netloc.rpartition("@")[0] and not secret_query:
        return url  # nothing to hide: keep the URL exactly as written
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else f"{user}@{hostport}"
    query = "&".join(
        f"{k}=***" if k.lower() in ("password", "passwd", "sslpassword") else f"{k}{'=' if sep else ''}{v}"
        for k, sep, v in (q.partition("=") for q in parts.query.split("&") if q)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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


def mask_userinfo(url: str) -> str:
    """``url`` with all of its ``user:password@`` shown as ``***@`` (no parsing: it never
    raises). For a target URL, whose user name may itself be a token sent as Basic auth."""
    start, at = _userinfo(url)
    return url if at < 0 else url[:start] + REDACTED + url[at:]


def strip_credentials(url: str) -> str:
    """``url`` without its ``user:password@`` part, exactly as written otherwise (no parsing:
    it never raises, whatever the URL), for a URL whose credentials were taken as Basic auth."""
    start, at = _userinfo(url)
    return url if at < 0 else url[:start] + url[at + 1:]


def _userinfo(url: str) -> tuple[int, int]:
    """Where ``url``'s user-info starts and the index of the ``@`` that ends it (-1: none).
    The last ``@`` of the authority: a password may hold one, a path may too."""
    i = url.find("://")
    if i < 0:
        return 0, -1
    start = end = i + 3
    while end < len(url) and url[end] not in "/?#":
        end += 1
    return start, url.rfind("@", start, end)


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
