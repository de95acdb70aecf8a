"""An HTTP/1.1 request as bytes: the checks that keep a request from smuggling lines, and the builders.

A request that cannot be put on the wire as asked (CR/LF/NUL or non-Latin-1
in a header, a method that is not a token, a URL with spaces or control
characters) raises :class:`Invalid` here; the client records it once as
``invalid_request`` and never sends it. The checks are a few scans at C speed,
so the common request pays little for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .._version import __version__
from ..engine.recorder import Recorder
from ..errors import UsageError
from ..redact import mask_userinfo
from .origin import Origin

__all__ = ["Invalid", "FixedRequest", "build", "header_lines", "line_problem", "has_authorization", "USER_AGENT"]

USER_AGENT = f"loadgen/{__version__}"
_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(_TCHAR + "+")
#: Header names known to be tokens: names are nearly always constants, so each is checked
#: once per process (a set lookup per request after that); bounded, the rest checked each time.
_NAMES_OK = {"Host", "User-Agent", "Accept", "Authorization", "Content-Type", "Cookie", "Content-Length"}
_MAX_NAMES_OK = 1000
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Methods known to be tokens (no check needed on the hot path).
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
DEFAULT_NAMES = frozenset({"User-Agent", "Accept"})
CONTENT_TYPE_LINES: dict[str | None, bytes] = {
    None: b"",
    "application/json": b"Content-Type: application/json\r\n",
    "application/x-www-form-urlencoded": b"Content-Type: application/x-www-form-urlencoded\r\n",
}


class Invalid(Exception):
    """A request that cannot be put on the wire as asked; the message says why."""


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message: control characters escaped, long text cut."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def printable(text: str) -> str:
    """``text`` with control characters escaped (for a row name)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def line_problem(method: str, url: str) -> str | None:
    """Why a request line with ``method`` and ``url`` cannot be sent, or None."""
    if method not in METHODS and not _TOKEN.fullmatch(method):
        return f"method {shown(method)} is not an HTTP token"
    if " " in url or not url.isprintable():
        return f"URL {shown(mask_userinfo(url))} contains a space or a control character; percent-encode it"
    return None


def explain(headers: Mapping[str, Any]) -> NoReturn:
    """Raise Invalid naming the first header that cannot be sent (the error path only)."""
    for k, v in headers.items():
        name, value = f"{k}", f"{v}"
        if not _TOKEN.fullmatch(name):
            raise Invalid(f"header name {shown(name, 40)} is not an HTTP token")
        if _BAD_VALUE.search(value):
            raise Invalid(f"header {shown(name, 40)} has CR, LF or NUL in its value")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise Invalid(f"header {shown(name, 40)} has a value that is not Latin-1 text") from None
    raise Invalid("the request's headers cannot be sent")


def names_ok(headers: Mapping[str, Any]) -> bool:
    """True when every header name is a token (remembering the names found good)."""
    for k in headers:
        if k not in _NAMES_OK:
            name = f"{k}"
            if not _TOKEN.fullmatch(name):
                return False
            if name is k and len(_NAMES_OK) < _MAX_NAMES_OK:
                _NAMES_OK.add(name)
    return True


def lines_ok(text: str, lines: int, headers: Mapping[str, Any]) -> bool:
    """True when ``text``, made of ``lines`` CRLF-ended lines from ``headers``, is safe to send.

    A few scans at C speed: the only CR and LF are the line ends (no value can
    smuggle in a line of its own), no NUL, and every header name is a token.
    """
    return (
        text.count("\n") == lines and text.count("\r") == lines and "\0" not in text
        and (headers.keys() <= _NAMES_OK or names_ok(headers))
    )


def header_lines(headers: Mapping[str, Any]) -> bytes:
    """``headers`` as header lines, checked: Invalid names the first that cannot be sent."""
    lines = []
    for k, v in headers.items():
        lines.append(f"{k}: {v}\r\n")
    s = "".join(lines)
    if lines_ok(s, len(headers), headers):
        try:
            return s.encode("latin-1")
        except UnicodeEncodeError:
            pass
    explain(headers)


def has_authorization(headers: Mapping[str, Any]) -> bool:
    return any(f"{k}".lower() == "authorization" for k in headers)



def build(method: str, target: str, host_header: str, headers: Mapping[str, Any], body: bytes,
          length: int | None = None) -> bytes:
    """A whole request; the method and target must have passed line_problem. Raises Invalid.

    ``length``: the Content-Length of a body streamed after these bytes (``body`` is then empty).
    """
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n"]
    for k, v in headers.items():
        lines.append(f"{k}: {v}\r\n")
    # Line ends: the request line, Host, one per header, Content-Length if any, the blank line.
    ends = len(headers) + 3
    if body or length is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if length is None else length}\r\n\r\n")
        ends += 1
    else:
        lines.append("\r\n")
    head = "".join(lines)
    if not lines_ok(head, ends, headers):
        explain(headers)
    try:
        return head.encode("latin-1") + body
    except UnicodeEncodeError:
        pass
    header_lines(headers)  # raises if a header is not Latin-1
    # Else the target holds characters past Latin-1: sent as UTF-8, as on the cached path.
    line, _, rest = head.partition("\r\n")
    return line.encode() + b"\r\n" + rest.encode("latin-1") + body



class FixedRequest:
    """A request whose bytes never change (ad-hoc ``--url`` mode): built once, sent many times.

    A request that cannot be sent as given is a :class:`UsageError` (one sentence).
    """

    __slots__ = ("origin", "data", "method", "endpoint", "size", "head", "url", "headers", "body")

    def __init__(self, recorder: Recorder, url: str, method: str = "GET",
                 headers: Mapping[str, str] | None = None, body: bytes = b"",
                 name: str | None = None) -> None:
        self.method = method.upper()
        self.url, self.headers, self.body = url, dict(headers or {}), body  # a redirect's next hop is built from them
        problem = line_problem(self.method, url)
        if problem is not None:
            raise UsageError(f"the --url request cannot be sent: {problem}")
        self.origin = Origin(url)
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        hdrs = {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}
        if self.origin.auth is not None and not has_authorization(hdrs):
            hdrs["Authorization"] = self.origin.auth
        try:
            self.data = build(self.method, target, self.origin.host_header, hdrs, body)
        except Invalid as exc:
            raise UsageError(f"the --url request cannot be sent: {exc}") from None
        self.size = len(self.data)
        self.head = self.method == "HEAD"
        self.endpoint = recorder.endpoint(self.method, name or (parts.path or "/"))

