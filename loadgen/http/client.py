"""The HTTP client scenarios use: one :class:`Client` per user, sharing a :class:`Session`.

A user's client keeps its own keep-alive connections (per origin) and its own
cookies, as a browser session or a Locust user would; the :class:`Session`
holds what all users share: the recorder, the timeouts, the TLS context, and
the timer that enforces request timeouts.

Timeouts are enforced by one sweep every 50 ms over the live connections,
not by a timer per request: arming and cancelling a timer would cost more per
request than the rest of the client's bookkeeping.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Collection, Coroutine, Mapping
from http.cookies import SimpleCookie
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from .._version import __version__
from ..errors import UsageError
from ..recorder import ERR_CONNECT, ERR_TIMEOUT, ERROR_CODES, EXPECTED_OFFSET, Recorder
from .connection import BareConnection, Connection
from .response import Response

__all__ = ["Session", "Client", "Origin", "FixedRequest"]

_SWEEP_S = 0.05
USER_AGENT = f"loadgen/{__version__}"


class Origin:
    """Scheme, host and port of a target, with what a connection to it needs."""

    __slots__ = ("key", "scheme", "host", "port", "host_header", "tls")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"URL {url!r} is not an http:// or https:// URL with a host")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"URL {url!r} has an invalid port") from None
        default = 443 if self.tls else 80
        self.port = port or default
        h = self.host if ":" not in self.host else f"[{self.host}]"
        self.host_header = h if self.port == default else f"{h}:{self.port}"
        self.key = f"{self.scheme}://{self.host_header}"


class Session:
    """What every user's client shares during a run."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        verify_tls: bool = True,
    ) -> None:
        self.recorder = recorder
        self.timeout_ns = int(timeout_s * 1e9)
        self.connect_timeout_s = connect_timeout_s
        self.connections: set[Connection] = set()
        self._verify_tls = verify_tls
        self._ssl: ssl.SSLContext | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start enforcing timeouts (call inside the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._sweeper = self._loop.call_later(_SWEEP_S, self._sweep)

    def close(self) -> None:
        """Stop the sweep and drop every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
            conn.close()

    def _sweep(self) -> None:
        now = perf_counter_ns()
        for conn in list(self.connections):
            d = conn.deadline_ns
            if d and now >= d:
                conn.fail(ERR_TIMEOUT)
        self._sweeper = self._loop.call_later(_SWEEP_S, self._sweep)  # type: ignore[union-attr]

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context()
            if not self._verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    async def connect(self, origin: Origin, *, bare: bool = False) -> Connection | int:
        """A new connection, or the error code of why there is none.

        ``bare``: a :class:`BareConnection`, which does not keep headers or body.
        """
        loop = asyncio.get_running_loop()
        cls = BareConnection if bare else Connection
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: cls(self.connections),
                    origin.host,
                    origin.port,
                    ssl=self.ssl_context if origin.tls else None,
                ),
                self.connect_timeout_s,
            )
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            return ERR_CONNECT
        return conn  # type: ignore[return-value]


class FixedRequest:
    """A request whose bytes never change (ad-hoc ``--url`` mode): built once, sent many times."""

    __slots__ = ("origin", "data", "method", "endpoint", "size", "head")

    def __init__(self, recorder: Recorder, url: str, method: str = "GET",
                 headers: Mapping[str, str] | None = None, body: bytes = b"",
                 name: str | None = None) -> None:
        self.origin = Origin(url)
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        self.method = method.upper()
        self.data = _build(self.method, target, self.origin.host_header,
                           {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}, body)
        self.size = len(self.data)
        self.head = self.method == "HEAD"
        self.endpoint = recorder.endpoint(self.method, name or (parts.path or "/"))


def _build(method: str, target: str, host_header: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n"]
    for k, v in headers.items():
        lines.append(f"{k}: {v}\r\n")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body


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

    def __init__(self, session: Session, base_url: str | None) -> None:
        self._session = session
        self._recorder = session.recorder
        self._base = Origin(base_url) if base_url else None
        self._idle: dict[str, list[Connection]] = {}
        self._intended = 0  # the open model's intended start of the next request, ns (0: now)
        self.headers: dict[str, str] = _TrackedHeaders()
        self._blocks: dict[str, tuple[int, bytes]] = {}
        self.cookies: dict[str, dict[str, str]] = {}  # host -> name -> value

    @property
    def base_url(self) -> str | None:
        return self._base.key if self._base else None

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
        """
        if files is not None:
            raise UsageError(
                "multipart uploads (files=) are not supported by loadgen's fast HTTP client; "
                "send a pre-encoded body with data= and a Content-Type header"
            )
        if url[:1] == "/":
            origin = self._base
            if origin is None:
                raise UsageError(f"request to {url!r} needs a host: set --host or the User's host")
            target = url
        else:
            origin = Origin(url)
            parts = urlsplit(url)
            target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        path, _, _ = target.partition("?")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params, doseq=True)
        method = method.upper()
        ep = self._recorder.endpoint(method, name or path)

        if headers is None and json is None and data is None and not self.cookies:
            # The common request: the user's header block is cached per origin.
            wire = b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode(), target.encode(), self._block(origin))
        else:
            hdrs = {"User-Agent": USER_AGENT, "Accept": "*/*"}
            if self.headers:
                hdrs.update(self.headers)
            body = b""
            if json is not None:
                body = orjson.dumps(json)
                hdrs["Content-Type"] = "application/json"
            elif data is not None:
                if isinstance(data, Mapping):
                    body = urlencode(data, doseq=True).encode()
                    hdrs["Content-Type"] = "application/x-www-form-urlencoded"
                else:
                    body = data.encode() if isinstance(data, str) else bytes(data)
            if headers:
                hdrs.update(headers)
            jar = self.cookies.get(origin.host) if self.cookies else None
            if jar:
                hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
            wire = _build(method, target, origin.host_header, hdrs, body)

        t_start = self._intended or perf_counter_ns()
        self._intended = 0
        code, conn, t_sent = await self._exchange(origin, wire, method == "HEAD")
        if conn is None:
            now = perf_counter_ns()
            ep.buf.extend((t_start, now, now, now, code, 0, 0))
            return Response(0, url, [], b"", (now - t_start) / 1e6, ep, ERROR_CODES.get(code, "other"))
        t_done = conn.t_done
        expected = expect is not None and code >= 400 and (code == expect if isinstance(expect, int) else code in expect)
        ep.buf.extend(
            (t_start, t_sent, conn.t_first or t_done, t_done, code + EXPECTED_OFFSET if expected else code,
             len(wire), conn.bytes_in)
        )
        if code <= 0:
            return Response(0, url, [], b"", (t_done - t_start) / 1e6, ep, ERROR_CODES.get(code, "other"))
        resp = Response(code, url, conn.headers, conn.body(), (t_done - t_start) / 1e6, ep, None, conn.encoding)
        if expected:
            resp._failed = False
        if conn.has_cookies:
            self._store_cookies(origin.host, resp)
        return resp

    def _block(self, origin: Origin) -> bytes:
        """Host, default and user headers as bytes, rebuilt only when ``headers`` changed."""
        h = self.headers
        version = h.version if isinstance(h, _TrackedHeaders) else -1  # a plain dict assigned by a user
        cached = self._blocks.get(origin.key)
        if cached is not None and cached[0] == version >= 0:
            return cached[1]
        lines = [f"Host: {origin.host_header}\r\n"]
        for k, v in {"User-Agent": USER_AGENT, "Accept": "*/*", **h}.items():
            lines.append(f"{k}: {v}\r\n")
        block = "".join(lines).encode("latin-1")
        self._blocks[origin.key] = (version, block)
        return block

    async def _exchange(
        self, origin: Origin, wire: bytes, head: bool, bare: bool = False
    ) -> tuple[int, Connection | None, int]:
        """Send on an idle connection (or a new one); a stale keep-alive is retried once.

        ``bare``: new connections keep no headers or body (ad-hoc mode, see
        :class:`BareConnection`); a client uses one kind or the other, never both.
        """
        idle = self._idle.get(origin.key)
        for attempt in (0, 1):
            conn = None
            while idle:
                c = idle.pop()
                if not c.closed:
                    conn = c
                    break
            reused = conn is not None
            if conn is None:
                got = await self._session.connect(origin, bare=bare)
                if isinstance(got, int):
                    return got, None, 0
                conn = got
            t_sent = perf_counter_ns()
            code = await conn.send(wire, t_sent + self._session.timeout_ns, head)
            if code > 0:
                if conn.keep_alive and not conn.closed:
                    if idle is None:
                        idle = self._idle[origin.key] = []
                    idle.append(conn)
                else:
                    conn.close()
                return code, conn, t_sent
            # The server may close an idle keep-alive connection just as we reuse it:
            # that is not the target failing, so try once on a fresh connection.
            if reused and attempt == 0 and conn.t_first == 0 and code != ERR_TIMEOUT:
                continue
            return code, conn, t_sent
        raise AssertionError("unreachable")

    async def send_fixed(self, req: FixedRequest) -> int:
        """The ad-hoc mode's request: prebuilt bytes, a bare connection, no Response, one row recorded."""
        t_start = self._intended or perf_counter_ns()
        self._intended = 0
        code, conn, t_sent = await self._exchange(req.origin, req.data, req.head, not req.head)
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

