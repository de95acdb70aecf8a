"""One HTTP/1.1 keep-alive connection: an ``asyncio.Protocol`` fed to llhttp.

This is the engine's hot path. A request is one ``transport.write`` of bytes
built by the caller and one future that resolves to an integer code (the
HTTP status, or a negative transport error code from
:data:`loadgen.recorder.ERROR_CODES`): errors are values here, not
exceptions, because raising costs microseconds and failures under overload
are common. Timings are taken where the bytes actually move.
"""

from __future__ import annotations

import asyncio
from time import perf_counter_ns

import httptools

from ..recorder import ERR_PROTOCOL, ERR_RESET

__all__ = ["BareConnection", "Connection"]


class BareConnection(asyncio.Protocol):
    """A client connection that carries one request at a time, and ignores headers and body.

    httptools wires up only the callbacks its protocol object has, so this
    class, with no ``on_header``/``on_body``, costs no Python call per header:
    the ad-hoc mode, which never reads a response, uses it. Bytes are still
    counted. :class:`Connection` adds what scenarios read.
    """

    __slots__ = (
        "transport",
        "parser",
        "waiter",
        "closed",
        "deadline_ns",
        "t_first",
        "t_done",
        "bytes_in",
        "headers",
        "chunks",
        "encoding",
        "has_cookies",
        "keep_alive",
        "head_request",
        "_registry",
        "_create_future",
    )

    def __init__(self, registry: set[Connection]) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.deadline_ns = 0  # 0 while idle; else when the current request times out
        self.t_first = 0
        self.t_done = 0
        self.bytes_in = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.encoding: bytes | None = None
        self.has_cookies = False
        self.keep_alive = True
        self.head_request = False
        self._registry = registry
        self._create_future = asyncio.get_running_loop().create_future

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._registry.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.t_first:
            self.t_first = perf_counter_ns()
        self.bytes_in += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._finish(ERR_PROTOCOL)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._registry.discard(self)
        w = self.waiter
        if w is not None:
            # A body delimited by the connection's close ends here; anything else was cut off.
            # (get_status_code is that of the response under way once its head is parsed.)
            if self.bytes_in and self.parser.get_status_code() and not self.parser.should_keep_alive():
                self.t_done = perf_counter_ns()
                self._finish(self.parser.get_status_code())
            else:
                self._finish(ERR_RESET)

    # -- llhttp callbacks ---------------------------------------------------
    def on_message_complete(self) -> None:
        w = self.waiter
        if w is None:
            return
        self.t_done = perf_counter_ns()
        p = self.parser
        self.keep_alive = p.should_keep_alive()
        # _finish, inlined: this runs once per request.
        self.waiter = None
        self.deadline_ns = 0
        if not w.done():
            w.set_result(p.get_status_code())

    # -- used by the client ---------------------------------------------------
    def send(self, data: bytes, deadline_ns: int, head: bool = False) -> asyncio.Future[int]:
        """Write one request; the future resolves to the status or an error code."""
        self.t_first = 0
        self.bytes_in = 0
        self.head_request = head
        self.deadline_ns = deadline_ns
        self.waiter = w = self._create_future()
        self.transport.write(data)  # type: ignore[union-attr]
        return w

    def body(self) -> bytes:
        c = self.chunks
        if not c:
            return b""
        return c[0] if len(c) == 1 else b"".join(c)

    def _finish(self, code: int) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            self.deadline_ns = 0
            if not w.done():
                w.set_result(code)

    def fail(self, code: int) -> None:
        """End the current request with an error code and drop the connection (timeouts)."""
        self.t_done = perf_counter_ns()
        self._finish(code)
        self.close()

    def close(self) -> None:
        self.closed = True
        t = self.transport
        if t is not None:
            t.abort()


class Connection(BareConnection):
    """A connection that also keeps the response's headers and body for a :class:`Response`."""

    __slots__ = ()

    def send(self, data: bytes, deadline_ns: int, head: bool = False) -> asyncio.Future[int]:
        if self.headers:
            self.headers = []
        if self.chunks:
            self.chunks = []
        self.encoding = None
        self.has_cookies = False
        return super().send(data, deadline_ns, head)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        n = len(name)
        # Only two headers change what the client does; test the length first, it is cheap.
        if n == 16 and name.lower() == b"content-encoding":
            self.encoding = value
        elif n == 10 and name.lower() == b"set-cookie":
            self.has_cookies = True

    def on_headers_complete(self) -> None:
        if self.head_request:
            # llhttp cannot know a HEAD response has no body: end the message here
            # and start a fresh parser for the next one.
            self.t_done = perf_counter_ns()
            self.keep_alive = self.parser.should_keep_alive()
            status = self.parser.get_status_code()
            self.parser = httptools.HttpResponseParser(self)
            self._finish(status)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

