"""Reading a HAR 1.x file (HTTP Archive, as browsers and proxies export it) into plain values.

Only what a replay needs is kept: per entry the request (method, URL, headers,
body), the response (status, headers, body text) and when it started and
ended. A file that is not HAR 1.x JSON is one :class:`UsageError`; an entry
too broken to replay is skipped with a warning, so one odd entry does not
cost the whole recording.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime

from ..errors import UsageError

__all__ = ["Exchange", "Page", "Recording", "read_har"]

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Page:
    """A page of the recording (``log.pages``): entries refer to it by ``id``."""

    id: str
    title: str


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its response (a HAR entry)."""

    index: int  #: position in the file, for warnings
    page: str | None  #: the entry's pageref
    started: float  #: seconds since the epoch
    ended: float  #: ``started`` plus the entry's total time
    method: str
    url: str
    request_headers: Pairs
    body_mime: str  #: postData.mimeType ("" without a body)
    body_text: str | None  #: postData.text
    form: Pairs | None  #: postData.params, when the recorder gave them instead of text
    status: int  #: 0 when no response was recorded (blocked, aborted)
    response_headers: Pairs
    response_cookies: Pairs  #: the cookies the response set, (name, value)
    response_mime: str
    response_text: str | None  #: the body as text, base64 already decoded (None: not recorded)
    resource_type: str  #: Chrome's and Playwright's ``_resourceType`` ("" when absent)
    from_cache: bool  #: answered by the browser's cache: no request reached the server


@dataclass(frozen=True)
class Recording:
    """A HAR file's pages and entries, entries in the order they started."""

    version: str
    creator: str
    pages: tuple[Page, ...]
    entries: tuple[Exchange, ...]
    warnings: tuple[str, ...]


def _pairs(items: object) -> Pairs:
    """``[{"name": ..., "value": ...}]`` as (name, value) pairs; malformed items are left out."""
    if not isinstance(items, list):
        return ()
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            value = item.get("value", "")
            out.append((item["name"], value if isinstance(value, str) else str(value)))
    return tuple(out)


def _time(text: object) -> float | None:
    """Seconds since the epoch of an ISO 8601 ``startedDateTime``, or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _set_cookies(headers: object) -> Pairs:
    """(name, value) of each Set-Cookie header, for a recorder that did not fill ``cookies``."""
    out = []
    for name, value in _pairs(headers):
        if name.lower() == "set-cookie":
            for line in value.split("\n"):  # some recorders join repeated headers with newlines
                cookie_name, sep, rest = line.partition("=")
                if sep and cookie_name.strip():
                    out.append((cookie_name.strip(), rest.split(";", 1)[0].strip()))
    return tuple(out)


def _content_text(content: object) -> str | None:
    if not isinstance(content, dict) or not isinstance(content.get("text"), str):
        return None
    text: str = content["text"]
    if content.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None  # a binary body: nothing a replay reads from it
    return text


def _from_cache(chrome_flag: object, cache: object, total_ms: float) -> bool:
    """Whether the browser answered from its cache: Chrome says so in ``_fromCache``; the spec's
    ``cache.beforeRequest`` with no time spent on the network says the same."""
    if chrome_flag:
        return True
    return isinstance(cache, dict) and bool(cache.get("beforeRequest")) and total_ms == 0


def _exchange(index: int, raw: object, previous: float) -> Exchange | str:
    """The entry as an Exchange, or why it cannot be replayed."""
    if not isinstance(raw, dict):
        return "not an object"
    request, response = raw.get("request"), raw.get("response")
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        return "no request URL"
    method = request.get("method")
    if not isinstance(method, str) or not method.strip():
        return "no request method"
    if not isinstance(response, dict):
        response = {}
    status = response.get("status", 0)
    if isinstance(status, bool) or not isinstance(status, int):
        status = 0
    started = _time(raw.get("startedDateTime"))
    if started is None:
        started = previous  # no think time can be told for it, but it still replays
    total_ms = raw.get("time", 0)
    if isinstance(total_ms, bool) or not isinstance(total_ms, int | float) or not 0 <= total_ms < math.inf:
        total_ms = 0
    post = request.get("postData")
    post = post if isinstance(post, dict) else {}
    body_text = post.get("text") if isinstance(post.get("text"), str) else None
    params = _pairs(post.get("params"))
    content = response.get("content")
    cookies = response.get("cookies")
    cache = raw.get("cache")
    return Exchange(
        index=index,
        page=raw["pageref"] if isinstance(raw.get("pageref"), str) else None,
        started=started,
        ended=started + total_ms / 1000.0,
        method=method.strip().upper(),
        url=request["url"],
        request_headers=_pairs(request.get("headers")),
        body_mime=str(post.get("mimeType") or ""),
        body_text=body_text,
        form=params if params and body_text is None else None,
        status=status,
        response_headers=_pairs(response.get("headers")),
        response_cookies=_pairs(cookies) or _set_cookies(response.get("headers")),
        response_mime=str(content.get("mimeType") or "") if isinstance(content, dict) else "",
        response_text=_content_text(content),
        resource_type=str(raw.get("_resourceType") or "").lower(),
        from_cache=_from_cache(raw.get("_fromCache"), cache, total_ms),
    )


def read_har(text: str, shown: str) -> Recording:
    """Parse HAR text (``shown`` names the file in messages); UsageError when it is not HAR 1.x."""
    try:
        doc = json.loads(text.lstrip("\ufeff"))  # the spec lets a writer put a BOM first
    except json.JSONDecodeError as exc:
        raise UsageError(f"{shown} is not a HAR file: it is not JSON (line {exc.lineno}: {exc.msg}).") from None
    log = doc.get("log") if isinstance(doc, dict) else None
    if not isinstance(log, dict) or not isinstance(log.get("entries"), list):
        raise UsageError(f"{shown} is not a HAR file: it has no log object with a list of entries.")
    version = log.get("version", "1.2")
    if not isinstance(version, str) or not version.startswith("1."):
        raise UsageError(f"{shown} is HAR version {version!r}; loadgen reads HAR 1.x (1.1 and 1.2).")
    creator = log.get("creator")
    creator_name = ""
    if isinstance(creator, dict):
        creator_name = " ".join(str(creator.get(k) or "") for k in ("name", "version")).strip()
    pages = []
    for raw in log.get("pages") or ():
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            pages.append(Page(raw["id"], str(raw.get("title") or "")))
    entries: list[Exchange] = []
    warnings: list[str] = []
    previous = 0.0
    for index, raw in enumerate(log["entries"]):
        got = _exchange(index, raw, previous)
        if isinstance(got, str):
            warnings.append(f"entry {index}: {got}; skipped")
            continue
        entries.append(got)
        previous = got.started
    # HAR says entries are sorted by start; some writers do not, and replay order is start order.
    entries.sort(key=lambda e: (e.started, e.index))
    return Recording(version, creator_name, tuple(pages), tuple(entries), tuple(warnings))
