"""The metrics port's connections: clients that are not trusted to finish.

A request must be read whole within the handler's timeout (not each read: a byte
every few seconds would hold a thread for ever); a connection still sending its
request when the port stops is shut at once (:meth:`ThreadedServer.cut_readers`); a
streaming reply's connection is known to the server until it closes
(:class:`Stream`), so a page that stopped reading cannot hold ``stop()``; a client
gone or too slow is never a traceback on the terminal. :mod:`.server` routes the
requests; this module only carries them.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.types import WSGIEnvironment

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

__all__ = ["SOCKET", "READ", "RequestHandler", "ThreadedServer", "ThreadedServer6", "Stream", "shut"]

SOCKET = "loadgen.socket"  # the environ key of the request's connection (for streams: see MetricsServer.stop())
#: The environ key of a callable: the request is read (``unread=True``: its body was refused
#: unread), its reply begins. A callable: wsgiref hands the application a copy of the environ.
READ = "loadgen.read"
#: A body refused unread is still read and dropped, up to this much within the request's timeout,
#: so the client, still sending it, reads the refusal rather than a reset connection.
_MAX_DISCARD = 64 * 1024 * 1024


class _Quiet(ServerHandler):
    server_software = "loadgen"  # not the WSGI server's and Python's versions: nobody needs them
    def log_exception(self, exc_info: OptExcInfo) -> None:
        # A client gone or stalled mid-reply (a page that stopped reading its event stream, shut at
        # stop()): nothing to report, and a traceback would break the live display.
        if isinstance(exc_info[1], OSError):
            return
        super().log_exception(exc_info)


class _ReadBy(io.RawIOBase):
    """A connection's reads, each given what is left of one deadline for the whole request;
    the socket's own timeout (for the reply's writes) is put back after each."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock, self._timeout = sock, timeout
        self._deadline = time.monotonic() + timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not read within the timeout")
        self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._timeout)


class RequestHandler(WSGIRequestHandler):
    timeout = 10  # the whole request must be read within this (and each write of the reply)
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - no access log on the terminal
        pass

    def setup(self) -> None:
        super().setup()
        assert self.timeout is not None
        self.rfile = io.BufferedReader(_ReadBy(self.connection, self.timeout))
        self._unread = False
        self.server.reading(self.connection, True)

    def finish(self) -> None:
        self.server.reading(self.connection, False)
        super().finish()

    def get_environ(self) -> WSGIEnvironment:
        environ = super().get_environ()
        environ[SOCKET] = self.connection
        environ[READ] = self._read
        return environ

    def _read(self, unread: bool = False) -> None:
        self._unread = unread
        self.server.reading(self.connection, False)

    def handle(self) -> None:
        """WSGIRequestHandler's, with :class:`_Quiet` running the application."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _Quiet(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=False)
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's back-pointer for logging
        handler.run(self.server.get_app())
        if self._unread:
            self._discard()

    def _discard(self) -> None:
        """The reply is sent; read and drop the body it refused (see _MAX_DISCARD): closing with
        bytes unread would reset the connection before the client read the reply."""
        if not self.server.reading(self.connection, True):
            return  # the port is stopping
        try:
            self.connection.shutdown(socket.SHUT_WR)
            left = _MAX_DISCARD
            while left > 0:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:
            pass


class ThreadedServer(ThreadingMixIn, WSGIServer):
    # Non-daemon request threads: server_close() joins them, so stop() never cuts the
    # response of a scrape in progress short (the scrape after a run is why we linger).
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True  # on Linux this still refuses a port another socket listens on
    request_queue_size = 64  # socketserver's 5 dropped connections when pages, scrapes and calls came together

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._reading: set[socket.socket] = set()  # connections whose request is still coming in
        self._reading_lock = threading.Lock()
        self._cut = False
        super().__init__(*args, **kwargs)

    def reading(self, sock: socket.socket, still: bool) -> bool:
        """Note whether ``sock``'s request is still being read; False (and the connection shut)
        when it is and the port is stopping."""
        with self._reading_lock:
            if not still:
                self._reading.discard(sock)
                return True
            if not self._cut:
                self._reading.add(sock)
                return True
        shut(sock)
        return False

    def cut_readers(self) -> None:
        """Shut every connection whose request has not come in whole, and any that comes later:
        the port is stopping, and they would hold server_close() until their timeout, or for ever."""
        with self._reading_lock:
            self._cut = True
            socks = list(self._reading)
        for sock in socks:
            shut(sock)

    def handle_error(self, request: object, client_address: Any) -> None:
        """A client gone, reset or too slow is no error; anything else is one line, not a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        sys.stderr.write(f"loadgen: the metrics port failed to answer {client_address[0]}: "
                         f"{type(exc).__name__}: {exc}\n")


def shut(sock: socket.socket) -> None:
    """End a connection's reads and writes now: a thread blocked on it returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class ThreadedServer6(ThreadedServer):
    address_family = socket.AF_INET6


class Stream:
    """A streaming reply, its connection known to the server until the server closes it."""

    def __init__(self, body: Iterable[bytes], sock: socket.socket, streams: set[socket.socket],
                 lock: threading.Lock) -> None:
        self._body, self._sock, self._streams, self._lock = body, sock, streams, lock
        with lock:
            streams.add(sock)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        with self._lock:
            self._streams.discard(self._sock)
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
