"""What a scenario gets back from a request.

A :class:`Response` is built once per request with the raw header list and body
chunks as they came off the wire; everything a scenario may or may not read
(the header mapping, decompression, text, JSON) is computed only when asked,
so a task that ignores the response pays nothing for it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from ..engine.recorder import Endpoint

__all__ = ["Response", "Headers", "ResponseError", "ResponseTooLarge"]


class ResponseError(ValueError):
    """The body cannot be read as the response says it is (``content``, ``text``, ``json()``).

    A ``ValueError``, so that code catching a ``json()`` failure keeps working.
    The response is failed and counted as an error once, whichever of its
    reads raised.
    """


class ResponseTooLarge(ResponseError):
    """The decoded body would pass ``max_decoded_bytes`` (kind ``too_large``)."""

_MISSING = object()


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only view of response headers (later values win; see ``get_all``)."""

    __slots__ = ("_raw", "_map")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._map: dict[str, str] | None = None

    def _build(self) -> dict[str, str]:
        m = {}
        for k, v in self._raw:
            m[k.decode("latin-1").lower()] = v.decode("latin-1")
        self._map = m
        return m

    def __getitem__(self, key: str) -> str:
        return (self._map or self._build())[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return (self._map or self._build()).get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in (self._map or self._build())

    def __iter__(self) -> Iterator[str]:
        return iter(self._map or self._build())

    def __len__(self) -> int:
        return len(self._map or self._build())

    def get_all(self, key: str) -> list[str]:
        """Every value of a header that may repeat (``Set-Cookie``)."""
        k = key.lower().encode("latin-1")
        return [v.decode("latin-1") for n, v in self._raw if n.lower() == k]

    def __repr__(self) -> str:
        return f"Headers({dict(self)!r})"


def _json_path(doc: Any, path: str) -> Any:
    """Follow ``a.b.0.c`` through dicts and lists; _MISSING when absent."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, list) and part.lstrip("-").isdigit():
            i = int(part)
            cur = cur[i] if -len(cur) <= i < len(cur) else _MISSING
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _decode(body: bytes, enc: bytes, limit: int) -> bytes:
    """Decompress gzip (member after member) or deflate, never past ``limit`` bytes of output."""
    if enc == b"deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, "deflate", limit)
        except ResponseTooLarge:
            raise
        except ResponseError:  # raw deflate without the zlib header, as some servers send
            return _inflate(body, -zlib.MAX_WBITS, "deflate", limit)
    return _inflate(body, 16 + zlib.MAX_WBITS, "gzip", limit)


def _inflate(data: bytes, wbits: int, name: str, limit: int) -> bytes:
    out: list[bytes] = []
    size = 0
    try:
        while True:
            d = zlib.decompressobj(wbits)
            piece = d.decompress(data, limit - size + 1)  # at most one byte past the limit
            size += len(piece)
            if size > limit:
                raise ResponseTooLarge(
                    f"the decoded body passes the limit of {limit} bytes; raise it with --max-decoded-size"
                )
            out.append(piece)
            if not d.eof:
                raise ResponseError(f"the {name} body is cut short")
            data = d.unused_data
            if name != "gzip" or data[:2] != b"\x1f\x8b":  # another gzip member follows, or nothing does
                break
    except zlib.error as e:
        raise ResponseError(f"the body is not valid {name} ({e})") from None
    return out[0] if len(out) == 1 else b"".join(out)


class Response:
    """An HTTP response: ``status``, ``headers``, ``content``, ``text``, ``json()``.

    ``error`` names the transport error kind (``connect``, ``timeout``,
    ``reset``, ``protocol``, ``too_large`` …) when no response arrived;
    ``status`` is then 0.

    ``content`` decodes gzip and deflate a piece at a time and stops past
    ``limits.max_decoded_bytes``: the response is then failed, one error of
    kind ``too_large`` is counted, and every read raises
    :class:`ResponseTooLarge`. A body that is not the gzip/deflate it claims
    is counted once as ``protocol`` and raises :class:`ResponseError`. Both
    are ``ValueError``.
    """

    __slots__ = (
        "status",
        "url",
        "history",
        "elapsed_ms",
        "error",
        "_raw_headers",
        "_headers",
        "_body",
        "_content",
        "_json",
        "_endpoint",
        "_failed",
        "_encoding",
        "_limits",
        "_content_error",
    )

    def __init__(
        self,
        status: int,
        url: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        elapsed_ms: float,
        endpoint: Endpoint | None,
        error: str | None = None,
        encoding: bytes | None = None,
        *,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.status = status
        self.url = url
        #: The redirects followed to get here, oldest first (each a Response with status, url, headers).
        self.history: Sequence[Response] = ()
        self.elapsed_ms = elapsed_ms
        self.error = error
        self._raw_headers = raw_headers
        self._headers: Headers | None = None
        self._body = body
        self._content: bytes | None = None
        self._json: Any = _MISSING
        self._endpoint = endpoint
        # A response already counted as an error is not counted again by a failed check.
        self._failed = error is not None or status >= 400
        self._encoding = encoding
        self._limits = limits
        self._content_error: ResponseError | None = None

    @property
    def status_code(self) -> int:
        """``status``, under the name requests (and so Locust) uses."""
        return self.status

    @property
    def ok(self) -> bool:
        """True for a 1xx-3xx response that no check has failed."""
        return not self._failed

    def mark_expected(self) -> None:
        """The request declared this 4xx/5xx status expected (``expect=``): not a failure."""
        self._failed = False

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self._raw_headers)
        return self._headers

    @property
    def content(self) -> bytes:
        """The body, decompressed when the server sent gzip or deflate (see the class docstring)."""
        if self._content is None:
            if self._content_error is not None:
                raise self._content_error
            body = self._body
            enc = self._encoding
            if enc and body:
                enc = enc.strip().lower()
                if enc in (b"gzip", b"x-gzip", b"deflate"):
                    try:
                        body = _decode(body, enc, self._limits.max_decoded_bytes)
                    except ResponseError as e:
                        self._content_error = e
                        self._failed, was_failed = True, self._failed
                        ep = self._endpoint
                        if ep is not None and not was_failed:  # a response already counted is not counted again
                            ep.record_late_error("too_large" if isinstance(e, ResponseTooLarge) else "protocol")
                        raise
            self._content = body
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (orjson); raises ``ValueError`` on a body that is not JSON."""
        if self._json is _MISSING:
            self._json = orjson.loads(self.content)
        return self._json

    def check(
        self,
        *,
        status: int | tuple[int, ...] | None = None,
        json: Mapping[str, Any] | None = None,
        contains: str | bytes | None = None,
        name: str | None = None,
    ) -> bool:
        """Check the response; a failed check counts as an error of kind ``check`` without raising.

        ``status``: a code or a tuple of accepted codes. ``json``: dotted paths
        to expected values (``{"status": "done", "data.items.0.id": 7}``);
        ``...`` as a value only asks that the path exists. ``contains``: a
        substring of the body. Returns True when everything held.
        """
        ok = True
        if status is not None:
            ok = self.status == status if isinstance(status, int) else self.status in status
        if ok and json is not None:
            try:
                doc = self.json()
            except ValueError:
                ok = False
            else:
                for path, expected in json.items():
                    got = _json_path(doc, path)
                    if got is _MISSING or (expected is not ... and got != expected):
                        ok = False
                        break
        if ok and contains is not None:
            needle = contains.encode() if isinstance(contains, str) else contains
            try:
                ok = needle in self.content
            except ResponseError:  # already counted as its own error
                ok = False
        ep = self._endpoint
        if ep is not None:
            ep.record_check(name or "check", ok, count_error=not ok and not self._failed)
        if not ok:
            self._failed = True
        return ok

    def fail(self, reason: str = "failed") -> None:
        """Mark the response failed by the scenario's own judgement (counted like a failed check)."""
        ep = self._endpoint
        if ep is not None:
            ep.record_check(reason, False, count_error=not self._failed)
        self._failed = True

    def __repr__(self) -> str:
        if self.error:
            return f"<Response error={self.error} url={self.url}>"
        return f"<Response {self.status} url={self.url}>"
