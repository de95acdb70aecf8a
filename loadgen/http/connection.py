"""One HTTP/1.1 keep-alive connection: an ``asyncio.Protocol`` fed to llhttp.

This is the engine's hot path. A request is one ``transport.write`` of bytes
built by the caller and one future that resolves to an integer code (the
HTTP status, or a negative transport error code from
:data:`loadgen.engine.recorder.ERROR_CODES`): errors are values here, not
exceptions, because raising costs microseconds and failures under overload
are common. Timings are taken where the bytes actually move.

What the wire can do, and what a request then resolves to:

- interim responses (1xx but 101) are skipped, headers and all; the request
  waits for the final response (RFC 9110 §15.2). A 101 nobody asked for is
  ``protocol``.
- bytes that arrive while no request waits (an unsolicited response on an
  idle connection, a second response in the read that ended the first, a
  body after a HEAD/204/304 head that is parsed as a new message) poison the
  connection: it is closed, never reused, and nothing is recorded for them.
- the connection closing before the response is complete (no byte, part of
  the head, a body shorter than its Content-Length, a chunked body without
  its last chunk) is ``reset``, whatever ``Connection:`` said: the response
  was cut off. Only a body with neither Content-Length nor chunked framing
  ends at the close, and is then a complete response.
- a response that llhttp cannot parse is ``protocol``.
- a head, or a body, past its :class:`~loadgen.http.limits.Limits` is
  ``too_large``; the connection is dropped at once, so memory stays bounded.

The checks cost the common path one integer comparison per read
(:attr:`BareConnection.check_at`) and two short calls per response
(``on_message_begin``, ``on_headers_complete``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from time import perf_counter_ns

import httptools

from ..engine.recorder import ERR_INVALID_REQUEST, ERR_PROTOCOL, ERR_RESET, ERR_TOO_LARGE
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["BareConnection", "Connection"]

_PARSE_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)


class _Unsolicited(Exception):
    """A message began while no request was waiting (raised inside llhttp, caught in data_received)."""


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
        "check_at",
        "head_data",
        "eof_body",
        "status",
        "max_head",
        "max_body",
        "limits",
        "headers",
        "chunks",
        "encoding",
        "has_cookies",
        "keep_alive",
        "head_request",
        "location",
        "sending",
        "_paused",
        "_registry",
        "_create_future",
    )

    def __init__(self, registry: set[Connection], limits: Limits = DEFAULT_LIMITS) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.deadline_ns = 0  # 0 while idle; else when the current request times out
        self.t_first = 0
        self.t_done = 0
        self.bytes_in = 0
        # data_received looks closer only once bytes_in passes check_at: -1 while idle (any
        # byte is unsolicited), the bytes so far while the head is incomplete, and the body
        # limit once the head is parsed. One comparison per read on the common path.
        self.check_at = -1
        # The response's bytes until its final head is parsed (None after): the framing of a
        # response that says Connection: close is read from it (see _close_delimited).
        self.head_data: bytes | bytearray | None = None
        self.eof_body = False  # the final head says the close ends the body
        self.status = 0  # of the head parsed last
        self.max_head = limits.max_head_bytes
        self.max_body = limits.max_body_bytes
        self.limits = limits
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.encoding: bytes | None = None
        self.has_cookies = False
        self.keep_alive = True
        self.head_request = False
        self.location: bytes | None = None  # of a 3xx response (the client follows redirects)
        self.sending: Iterator[bytes] | None = None  # a streamed body still being written
        self._paused = False  # the transport's buffer is full (pause_writing): wait for resume_writing
        self._registry = registry
        self._create_future = asyncio.get_running_loop().create_future

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._registry.add(self)

    def data_received(self, data: bytes) -> None:
        n = self.bytes_in + len(data)
        self.bytes_in = n
        if n > self.check_at:
            if self.t_first or self.waiter is None:
                if self._check(data):
                    return
            else:  # the first read of a response
                self.t_first = perf_counter_ns()
                self.head_data = data
                self.check_at = n
        try:
            self.parser.feed_data(data)
        except _PARSE_ERRORS:
            self._finish(ERR_PROTOCOL)
            self.close()

    def _check(self, data: bytes) -> bool:
        """A read past ``check_at``; True when it must not be parsed (the connection is dropped)."""
        if self.waiter is None:  # bytes nobody asked for
            self.close()
            return True
        hd = self.head_data
        # Past the body limit; or a head still incomplete after max_head bytes (what came before
        # this read: this read may hold body bytes after the head's end).
        if hd is None or len(hd) > self.max_head:
            self.t_done = perf_counter_ns()
            self._finish(ERR_TOO_LARGE)
            self.close()
            return True
        # A head spread over reads (rare; bounded by max_head): a bytearray, so that a head
        # trickled a byte at a time costs linear time, not quadratic.
        if type(hd) is bytes:
            hd = self.head_data = bytearray(hd)
        hd += data  # type: ignore[operator]
        self.check_at = self.bytes_in
        return False

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self.sending is not None:
            self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.sending = None
        self._registry.discard(self)
        w = self.waiter
        if w is not None:
            # Only a body framed by the close ends here; anything else was cut off.
            if self.eof_body and self.t_first and self.head_data is None:
                self.t_done = perf_counter_ns()
                self._finish(self.status)
            else:
                self._finish(ERR_RESET)

    # -- llhttp callbacks (each once per message) --------------------------------
    def on_message_begin(self) -> None:
        if self.waiter is None:
            raise _Unsolicited

    def on_headers_complete(self) -> None:
        p = self.parser
        self.status = status = p.get_status_code()
        if status < 200 and status != 101:
            return  # an interim response: the final head is still to come
        self.check_at = self.bytes_in + self.max_body
        if 300 <= status < 400:
            self.location = self._location_of(self.head_data)
        elif self.location is not None:
            self.location = None
        self.keep_alive = keep = p.should_keep_alive()
        if not keep:
            # The close may or may not end the body: rare enough to look. (eof_body is not
            # reset otherwise: a connection without keep-alive is never used again.)
            self.eof_body = self._close_delimited(self.head_data)
        self.head_data = None
        if self.head_request:
            # llhttp cannot know a HEAD response has no body: end the message here
            # and start a fresh parser for the next one.
            self.t_done = perf_counter_ns()
            self.parser = httptools.HttpResponseParser(self)
            self._finish(status)

    def on_message_complete(self) -> None:
        w = self.waiter
        if w is None:
            return
        status = self.status  # read from the head by on_headers_complete
        if status < 200:
            if status != 101:
                return  # interim: skipped (RFC 9110 §15.2)
            status = ERR_PROTOCOL  # an upgrade nobody asked for
        self.t_done = perf_counter_ns()
        # _finish, inlined: this runs once per request.
        self.waiter = None
        self.deadline_ns = 0
        self.check_at = -1
        if not w.done():
            w.set_result(status)

    # -- used by the client ---------------------------------------------------
    def send(self, data: bytes, deadline_ns: int, head: bool = False,
             body: Iterator[bytes] | None = None) -> asyncio.Future[int]:
        """Write one request; the future resolves to the status or an error code.

        ``body``: more of the request's body, written after ``data`` a piece at a time
        as the transport's buffer drains (a 100 MB upload never sits in memory). A
        response that ends before the body is sent leaves :attr:`sending` set: the
        connection must not be reused. A body that cannot be read to its declared
        length (see :class:`~loadgen.http.body.Body`) ends the request ``invalid_request``.
        """
        self.t_first = 0
        self.bytes_in = 0
        self.head_request = head
        self.deadline_ns = deadline_ns
        self.waiter = w = self._create_future()
        self.transport.write(data)  # type: ignore[union-attr]
        if body is not None:
            self.sending = body
            self._pump()
        return w

    def _pump(self) -> None:
        """Write body pieces until the transport asks to pause (resume_writing calls again) or the end."""
        it, t = self.sending, self.transport
        try:
            while it is not None and not self._paused and not self.closed:
                chunk = next(it, None)
                if chunk is None:
                    self.sending = None
                    return
                t.write(chunk)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - a body that cannot be read, whatever its file object raises
            self.sending = None
            self.t_done = perf_counter_ns()
            self._finish(ERR_INVALID_REQUEST)
            self.close()

    def body(self) -> bytes:
        c = self.chunks
        if not c or self.head_request:
            return b""
        return c[0] if len(c) == 1 else b"".join(c)

    def _finish(self, code: int) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            self.deadline_ns = 0
            self.check_at = -1
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

    def _close_delimited(self, head: bytes | bytearray | None) -> bool:
        """Whether the final response's body is delimited by the close (no length, not chunked).

        A bare connection keeps no headers, so its head is parsed again, from the
        bytes kept for it; this runs only for responses that end the connection.
        """
        return _close_delimited(_probe(head))

    def _location_of(self, head: bytes | bytearray | None) -> bytes | None:
        """A 3xx response's Location (parsed again from the kept bytes, as _close_delimited)."""
        return _header(_probe(head), b"location")


class Connection(BareConnection):
    """A connection that also keeps the response's headers and body for a :class:`Response`."""

    __slots__ = ()

    def on_message_begin(self) -> None:
        if self.waiter is None:
            raise _Unsolicited
        # New lists, not cleared ones: the last Response holds the old header list. This also
        # drops an interim response's headers.
        self.headers = []
        if self.chunks:
            self.chunks = []
        self.encoding = None
        self.has_cookies = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        n = len(name)
        # Only two headers change what the client does; test the length first, it is cheap.
        if n == 16 and name.lower() == b"content-encoding":
            self.encoding = value
        elif n == 10 and name.lower() == b"set-cookie":
            self.has_cookies = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def _close_delimited(self, head: bytes | bytearray | None) -> bool:
        return _close_delimited(self.headers)

    def _location_of(self, head: bytes | bytearray | None) -> bytes | None:
        return _header(self.headers, b"location")


class _HeadProbe:
    """Parses a bare connection's head again, for the final response's headers."""

    __slots__ = ("parser", "headers")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []

    def on_message_begin(self) -> None:
        self.headers = []  # an interim response's headers are not the final ones

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() >= 200:
            raise _Unsolicited  # stop here: what follows is body


def _probe(head: bytes | bytearray | None) -> list[tuple[bytes, bytes]]:
    """The final response's headers, parsed from the bytes of its head."""
    probe = _HeadProbe()
    try:
        probe.parser.feed_data(head or b"")
    except _PARSE_ERRORS:
        pass
    return probe.headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The last value of header ``name`` (lower case), or None."""
    found = None
    for n, v in headers:
        if n.lower() == name:
            found = v
    return found


def _close_delimited(headers: list[tuple[bytes, bytes]]) -> bool:
    """RFC 9112 §6.3 for a response: chunked last or a Content-Length frame the body; else the close does."""
    coding = length = None
    for name, value in headers:
        n = name.lower()
        if n == b"transfer-encoding":
            coding = value
        elif n == b"content-length":
            length = value
    if coding is not None:
        return not coding.rstrip().lower().endswith(b"chunked")
    return length is None
