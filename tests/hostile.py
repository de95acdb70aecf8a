"""A hostile HTTP target for tests: raw sockets, one misbehaviour per path.

Real servers are polite; the targets loadgen meets are not always. This one
speaks HTTP/1.1 by hand over plain sockets, a thread per connection, so a
behaviour can do anything a broken or malicious server does: never answer,
answer twice, lie about lengths, send endless headers, close mid-body.

Each behaviour is a function ``(conn, req) -> bool``: it gets the connected
socket and the parsed request head, writes whatever it likes, and returns
True to keep the connection open for the next request (keep-alive) or False
to have it closed. :attr:`HostileServer.counts` tells how many requests each
path received, so tests can assert exact counts against what loadgen recorded.

Usage::

    with HostileServer({"/odd": my_behaviour}) as srv:
        ... srv.url + "/stall" ...
        assert srv.counts["/stall"] == 3
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["HostileServer", "Request", "Behaviour", "STANDARD", "ok_response"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    target: str  # as sent
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


Behaviour = Callable[[socket.socket, Request], bool]


def ok_response(body: bytes = b"ok", status: str = "200 OK", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def _ok(conn: socket.socket, req: Request) -> bool:
    conn.sendall(ok_response())
    return True


def _stall(conn: socket.socket, req: Request) -> bool:
    """Never answer; hold the connection until the client goes away."""
    conn.settimeout(None)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
    return False


def _close(conn: socket.socket, req: Request) -> bool:
    """Read the request, then close without a byte."""
    return False


def _interim_then_500(conn: socket.socket, req: Request) -> bool:
    conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.sendall(ok_response(b"broken", "500 Internal Server Error"))
    return True


def _short_body_close(conn: socket.socket, req: Request) -> bool:
    """Promise 100 bytes, send 10, close: a truncated body."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789")
    return False


def _two_responses(conn: socket.socket, req: Request) -> bool:
    """Two responses in one write to one request: the second is unsolicited."""
    conn.sendall(ok_response(b"first") + ok_response(b"second!"))
    return True


def _late_extra(conn: socket.socket, req: Request) -> bool:
    """Answer at once, then send an unsolicited response on the idle connection."""
    conn.sendall(ok_response(b"first"))
    time.sleep(0.05)
    try:
        conn.sendall(ok_response(b"unsolicited", "200 OK"))
    except OSError:
        return False
    return True


def _endless_headers(conn: socket.socket, req: Request) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    try:
        for i in range(10_000_000):
            conn.sendall(b"X-Filler-%d: %s\r\n" % (i, b"y" * 100))
    except OSError:
        pass
    return False


def _endless_body(conn: socket.socket, req: Request) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
    try:
        for _ in range(1_000_000):
            conn.sendall(chunk)
    except OSError:
        pass
    return False


def _gzip_bomb(conn: socket.socket, req: Request) -> bool:
    import gzip

    body = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)
    conn.sendall(ok_response(body, extra="Content-Encoding: gzip\r\n"))
    return True


def _garbage(conn: socket.socket, req: Request) -> bool:
    conn.sendall(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n")
    return False


# -- more misbehaviours (framing edge cases) ---------------------------------------


def _chunked_cut(conn: socket.socket, req: Request) -> bool:
    """A chunked body cut off by the close: the last chunk never comes."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    return False


def _close_delimited(conn: socket.socket, req: Request) -> bool:
    """Neither Content-Length nor chunked: the close ends the body (a complete response)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    return False


def _length_and_chunked(conn: socket.socket, req: Request) -> bool:
    """Both Content-Length and chunked (request-smuggling material): not a valid response."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n")
    return True


def _negative_length(conn: socket.socket, req: Request) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello")
    return True


def _header_without_colon(conn: socket.socket, req: Request) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nthis line has no colon\r\n\r\nok")
    return True


def _no_reason(conn: socket.socket, req: Request) -> bool:
    """A status line with no reason phrase: valid (RFC 9112 section 4)."""
    conn.sendall(b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok")
    return True


def _no_content_with_body(conn: socket.socket, req: Request) -> bool:
    """A 204 followed by body bytes: a 204 has no body, so they are bytes nobody asked for."""
    conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello")
    return True


def _switching_protocols(conn: socket.socket, req: Request) -> bool:
    """A 101 to a request that asked for no upgrade."""
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                 b"\x81\x05hello")
    return True


def _endless_continue(conn: socket.socket, req: Request) -> bool:
    """Interim responses for ever: the final response never comes."""
    try:
        for _ in range(10_000_000):
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)
    except OSError:
        pass
    return False


def _huge_length(conn: socket.socket, req: Request) -> bool:
    """Claim 2**62 bytes of body and keep sending."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387904\r\n\r\n")
    block = b"w" * 65536
    try:
        for _ in range(1_000_000):
            conn.sendall(block)
    except OSError:
        pass
    return False


def _bad_gzip(conn: socket.socket, req: Request) -> bool:
    """Says gzip, sends bytes that are not."""
    conn.sendall(ok_response(b"\x1f\x8b\x08\x00 certainly not deflate data", extra="Content-Encoding: gzip\r\n"))
    return True


STANDARD: dict[str, Behaviour] = {
    "/ok": _ok,
    "/stall": _stall,
    "/close": _close,
    "/interim-500": _interim_then_500,
    "/short-body-close": _short_body_close,
    "/two-responses": _two_responses,
    "/late-extra": _late_extra,
    "/endless-headers": _endless_headers,
    "/endless-body": _endless_body,
    "/gzip-bomb": _gzip_bomb,
    "/garbage": _garbage,
    "/chunked-cut": _chunked_cut,
    "/close-delimited": _close_delimited,
    "/length-and-chunked": _length_and_chunked,
    "/negative-length": _negative_length,
    "/header-without-colon": _header_without_colon,
    "/no-reason": _no_reason,
    "/no-content-with-body": _no_content_with_body,
    "/switching-protocols": _switching_protocols,
    "/endless-continue": _endless_continue,
    "/huge-length": _huge_length,
    "/bad-gzip": _bad_gzip,
}


def _read_request(conn: socket.socket, buf: bytearray) -> Request | None:
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    while len(rest) < n:
        data = conn.recv(65536)
        if not data:
            return None
        rest += data
    buf[:] = rest[n:]
    return Request(method, target.split("?", 1)[0], target, headers, rest[:n])


class HostileServer:
    """A thread-per-connection raw HTTP/1.1 server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, extra: dict[str, Behaviour] | None = None, *, backlog: int = 128) -> None:
        self.behaviours = {**STANDARD, **(extra or {})}
        self.counts: Counter[str] = Counter()
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(backlog)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._conns: set[socket.socket] = set()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped = True
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        try:
            conn.settimeout(30)
            while not self._stopped:
                req = _read_request(conn, buf)
                if req is None:
                    return
                with self._lock:
                    self.counts[req.path] += 1
                behaviour = self.behaviours.get(req.path)
                if behaviour is None:
                    conn.sendall(ok_response(b"no such behaviour", "404 Not Found"))
                    continue
                if not behaviour(conn, req):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
