"""The request headers a replay sends: the application's, not the browser's.

A browser adds headers of its own to every request: fetch metadata and client
hints (``sec-*``), its identity, the encodings and languages it accepts,
connection management, caching validators, where the request came from
(``Origin``, ``Referer``), and HTTP/2 pseudo-headers. The load generator sends
its own versions of those or none; cookies are left to each user's cookie jar
(the server sets them afresh for every user). What is left is what the
application itself asked for: ``Authorization``, ``X-Csrf-Token``, an ``Accept``
of one media type, custom headers.
"""

from __future__ import annotations

__all__ = ["clean_headers"]

_DROPPED = frozenset({
    "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade",
    "content-length", "expect", "user-agent", "accept-encoding", "accept-language", "accept-charset",
    "cookie", "origin", "referer", "dnt", "upgrade-insecure-requests", "cache-control", "pragma",
    "if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "priority",
    "purpose", "x-client-data", "save-data", "device-memory", "downlink", "ect", "rtt", "viewport-width",
    "dpr", "width", "http2-settings", "alt-used",
})
_DROPPED_PREFIXES = ("sec-", ":", "proxy-")


def _title(name: str) -> str:
    """``x-csrf-token`` -> ``X-Csrf-Token``: the usual spelling (header names are case-insensitive)."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def clean_headers(headers: tuple[tuple[str, str], ...], *, body_sets_type: bool) -> list[tuple[str, str]]:
    """The headers worth replaying, in recorded order (see the module docstring).

    ``body_sets_type``: the replayed body is ``json=`` or form ``data=``, whose
    ``Content-Type`` the client writes itself.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in headers:
        low = name.strip().lower()
        if not low or low in _DROPPED or low.startswith(_DROPPED_PREFIXES) or low in seen:
            continue
        if low == "content-type" and body_sets_type:
            continue
        # The browser's default Accept lists (*/*, or text/html,...;q=0.9) say nothing about the app.
        if low == "accept" and ("," in value or value.strip() in ("*/*", "")):
            continue
        seen.add(low)
        out.append((_title(low), value))
    return out
