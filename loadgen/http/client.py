"""The HTTP client scenarios use: one :class:`Client` per user, sharing a :class:`Session`.

A user's client keeps its own keep-alive connections (per origin) and its own
cookies, as a browser session or a Locust user would; the :class:`Session`
holds what all users share: the recorder, the timeouts, the TLS context, and
the timer that enforces request timeouts.

Timeouts are enforced by one sweep every 50 ms over the live connections,
not by a timer per request: arming and cancelling a timer would cost more per
request than the rest of the client's bookkeeping.

Every request is recorded exactly once: with its status, or with the error
kind that ended it, including ``cutoff`` when its task is cancelled before
the response (the run ended) and ``invalid_request`` when it could not be put
on the wire as asked (CR/LF/NUL or non-Latin-1 in a header, a method that is
not a token, a URL with spaces or control characters): such a request is
never sent, and why is counted in :attr:`Session.request_errors`.
Credentials in a URL (``http://user:pw@host``) are sent as Basic auth and
never kept in an origin's key, a host header, a response's URL or a row name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine, Mapping
from http.cookies import SimpleCookie
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from ..errors import UsageError
from ..redact import strip_credentials
from ..engine.recorder import ERR_CUTOFF, ERR_INVALID_REQUEST, ERR_TIMEOUT, ERROR_CODES, EXPECTED_OFFSET
from .connection import Connection
from .limits import DEFAULT_LIMITS
from .origin import Origin
from .response import Response
from .session import Session
from .wire import (
    CONTENT_TYPE_LINES,
    DEFAULT_NAMES,
    METHODS,
    USER_AGENT,
    FixedRequest,
    Invalid,
    build,
    header_lines,
    has_authorization,
    line_problem,
    printable,
)

__all__ = ["Session", "Client", "Origin", "FixedRequest"]

#: Requests a stale keep-alive may send again (safe methods; see Client._exchange).
_REPLAYABLE = (b"GET ", b"HEAD ", b"OPTIONS ", b"TRACE ")
_NOT_SENT = (0, 0)


class _TrackedHeaders(dict):  # type: ignore[type-arg]
    """A dict that counts its changes, so a client can cache the bytes of its headers."""

    version = 0

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.version += 1

    def update(self, *a: Any, **kw: Any) -> None:
        super().update(*a, **kw)
        self.version += 1

    def pop(self, *a: Any) -> Any:
        self.version += 1
        return super().pop(*a)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.version += 1
        return super().setdefault(key, default)

    def clear(self) -> None:
        super().clear()
        self.version += 1

    def popitem(self) -> Any:
        self.version += 1
        return super().popitem()


class Client:
    """A user's HTTP client: ``get``, ``post``, … return a :class:`Response`, never raise for HTTP errors.

    Relative URLs (``/api/items``) go to the user's host. ``name`` groups
    requests into one row of the results (``/api/items/[id]``); by default the
    row is the URL's path. ``headers`` holds headers sent with every request
    of this user (an ``Authorization`` token, say); cookies the server sets
    are kept per user and sent back.
    """

    _cut = _NOT_SENT  # (sent ns, bytes in) of a request whose task was cancelled; see _cut_off

    def __init__(self, session: Session, base_url: str | None) -> None:
        self._session = session
        self._recorder = session.recorder
        self._limits = session.limits
        self._base = Origin(base_url) if base_url else None
        self._idle: dict[str, list[Connection]] = {}
        self._intended = 0  # the open model's intended start of the next request, ns (0: now)
        self._url_ok = ""  # the last URL that passed line_problem
        self.headers: dict[str, str] = _TrackedHeaders()
        self._blocks: dict[str, tuple[int, bytes]] = {}
        self.cookies: dict[str, dict[str, str]] = {}  # host -> name -> value

    @property
    def base_url(self) -> str | None:
        return self._base.key if self._base else None

    def intend(self, t_ns: int) -> None:
        """The open model's intended start of this user's next request (perf_counter ns):
        its latency counts from then, so a late dispatch is charged, never hidden."""
        self._intended = t_ns

    def get(self, url: str, **kw: Any) -> Coroutine[Any, Any, Response]:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Coroutine[Any, Any, Response]:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Coroutine[Any, Any, Response]:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> Coroutine[Any, Any, Response]:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> Coroutine[Any, Any, Response]:
        return self.request("DELETE", url, **kw)

    def head(self, url: str, **kw: Any) -> Coroutine[Any, Any, Response]:
        return self.request("HEAD", url, **kw)

    async def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        files: Any = None,
        expect: int | Collection[int] | None = None,
    ) -> Response:
        """Send one request and record it under ``name``; see the class docstring.

        ``expect``: status codes of 400 and above that this request expects
        (a 401 after logout, say): they are recorded, but not as errors.
        A request that cannot be sent as asked (see the module docstring) is
        not sent: it returns a Response with status 0 and error ``invalid_request``.
        """
        if files is not None:
            raise UsageError(
                "multipart uploads (files=) are not supported by loadgen's fast HTTP client; "
                "send a pre-encoded body with data= and a Content-Type header"
            )
        # A method and URL written in the scenario are the same objects every time: a known
        # method (upper case already) and the URL last checked need no check, nor upper().
        if method not in METHODS or url is not self._url_ok:
            method = method.upper()
            problem = line_problem(method, url)
            if problem is not None:
                return self._invalid(method, url, name, problem)
            self._url_ok = url
        if url[:1] == "/":
            origin = self._base
            if origin is None:
                raise UsageError(f"request to {url!r} needs a host: set --host or the User's host")
            target = url
        else:
            origin = Origin(url)
            parts = urlsplit(url)
            target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            if origin.auth is not None:
                url = strip_credentials(url)
        path, _, _ = target.partition("?")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params, doseq=True)

        try:
            if headers is None and json is None and data is None and not self.cookies:
                # The common request: the user's header block is cached per origin.
                wire = b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode(), target.encode(), self._block(origin))
            else:
                body = b""
                ctype = None
                if json is not None:
                    body = orjson.dumps(json)
                    ctype = "application/json"
                elif data is not None:
                    if isinstance(data, Mapping):
                        body = urlencode(data, doseq=True).encode()
                        ctype = "application/x-www-form-urlencoded"
                    else:
                        body = data.encode() if isinstance(data, str) else bytes(data)
                jar = self.cookies.get(origin.host) if self.cookies else None
                user = self.headers
                if not headers and not jar and (ctype is None or "Content-Type" not in user):
                    # A plain json=/data= request: the cached block and one constant line.
                    fields = CONTENT_TYPE_LINES[ctype]
                else:
                    # This request's own headers (later ones win, as they always have): alone
                    # formatted and checked, unless one replaces a header of the cached block.
                    extra: dict[str, Any] = {} if ctype is None else {"Content-Type": ctype}
                    if headers:
                        extra.update(headers)
                    if jar:
                        extra["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
                    if (
                        user.keys().isdisjoint(extra) and DEFAULT_NAMES.isdisjoint(extra)
                        and (origin.auth is None or not has_authorization(extra))
                    ):
                        fields = header_lines(extra)
                    else:
                        fields = None
                        hdrs = {"User-Agent": USER_AGENT, "Accept": "*/*", **user, **extra}
                        if origin.auth is not None and not has_authorization(hdrs):
                            hdrs["Authorization"] = origin.auth
                        wire = build(method, target, origin.host_header, hdrs, body)
                if fields is not None:
                    block = self._block(origin)
                    if body or method in ("POST", "PUT", "PATCH"):
                        wire = b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
                            method.encode(), target.encode(), block, fields, len(body), body
                        )
                    else:
                        wire = b"%s %s HTTP/1.1\r\n%s%s\r\n" % (method.encode(), target.encode(), block, fields)
        except Invalid as exc:
            return self._invalid(method, url, name, str(exc))
        ep = self._recorder.endpoint(method, name or path)

        t_start = self._intended or perf_counter_ns()
        self._intended = 0
        try:
            code, conn, t_sent = await self._exchange(origin, wire, method == "HEAD")
        except asyncio.CancelledError:
            self._cut_off(ep, t_start, len(wire))
            raise
        if conn is None:
            now = perf_counter_ns()
            ep.buf.extend((t_start, now, now, now, code, 0, 0))
            return Response(0, url, [], b"", (now - t_start) / 1e6, ep, ERROR_CODES.get(code, "other"))
        t_done = conn.t_done
        expected = expect is not None and code >= 400 and (code == expect if isinstance(expect, int) else code in expect)
        ep.buf.extend(  # one request row: the columns are recorder.COL_*
            (t_start, t_sent, conn.t_first or t_done, t_done, code + EXPECTED_OFFSET if expected else code,
             len(wire), conn.bytes_in)
        )
        if code <= 0:
            return Response(0, url, [], b"", (t_done - t_start) / 1e6, ep, ERROR_CODES.get(code, "other"))
        if self._limits is DEFAULT_LIMITS:  # a keyword argument costs ~0.1 µs a call: only when needed
            resp = Response(code, url, conn.headers, conn.body(), (t_done - t_start) / 1e6, ep, None, conn.encoding)
        else:
            resp = Response(code, url, conn.headers, conn.body(), (t_done - t_start) / 1e6, ep, None, conn.encoding,
                            limits=self._limits)
        if expected:
            resp.mark_expected()
        if conn.has_cookies:
            self._store_cookies(origin.host, resp)
        return resp

    def _invalid(self, method: str, url: str, name: str | None, problem: str) -> Response:
        """Record a request that cannot be sent (never on the hot path): once, no latency."""
        self._session.note_request_error(problem)
        self._intended = 0
        url = strip_credentials(url)
        path = url.partition("?")[0] if url[:1] == "/" else urlsplit(url).path or "/"
        ep = self._recorder.endpoint(printable(method), printable(name or path))
        now = perf_counter_ns()
        ep.buf.extend((now, now, now, now, ERR_INVALID_REQUEST, 0, 0))
        return Response(0, url, [], b"", 0.0, ep, ERROR_CODES[ERR_INVALID_REQUEST])

    def _cut_off(self, ep: Any, t_start: int, size: int) -> None:
        """Record a request whose task was cancelled before its response (the run ended): as ``cutoff``.

        _exchange left in ``_cut`` when it was sent (0: still connecting) and the
        bytes received; the latency runs from the (intended) start to now.
        """
        t_sent, bytes_in = self._cut
        self._cut = _NOT_SENT
        now = perf_counter_ns()
        ep.buf.extend((t_start, t_sent or now, now, now, ERR_CUTOFF, size if t_sent else 0, bytes_in))

    def _block(self, origin: Origin) -> bytes:
        """Host, default and user headers as bytes, rebuilt (and checked) only when ``headers`` changed.

        Raises Invalid for a header that cannot be sent; such a block is not cached.
        """
        h = self.headers
        version = h.version if isinstance(h, _TrackedHeaders) else -1  # a plain dict assigned by a user
        cached = self._blocks.get(origin.cache_key)
        if cached is not None and cached[0] == version >= 0:
            return cached[1]
        hdrs = {"User-Agent": USER_AGENT, "Accept": "*/*", **h}
        if origin.auth is not None and not has_authorization(hdrs):
            hdrs["Authorization"] = origin.auth
        block = origin.host_line + header_lines(hdrs)
        self._blocks[origin.cache_key] = (version, block)
        return block

    async def _exchange(
        self, origin: Origin, wire: bytes, head: bool, bare: bool = False
    ) -> tuple[int, Connection | None, int]:
        """Send on an idle connection (or a new one); a stale keep-alive may be retried once.

        A connection already seen closed is never written to. A request is sent
        a second time only when, as urllib3 and Go's net/http decide, that is
        harmless: the connection had served a response before (a server may
        close an idle keep-alive just as it is reused), it failed with no byte
        of a response and no timeout, and the request is safe to repeat (GET,
        HEAD, OPTIONS, TRACE without a body). Anything else (a POST above all)
        is recorded as the error it got: the server may have processed it.
        The request is recorded once either way; retries are counted in
        :attr:`Session.retried`, so the server saw at most recorded + retried.

        If the task is cancelled (the run ended), the connection is dropped (its
        response will never be read) and ``_cut`` tells the caller what was sent.

        ``bare``: new connections keep no headers or body (ad-hoc mode, see
        :class:`BareConnection`); a client uses one kind or the other, never both.
        """
        idle = self._idle.get(origin.key)
        t_sent = 0
        for attempt in (0, 1):
            conn = None
            while idle:
                c = idle.pop()
                if not c.closed:
                    conn = c
                    break
            reused = conn is not None
            if conn is None:
                try:
                    got = await self._session.connect(origin, bare=bare)
                except asyncio.CancelledError:
                    self._cut = (t_sent, 0)
                    raise
                if isinstance(got, int):
                    return got, None, 0
                conn = got
            t_sent = perf_counter_ns()
            try:
                code = await conn.send(wire, t_sent + self._session.timeout_ns, head)
            except asyncio.CancelledError:
                conn.close()
                self._cut = (t_sent, conn.bytes_in)
                raise
            if code > 0:
                if conn.keep_alive and not conn.closed:
                    if idle is None:
                        idle = self._idle[origin.key] = []
                    idle.append(conn)
                else:
                    conn.close()
                return code, conn, t_sent
            # The server may close an idle keep-alive connection just as we reuse it:
            # that is not the target failing, so a request it cannot have acted on
            # is tried once more on a fresh connection (see the docstring).
            if (
                reused and attempt == 0 and conn.t_first == 0 and code != ERR_TIMEOUT
                and wire.startswith(_REPLAYABLE) and wire.find(b"\r\n\r\n") == len(wire) - 4
            ):
                self._session.retried += 1
                continue
            return code, conn, t_sent
        raise AssertionError("unreachable")

    async def send_fixed(self, req: FixedRequest) -> int:
        """The ad-hoc mode's request: prebuilt bytes, a bare connection, no Response, one row recorded."""
        t_start = self._intended or perf_counter_ns()
        self._intended = 0
        try:
            code, conn, t_sent = await self._exchange(req.origin, req.data, req.head, not req.head)
        except asyncio.CancelledError:
            self._cut_off(req.endpoint, t_start, req.size)
            raise
        if conn is None:
            now = perf_counter_ns()
            req.endpoint.buf.extend((t_start, now, now, now, code, 0, 0))
        else:
            t_done = conn.t_done
            req.endpoint.buf.extend((t_start, t_sent, conn.t_first or t_done, t_done, code, req.size, conn.bytes_in))
        return code

    async def preconnect(self, origin: Origin, *, bare: bool = False) -> bool:
        """Open a keep-alive connection ahead of the first request; False if it failed."""
        got = await self._session.connect(origin, bare=bare)
        if isinstance(got, int):
            return False
        self._idle.setdefault(origin.key, []).append(got)
        return True

    def _store_cookies(self, host: str, resp: Response) -> None:
        jar = self.cookies.setdefault(host, {})
        for raw in resp.headers.get_all("set-cookie"):
            c: SimpleCookie = SimpleCookie()
            try:
                c.load(raw)
            except Exception:  # a malformed cookie is the server's problem, not the run's
                continue
            for k, morsel in c.items():
                if morsel["max-age"] == "0":
                    jar.pop(k, None)
                else:
                    jar[k] = morsel.value

    def close(self) -> None:
        """Close this user's idle connections."""
        for conns in self._idle.values():
            for c in conns:
                c.close()
        self._idle.clear()


