"""Which recorded requests a load test replays: the application's, not the browser's.

Dropped by default: static assets (scripts, styles, images, fonts, media: a
CDN's load, not the application's), requests to other sites (analytics, ads,
fonts services), and what cannot be replayed as an HTTP request at all
(websockets, ``data:`` URLs, cache hits, CORS preflights the browser sends on
its own, requests that never got an answer).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from .model import Exchange, Recording

__all__ = ["Selection", "is_asset", "origin_of", "select"]

_ASSET_TYPES = frozenset({"script", "stylesheet", "image", "font", "media", "texttrack", "manifest"})
_ASSET_MIME_PREFIXES = ("image/", "font/", "audio/", "video/", "text/css", "application/font", "application/x-font")
_ASSET_MIMES = frozenset({
    "text/javascript", "application/javascript", "application/x-javascript", "application/ecmascript",
    "text/ecmascript", "application/wasm", "application/vnd.ms-fontobject", "application/manifest+json",
})
_ASSET_EXTENSIONS = frozenset({
    "js", "mjs", "css", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "ogg", "mp3", "wav", "m4a", "wasm",
})


@dataclass(frozen=True)
class Selection:
    """The requests kept, the scenario's host, and what was dropped and why."""

    kept: tuple[Exchange, ...]
    origin: str  #: scheme://host[:port] of the first page: the scenario's host
    dropped: dict[str, int]  #: reason -> count
    warnings: tuple[str, ...]


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, the default port left out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _site(host: str) -> str:
    """The site a host belongs to: an IP is its own; a name, its last two labels (three
    under a two-letter country code with a short second level, as example.co.uk)."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3 else 2
    return ".".join(labels[-keep:])


def _mime(text: str) -> str:
    return text.split(";", 1)[0].strip().lower()


def is_asset(e: Exchange) -> bool:
    """A script, style sheet, image, font or media file, by the browser's type, else MIME, else extension."""
    if e.resource_type:
        return e.resource_type in _ASSET_TYPES
    mime = _mime(e.response_mime)
    if mime in _ASSET_MIMES or mime.startswith(_ASSET_MIME_PREFIXES):
        return True
    last = urlsplit(e.url).path.rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in _ASSET_EXTENSIONS


def _unreplayable(e: Exchange) -> str | None:
    """Why an entry cannot be replayed as an HTTP request, or None."""
    scheme = urlsplit(e.url).scheme.lower()
    if scheme in ("ws", "wss") or e.resource_type == "websocket" or e.status == 101:
        return "websockets (not supported)"
    if scheme not in ("http", "https"):
        return f"{scheme or 'scheme-less'} URLs (not HTTP)"
    if e.from_cache:
        return "answered from the browser's cache"
    if e.status <= 0:
        return "no response was recorded"
    if e.method == "OPTIONS" and any(n.lower() == "access-control-request-method" for n, _ in e.request_headers):
        return "CORS preflights (the browser sends them itself)"
    return None


def _first_page_url(recording: Recording, usable: list[Exchange]) -> str:
    """The URL of the first page the browser loaded: the first document, else the first request."""
    for e in usable:
        if e.resource_type == "document" or _mime(e.response_mime) in ("text/html", "application/xhtml+xml"):
            return e.url
    return usable[0].url


def select(recording: Recording, *, keep_assets: bool, keep_third_party: bool) -> Selection:
    """Keep the entries a load test should replay (see the module docstring)."""
    dropped: Counter[str] = Counter()
    usable: list[Exchange] = []
    for e in recording.entries:
        why = _unreplayable(e)
        if why is None:
            usable.append(e)
        else:
            dropped[why] += 1
    warnings = [f"{n} request(s) not replayed: {why}" for why, n in sorted(dropped.items())]
    if not usable:
        return Selection((), "", dict(dropped), tuple(warnings))
    origin = origin_of(_first_page_url(recording, usable))
    site = _site(urlsplit(origin).hostname or "")
    kept: list[Exchange] = []
    others: Counter[str] = Counter()
    for e in usable:
        if not keep_third_party and _site((urlsplit(e.url).hostname or "").lower()) != site:
            dropped["third-party hosts"] += 1
            others[origin_of(e.url)] += 1
            continue
        if not keep_assets and is_asset(e):
            dropped["static assets"] += 1
            continue
        kept.append(e)
    if others:
        hosts = ", ".join(f"{o} ({n})" for o, n in sorted(others.items()))
        warnings.append(f"requests to other hosts dropped: {hosts}; --keep-third-party keeps them")
    if dropped["static assets"]:
        warnings.append(f"{dropped['static assets']} static asset request(s) dropped; --keep-assets keeps them")
    return Selection(tuple(kept), origin, dict(dropped), tuple(warnings))
