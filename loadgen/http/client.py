"""The HTTP client scenarios use: one :class:`Client` per user, sharing a :class:`Session`.

A user's client keeps its own keep-alive connections (per origin; one HTTP/2
connection per origin when the server speaks it) and its own cookies, as a
browser session or a Locust user would; the :class:`Session` holds what all
users share: the recorder, the timeouts, how connections are opened (TLS,
proxies, ``--resolve``), and the sweep that enforces request timeouts.

A call with none of the extras (``files=``, ``auth=``, ``cookies=``,
``timeout=``, ``verify=``, ``cert=``), an empty cookie jar and no proxy takes
the path it always took: one cached header block per origin, one write.

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
from time import perf_counter_ns
from typing import Any, Union
from urllib.parse import urlencode, urlsplit

import orjson

from ..engine.recorder import (
    ERR_CUTOFF,
    ERR_INVALID_REQUEST,
    ERR_REDIRECT_LOOP,
    ERR_TIMEOUT,
    ERR_TOO_MANY_REDIRECTS,
    ERROR_CODES,
    EXPECTED_OFFSET,
    Endpoint,
)
from ..errors import UsageError
from ..redact import strip_credentials
from .call import CallOptions
from .connection import BareConnection, Connection
from .cookies import CookieJar
from .http2 import Http2Connection, Http2Stream
from .limits import DEFAULT_LIMITS
from .origin import Origin
from .redirects import REDIRECTS, keeps_authorization, next_url, redirected_method
from .response import Response
from .session import Session, check_http2
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
#: What a request's outcome is read from: an HTTP/1.1 connection, or an HTTP/2 stream.
Exchange = Union[BareConnection, Http2Stream]


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
    of this user (an ``Authorization`` token, say); ``cookies`` is the user's
    cookie jar (RFC 6265: what servers set is kept and sent back by domain,
    path, expiry and Secure).

    ``http2``: ``"off"``, ``"h2"`` (offered by ALPN on https) or ``"h2c"``
    (also prior-knowledge HTTP/2 on http); None takes the session's. With
    HTTP/2 the user keeps one connection per origin and concurrent requests
    (``asyncio.gather``) are streams on it.
    """

    _cut = _NOT_SENT  # (sent ns, bytes in) of a request whose task was cancelled; see _cut_off

    def __init__(self, session: Session, base_url: str | None, *, http2: str | None = None) -> None:
        self._session = session
        self._recorder = session.recorder
        self._limits = session.limits
        self._base = Origin(base_url) if base_url else None
        self._idle: dict[str, list[Connection]] = {}
        self._h2: dict[str, Http2Connection] = {}
        self._connecting: dict[str, asyncio.Future[None]] = {}  # HTTP/2 on: a connect in progress, per origin
        self._retired: list[Http2Connection] = []  # replaced HTTP/2 connections, closed with the user
        self._http2 = session.http2 if http2 is None else check_http2(http2)
        self._proxied = bool(session.proxies)
        self._intended = 0  # the open model's intended start of the next request, ns (0: now)
        self._url_ok = ""  # the last URL that passed line_problem
        self.headers: dict[str, str] = _TrackedHeaders()
        self._blocks: dict[str, tuple[int, bytes]] = {}
        self._fixed: dict[int, bytes] = {}  # FixedRequest bytes in absolute form, for a forwarding proxy
        self.cookies = CookieJar()

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

    def options(self, url: str, **kw: Any) -> Coroutine[Any, Any, Response]:
        return self.request("OPTIONS", url, **kw)

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
        auth: tuple[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str | None = None,
        cert: str | tuple[str, str] | None = None,
        allow_redirects: bool = True,
        max_redirects: int | None = None,
        expect: int | Collection[int] | None = None,
    ) -> Response:
        """Send one request and record it once under ``name``; the names are requests' (see README).

        ``expect``: status codes of 400 and above that this request expects
        (a 401 after logout, say): they are recorded, but not as errors.
        Redirects are followed (up to ``max_redirects``, default the session's)
        unless ``allow_redirects=False``: the call is still one row, its latency
        covering every hop; ``r.url`` is the final URL, ``r.history`` the hops.
        A request that cannot be sent as asked (see the module docstring) is
        not sent: it returns a Response with status 0 and error ``invalid_request``.
        A wrong ``files=``, ``auth=``, ``timeout=``, ``verify=`` or ``cert=`` is a
        scenario bug: :class:`UsageError`.
        """
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
        call = None
        if (
            files is not None or auth is not None or cookies is not None or timeout is not None
            or verify is not None or cert is not None
        ):
            call = CallOptions.of(self._session, files, data, auth, cookies, timeout, verify, cert)
        try:
            if (
                headers is None and json is None and data is None and call is None and not self.cookies.held
                and not self._proxied
            ):
                # The common request, inlined: the user's header block is cached per origin. Through
                # _wire (a call with seven arguments) Client.get cost 27.30 us CPU a request, inlined
                # 25.55 us (medians of 6 interleaved rounds, bench/client_cost.py).
                wire = b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode(), target.encode(), self._block(origin))
            else:
                wire = self._wire(method, origin, target, headers, json, data, call)
        except Invalid as exc:
            return self._invalid(method, url, name, str(exc))
        ep = self._recorder.endpoint(method, name or path)

        t_start = self._intended or perf_counter_ns()
        self._intended = 0
        try:
            code, conn, t_sent = await self._exchange(origin, wire, method == "HEAD", False, call)
        except asyncio.CancelledError:
            self._cut_off(ep, t_start, len(wire))
            raise
        if 300 < code < 309 and allow_redirects and code in REDIRECTS:
            hop = _Hop(method, origin.key + target, origin, headers, json, data, call)
            return await self._follow(ep, hop, t_start, t_sent, code, conn, len(wire), max_redirects, expect)
        if conn is None:
            now = perf_counter_ns()
            ep.buf.extend((t_start, now, now, now, code, 0, 0))
            return Response(0, url, [], b"", (now - t_start) / 1e6, ep, ERROR_CODES.get(code, "other"))
        t_done = conn.t_done
        expected = expect is not None and code >= 400 and (code == expect if isinstance(expect, int) else code in expect)
        ep.buf.extend(  # one request row: the columns are recorder.COL_*
            (t_start, t_sent, conn.t_first or t_done, t_done, code + EXPECTED_OFFSET if expected else code,
             len(wire) if call is None else len(wire) + call.streamed, conn.bytes_in)
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
            self._store_cookies(url if url[:1] != "/" else origin.key + target, resp)
        return resp

    # -- building the request's bytes ---------------------------------------------------
    def _wire(self, method: str, origin: Origin, target: str, headers: Mapping[str, str] | None, json: Any,
              data: Any, call: CallOptions | None, strip_auth: bool = False) -> bytes:
        """The request's bytes (with the body unless it is streamed); raises Invalid."""
        cookie_url = origin.key + target if self.cookies.held else ""
        if self._proxied and self._session.route(origin).forward:
            target = origin.key + target  # absolute form, for the forwarding proxy
        if headers is None and json is None and data is None and call is None and not cookie_url and not strip_auth:
            # The common request: the user's header block is cached per origin.
            return b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode(), target.encode(), self._block(origin))
        body = b""
        ctype = None
        length = None  # of a streamed body
        stream = call.body if call is not None else None
        if stream is not None:
            ctype = stream.content_type
            if stream.small is not None:
                body = stream.small
            else:
                length = stream.length
        elif json is not None:
            body = orjson.dumps(json)
            ctype = "application/json"
        elif data is not None:
            if isinstance(data, Mapping):
                body = urlencode(data, doseq=True).encode()
                ctype = "application/x-www-form-urlencoded"
            else:
                body = data.encode() if isinstance(data, str) else bytes(data)
        call_headers = call.headers if call is not None else None
        cookie = self._cookie(cookie_url, headers, call_headers) if cookie_url or call_headers else None
        user = self.headers
        if (
            not headers and cookie is None and not call_headers and not strip_auth
            and ctype in CONTENT_TYPE_LINES and (ctype is None or "Content-Type" not in user)
        ):
            # A plain json=/data= request: the cached block and one constant line.
            lines = CONTENT_TYPE_LINES[ctype]
        else:
            # This request's own headers (later ones win; auth= over headers=): alone formatted
            # and checked, unless one replaces a header of the cached block.
            extra: dict[str, Any] = {} if ctype is None else {"Content-Type": ctype}
            if headers:
                extra.update(headers)
            if call_headers:
                extra.update((k, v) for k, v in call_headers.items() if k != "Cookie")
            if cookie is not None:
                extra["Cookie"] = cookie
            if (
                not strip_auth and user.keys().isdisjoint(extra) and DEFAULT_NAMES.isdisjoint(extra)
                and (origin.auth is None or not has_authorization(extra))
            ):
                lines = header_lines(extra)
            else:
                hdrs = {"User-Agent": USER_AGENT, "Accept": "*/*", **user, **extra}
                if strip_auth:
                    hdrs = {k: v for k, v in hdrs.items() if f"{k}".lower() != "authorization"}
                elif origin.auth is not None and not has_authorization(hdrs):
                    hdrs["Authorization"] = origin.auth
                proxy = self._session.route(origin).proxy_authorization if self._proxied else None
                if proxy is not None:
                    hdrs["Proxy-Authorization"] = proxy
                return build(method, target, origin.host_header, hdrs, body, length)
        block = self._block(origin)
        if body or length is not None or method in ("POST", "PUT", "PATCH"):
            return b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
                method.encode(), target.encode(), block, lines, len(body) if length is None else length, body
            )
        return b"%s %s HTTP/1.1\r\n%s%s\r\n" % (method.encode(), target.encode(), block, lines)

    def _cookie(self, url: str, headers: Mapping[str, str] | None, call_headers: Mapping[str, str] | None) -> str | None:
        """The Cookie value: the jar's for ``url`` and the call's ``cookies=`` (which win by name).

        A ``Cookie`` header given in ``headers=`` is sent as given, without the jar's (as requests).
        """
        if headers and any(f"{k}".lower() == "cookie" for k in headers):
            return None
        jar = self.cookies.header_for(url) if url else None
        own = call_headers.get("Cookie") if call_headers else None
        if own is None or jar is None:
            return own if jar is None else jar
        names = {pair.split("=", 1)[0].strip() for pair in own.split(";")}
        kept = [pair for pair in jar.split("; ") if pair.split("=", 1)[0] not in names]
        return "; ".join([*kept, own])

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
        if self._proxied:
            block += self._session.route(origin).proxy_line
        self._blocks[origin.cache_key] = (version, block)
        return block

    # -- recording ------------------------------------------------------------------------
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

    def _cut_off(self, ep: Endpoint, t_start: int, size: int) -> None:
        """Record a request whose task was cancelled before its response (the run ended): as ``cutoff``.

        _exchange left in ``_cut`` when it was sent (0: still connecting) and the
        bytes received; the latency runs from the (intended) start to now.
        """
        t_sent, bytes_in = self._cut
        self._cut = _NOT_SENT
        now = perf_counter_ns()
        ep.buf.extend((t_start, t_sent or now, now, now, ERR_CUTOFF, size if t_sent else 0, bytes_in))

    # -- redirects --------------------------------------------------------------------------
    async def _follow(self, ep: Endpoint, hop: _Hop, t_start: int, t_sent: int, code: int, conn: Exchange | None,
                      sent: int, max_redirects: int | None, expect: int | Collection[int] | None) -> Response:
        """Follow a redirect chain from its first 3xx; record the whole call once (see redirects.py)."""
        limit = self._session.max_redirects if max_redirects is None else max_redirects
        history: list[Response] = []
        visited = {(hop.method, hop.url)}
        bytes_out = sent + (hop.call.streamed if hop.call is not None else 0)
        bytes_in = conn.bytes_in if conn is not None else 0
        t_first = conn.t_first if conn is not None else 0
        error = None
        try:
            while conn is not None and code in REDIRECTS:
                resp = Response(code, hop.url, conn.headers, conn.body(), 0.0, None, None, conn.encoding,
                                limits=self._limits)
                if conn.has_cookies:
                    self._store_cookies(hop.url, resp)
                location = _location(conn)
                nxt = next_url(hop.url, location) if location is not None else None
                if nxt is None or limit == 0:
                    break  # nowhere to go, or following is off: the 3xx is the answer
                method, keep_body = redirected_method(code, hop.method)
                if keep_body and hop.call is not None and hop.call.body is not None and not hop.call.body.replayable:
                    break  # a stream read once cannot be sent again: the 3xx is the answer
                if len(history) >= limit:
                    error = ERR_TOO_MANY_REDIRECTS
                    break
                if (method, strip_credentials(nxt)) in visited:
                    error = ERR_REDIRECT_LOOP
                    break
                # Credentials go no further than their host, and never down to http, for the rest of the chain.
                strip = hop.strip_auth or not keeps_authorization(hop.url, nxt)
                try:
                    nxt_hop = hop.next(method, nxt, keep_body, not strip)
                except UsageError:
                    break  # a Location no request can go to (an invalid port, say): the 3xx is the answer
                visited.add((method, nxt_hop.url))
                history.append(resp)
                hop = nxt_hop
                hop.strip_auth = strip
                try:
                    wire = self._wire(method, hop.origin, hop.target, hop.headers, hop.json, hop.data, hop.call, strip)
                except Invalid as exc:
                    self._session.note_request_error(str(exc))
                    error = ERR_INVALID_REQUEST
                    break
                code, conn, _ = await self._exchange(hop.origin, wire, method == "HEAD", False, hop.call)
                bytes_out += len(wire) + (hop.call.streamed if hop.call is not None else 0)
                if conn is not None:
                    bytes_in += conn.bytes_in
                    t_first = conn.t_first
        except asyncio.CancelledError:
            # The first hop was sent: the call's sent time is its, and earlier hops' bytes count.
            hop_sent, hop_in = self._cut
            self._cut = (t_sent, bytes_in + (hop_in if hop_sent else 0))
            self._cut_off(ep, t_start, bytes_out)
            raise
        now = perf_counter_ns()
        t_done = conn.t_done if conn is not None and error is None else now
        if error is None and (conn is None or code <= 0):
            error = code
        final = error if error is not None else code
        expected = error is None and expect is not None and code >= 400 and (
            code == expect if isinstance(expect, int) else code in expect)
        ep.buf.extend((t_start, t_sent, t_first or t_done, t_done, final + EXPECTED_OFFSET if expected else final,
                       bytes_out, bytes_in))
        elapsed = (t_done - t_start) / 1e6
        if error is not None:
            resp = Response(0, hop.url, [], b"", elapsed, ep, ERROR_CODES.get(error, "other"))
        else:
            resp = Response(code, hop.url, conn.headers, conn.body(), elapsed, ep, None, conn.encoding,  # type: ignore[union-attr]
                            limits=self._limits)
            if expected:
                resp.mark_expected()
            if conn.has_cookies:  # type: ignore[union-attr]
                self._store_cookies(hop.url, resp)
        resp.history = history
        return resp

    # -- connections ------------------------------------------------------------------------
    def _pool_key(self, origin: Origin, call: CallOptions | None) -> str:
        return origin.key if call is None or call.tls is None else f"{origin.key} {call.tls!r}"

    async def _exchange(
        self, origin: Origin, wire: bytes, head: bool, bare: bool = False, call: CallOptions | None = None
    ) -> tuple[int, Exchange | None, int]:
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
        An origin that speaks HTTP/2 (see the class docstring) goes to _exchange_h2.
        """
        key = origin.key if call is None else self._pool_key(origin, call)
        if self._h2:
            h2 = self._h2.get(key)
            if h2 is not None:
                return await self._exchange_h2(key, h2, origin, wire, head, bare, call)
        idle = self._idle.get(key)
        timeout_ns = self._session.timeout_ns if call is None else call.timeout_ns
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
                got = await self._connect(key, origin, bare, call, t_sent)
                if isinstance(got, int):
                    return got, None, 0
                if isinstance(got, Http2Connection):
                    return await self._exchange_h2(key, got, origin, wire, head, bare, call)
                conn = got
            t_sent = perf_counter_ns()
            try:
                if call is None or call.body is None or call.body.small is not None:
                    code = await conn.send(wire, t_sent + timeout_ns, head)
                else:
                    code = await conn.send(wire, t_sent + timeout_ns, head, call.body.chunks())
            except asyncio.CancelledError:
                conn.close()
                self._cut = (t_sent, conn.bytes_in)
                raise
            if code > 0:
                if conn.keep_alive and not conn.closed and not conn.sending:
                    if idle is None:
                        idle = self._idle[key] = []
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

    async def _connect(self, key: str, origin: Origin, bare: bool, call: CallOptions | None,
                       t_sent: int = 0) -> Connection | Http2Connection | int:
        """A new connection to ``origin``, or the error code of why there is none.

        With HTTP/2 on, this user's concurrent requests to one origin wait for one
        connect and share it when it speaks h2 (one connection per user and origin;
        six gathered first requests opened six before); one that is HTTP/1.1, or
        full, leaves the others to open their own. Cancelled (the run ended), it leaves in
        ``_cut`` that this attempt sent nothing (``t_sent``: an earlier attempt's, or 0).
        """
        try:
            return await self._open(key, origin, bare, call)
        except asyncio.CancelledError:
            self._cut = (t_sent, 0)
            raise

    async def _open(self, key: str, origin: Origin, bare: bool,
                    call: CallOptions | None) -> Connection | Http2Connection | int:
        tls = call.tls if call is not None else None
        if self._http2 == "off":
            return await self._session.connect(origin, bare=bare, http2="off", tls=tls)
        pending = self._connecting.get(key)
        if pending is not None:
            await asyncio.shield(pending)  # a cancelled waiter must not cancel the others' connect
            h2 = self._h2.get(key)
            if h2 is not None and not h2.closed and h2.available():
                return h2
            return await self._session.connect(origin, bare=bare, http2=self._http2, tls=tls)
        done = self._connecting[key] = asyncio.get_running_loop().create_future()
        try:
            got = await self._session.connect(origin, bare=bare, http2=self._http2, tls=tls)
            if isinstance(got, Http2Connection):
                old = self._h2.get(key)
                self._h2[key] = got
                if old is not None:
                    self._retire(old)
            return got
        finally:
            del self._connecting[key]
            done.set_result(None)

    def _retire(self, h2: Http2Connection) -> None:
        """Keep a replaced HTTP/2 connection (its streams may still run) to close with the user."""
        self._retired = [c for c in self._retired if not c.closed]
        self._retired.append(h2)

    async def _exchange_h2(self, key: str, h2: Http2Connection, origin: Origin, wire: bytes, head: bool,
                           bare: bool, call: CallOptions | None) -> tuple[int, Exchange | None, int]:
        """One request as a stream on the user's HTTP/2 connection to ``origin`` (a new one when it cannot
        take more); a stream the server says it did not process (GOAWAY, REFUSED_STREAM) is sent once more."""
        timeout_ns = self._session.timeout_ns if call is None else call.timeout_ns
        stream_body = call.body if call is not None and call.body is not None and call.body.small is None else None
        t_sent = 0
        for attempt in (0, 1):
            if h2.closed or not h2.available():
                got = await self._connect(key, origin, bare, call, t_sent)
                if isinstance(got, int):
                    return got, None, 0
                if not isinstance(got, Http2Connection):  # the server stopped offering h2
                    if self._h2.get(key) is h2:
                        self._retire(self._h2.pop(key))
                    self._idle.setdefault(key, []).append(got)
                    return await self._exchange(origin, wire, head, bare, call)
                h2 = got
            stream = h2.stream()
            t_sent = perf_counter_ns()
            try:
                code = await stream.send(wire, t_sent + timeout_ns, head,
                                         stream_body.chunks() if stream_body is not None else None)
            except asyncio.CancelledError:
                stream.close()
                self._cut = (t_sent, stream.bytes_in)
                raise
            if code <= 0 and stream.unprocessed and attempt == 0 and (stream_body is None or stream_body.replayable):
                self._session.retried += 1
                continue
            return code, stream, t_sent
        raise AssertionError("unreachable")

    async def send_fixed(self, req: FixedRequest) -> int:
        """The ad-hoc mode's request: prebuilt bytes, a bare connection, no Response, one row recorded.

        A redirect is followed (``--max-redirects``) through :meth:`_follow`, still one row.
        """
        t_start = self._intended or perf_counter_ns()
        self._intended = 0
        data = req.data if not self._proxied else self._fixed_wire(req)
        try:
            code, conn, t_sent = await self._exchange(req.origin, data, req.head, not req.head)
        except asyncio.CancelledError:
            self._cut_off(req.endpoint, t_start, req.size)
            raise
        if 300 < code < 309 and code in REDIRECTS and self._session.max_redirects:
            parts = urlsplit(req.url)
            target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            hop = _Hop(req.method, req.origin.key + target, req.origin, req.headers or None, None, req.body or None,
                       None)
            resp = await self._follow(req.endpoint, hop, t_start, t_sent, code, conn, req.size, None, None)
            return resp.status if resp.error is None else 0
        if conn is None:
            now = perf_counter_ns()
            req.endpoint.buf.extend((t_start, now, now, now, code, 0, 0))
        else:
            t_done = conn.t_done
            req.endpoint.buf.extend((t_start, t_sent, conn.t_first or t_done, t_done, code, req.size, conn.bytes_in))
        return code

    def _fixed_wire(self, req: FixedRequest) -> bytes:
        """``req``'s bytes as a forwarding proxy needs them (absolute form), built once per request."""
        data = self._fixed.get(id(req))
        if data is None:
            route = self._session.route(req.origin)
            if not route.forward:
                data = req.data
            else:
                line, sep, rest = req.data.partition(b"\r\n")
                method, target, version = line.split(b" ", 2)
                data = b"%s %s%s %s%s%s%s" % (method, req.origin.key.encode(), target, version, sep,
                                              route.proxy_line, rest)
            self._fixed[id(req)] = data
        return data

    async def preconnect(self, origin: Origin, *, bare: bool = False) -> bool:
        """Open a keep-alive connection ahead of the first request; False if it failed."""
        got = await self._connect(origin.key, origin, bare, None)
        if isinstance(got, int):
            return False
        if not isinstance(got, Http2Connection):
            self._idle.setdefault(origin.key, []).append(got)
        return True

    def _store_cookies(self, url: str, resp: Response) -> None:
        self.cookies.store(url, resp.headers.get_all("set-cookie"))

    def close(self) -> None:
        """Close this user's idle connections."""
        for conns in self._idle.values():
            for c in conns:
                c.close()
        self._idle.clear()
        for h2 in [*self._h2.values(), *self._retired]:
            h2.close()
        self._h2.clear()
        self._retired.clear()


class _Hop:
    """One hop of a redirect chain: what the next request is built from."""

    __slots__ = ("method", "url", "origin", "target", "headers", "json", "data", "call", "strip_auth")

    def __init__(self, method: str, url: str, origin: Origin, headers: Mapping[str, str] | None, json: Any,
                 data: Any, call: CallOptions | None) -> None:
        self.method, self.url, self.origin = method, url, origin
        parts = urlsplit(url)
        self.target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        self.headers, self.json, self.data, self.call = headers, json, data, call
        self.strip_auth = False

    def next(self, method: str, url: str, keep_body: bool, keep_auth: bool) -> _Hop:
        """The hop to ``url``; raises UsageError for a URL no request can go to.

        A ``Cookie`` header given to the call is dropped, as requests does (the jar's
        cookies are chosen again for each hop); credentials from the first URL stay
        with their host (``keep_auth``); a Location's own credentials are used, never shown.
        """
        drop = ("cookie",) if keep_body else ("cookie", "content-type", "content-length")
        headers, call = self.headers, self.call
        if headers:
            headers = {k: v for k, v in headers.items() if f"{k}".lower() not in drop}
        if not keep_body and call is not None:
            call = call.without_body()
        origin = Origin(url)
        if origin.auth is None and keep_auth and self.origin.auth is not None:
            origin = origin.with_auth(self.origin.auth)
        return _Hop(method, strip_credentials(url) if origin.auth is not None else url, origin, headers,
                    self.json if keep_body else None, self.data if keep_body else None, call)


def _location(conn: Exchange) -> str | None:
    """The Location of a 3xx response: kept by every connection kind for 3xx heads."""
    loc = conn.location
    return loc.decode("latin-1") if loc is not None else None
