"""The ``/metrics`` HTTP endpoint: a small threaded WSGI server beside the event loop.

A thread of its own, so a scrape never waits for the loop, and the loop never
serves a scrape. A port that cannot be bound is a one-sentence
:class:`~loadgen.errors.UsageError` before the run starts.

Clients are not trusted to finish: a request must be read whole within the
handler's timeout (not each read: a byte every few seconds would hold a thread
for ever), a connection still sending its request when the port stops is shut
at once, and a client gone or too slow is never a traceback on the terminal.
"""

from __future__ import annotations

import errno
import io
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from ..errors import UsageError
from .routes import Handler, Reply, Request, text_reply
from .textformat import CONTENT_TYPE

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

__all__ = ["DEFAULT_ADDR", "DEFAULT_PORT", "MetricsServer"]

#: Default of ``--metrics-port`` (not taken in Prometheus's default port allocations).
DEFAULT_PORT = 9646
DEFAULT_ADDR = "127.0.0.1"

_INDEX = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
_MAX_BODY = 64 * 1024  # a control call is a few bytes; nothing larger is read
#: A body refused unread is still read and dropped, up to this much within the request's timeout,
#: so the client, still sending it, reads the refusal rather than a reset connection.
_MAX_DISCARD = 64 * 1024 * 1024
_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            409: "Conflict", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
            500: "Internal Server Error", 503: "Service Unavailable"}
_SOCKET = "loadgen.socket"  # the environ key of the request's connection (for streams: see stop())
#: The environ key of a callable: the request is read (``unread=True``: its body was refused
#: unread), its reply begins. A callable: wsgiref hands the application a copy of the environ.
_READ = "loadgen.read"
_STREAM_GRACE_S = 1.0  # streams end by themselves once closing is set; after this their sockets are shut


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


class _Handler(WSGIRequestHandler):
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
        environ[_SOCKET] = self.connection
        environ[_READ] = self._read
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


class _Server(ThreadingMixIn, WSGIServer):
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
        _shut(sock)
        return False

    def cut_readers(self) -> None:
        """Shut every connection whose request has not come in whole, and any that comes later:
        the port is stopping, and they would hold server_close() until their timeout, or for ever."""
        with self._reading_lock:
            self._cut = True
            socks = list(self._reading)
        for sock in socks:
            _shut(sock)

    def handle_error(self, request: object, client_address: Any) -> None:
        """A client gone, reset or too slow is no error; anything else is one line, not a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        sys.stderr.write(f"loadgen: the metrics port failed to answer {client_address[0]}: "
                         f"{type(exc).__name__}: {exc}\n")


def _shut(sock: socket.socket) -> None:
    """End a connection's reads and writes now: a thread blocked on it returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """Serves ``scrape()`` at ``/metrics`` (and a link to it at ``/``) from a thread."""

    def __init__(self, scrape: Callable[[], bytes]) -> None:
        self._scrape = scrape
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._addr = DEFAULT_ADDR
        self._mounts: list[tuple[str, Handler]] = []
        self.closing = threading.Event()  # set as stop() begins: streaming replies end
        self._streams: set[socket.socket] = set()  # connections with a streaming reply in progress
        self._streams_lock = threading.Lock()

    def mount(self, prefix: str, handler: Handler) -> None:
        """Serve every path equal to ``prefix`` or under it (``prefix/...``) with ``handler``;
        the longest matching prefix wins. ``/`` replaces the index page."""
        self._mounts.append((prefix.rstrip("/") or "/", handler))
        self._mounts.sort(key=lambda m: -len(m[0]))

    @property
    def serving(self) -> bool:
        return self._server is not None

    def start(self, port: int, addr: str) -> None:
        """Bind ``addr:port`` (port 0: a free port) and serve; UsageError when that cannot be."""
        if self._server is not None:
            raise RuntimeError("the metrics exporter is already serving")
        if not 0 <= port <= 65535:
            raise UsageError(f"--metrics-port {port} is not a port number (0-65535)")
        server_class = _Server6 if ":" in addr else _Server
        try:
            server = make_server(addr, port, self._wsgi, server_class, _Handler)
        except OSError as exc:
            raise bind_error(exc, addr, port) from None
        self._server = server
        self._addr = addr
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="loadgen-metrics", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics exporter is not serving")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://addr:port/metrics`` (an unspecified address shown as loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._addr, self._addr)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving; a scrape in progress completes. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self.closing.set()
        server.shutdown()
        server.cut_readers()
        self._end_streams()
        server.server_close()  # joins request threads
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _end_streams(self) -> None:
        """Streams see ``closing`` and end; one whose client stopped reading is blocked in a write,
        so after a grace its socket is shut, which ends the write at once (not after the timeout)."""
        deadline = time.monotonic() + _STREAM_GRACE_S
        while time.monotonic() < deadline:
            with self._streams_lock:
                if not self._streams:
                    return
            time.sleep(0.02)
        with self._streams_lock:
            stuck = list(self._streams)
        for sock in stuck:
            _shut(sock)

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        handler = self._handler(path)
        if handler is not None:
            return self._handled(handler, environ, start_response)
        environ[_READ]()  # no body is read here
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"method not allowed\n"]
        if path == "/":
            body, content_type = _INDEX, "text/html"
        elif path == "/metrics":
            body, content_type = self._scrape(), CONTENT_TYPE
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; the metrics are at /metrics\n"]
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body] if method == "GET" else []

    def _handler(self, path: str) -> Handler | None:
        for prefix, handler in self._mounts:
            if path == prefix or path.startswith(prefix + "/") or prefix == "/" and path == "/":
                return handler
        return None

    def _handled(self, handler: Handler, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        reply = self._refuse_body(environ)
        if reply is not None:
            environ[_READ](unread=True)
            return self._reply(reply, environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = environ["wsgi.input"].read(length) if length else b""
        except OSError:
            body = None
        environ[_READ]()
        if body is None or len(body) < length:
            reply = text_reply(408 if body is None else 400, "the request body did not come in whole "
                                                             "(the connection was too slow or ended)\n")
        else:
            headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
            if environ.get("CONTENT_TYPE"):
                headers["content-type"] = str(environ["CONTENT_TYPE"])
            request = Request(method=environ.get("REQUEST_METHOD", "GET"), path=environ.get("PATH_INFO") or "/",
                              query=environ.get("QUERY_STRING", ""), headers=headers, body=body,
                              peer=str(environ.get("REMOTE_ADDR", "")), server_addr=self._addr,
                              closing=self.closing)
            reply = handler(request)
        return self._reply(reply, environ, start_response)

    @staticmethod
    def _refuse_body(environ: WSGIEnvironment) -> Reply | None:
        """Why the request's body is not read (chunked, a length that is no count of bytes, too large), or None."""
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return text_reply(411, "send the request body with a Content-Length: a chunked body is not read\n")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length > _MAX_BODY:
            return text_reply(413, f"the request body is too large (at most {_MAX_BODY:,} bytes)\n")
        if length < 0:
            return text_reply(400, "the request's Content-Length is not a count of bytes\n")
        return None

    def _reply(self, reply: Reply, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status = f"{reply.status} {_REASONS.get(reply.status, 'Status')}"
        headers = [("Content-Type", reply.content_type), *reply.headers]
        if isinstance(reply.body, bytes):
            headers.append(("Content-Length", str(len(reply.body))))
            start_response(status, headers)
            return [reply.body] if environ.get("REQUEST_METHOD") != "HEAD" else []
        start_response(status, headers)
        sock = environ.get(_SOCKET)
        if not isinstance(sock, socket.socket):  # pragma: no cover - our handler always sets it
            return reply.body
        return _Stream(reply.body, sock, self._streams, self._streams_lock)


class _Stream:
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


def bind_error(exc: OSError, addr: str, port: int) -> UsageError:
    """What went wrong binding the endpoint, in one sentence naming the option to change."""
    if isinstance(exc, socket.gaierror):
        return UsageError(f"--metrics-addr {addr!r} is not a valid address ({exc.strerror})")
    if exc.errno == errno.EADDRINUSE:
        return UsageError(f"--metrics-port {port} is in use on {addr}")
    if exc.errno == errno.EACCES:
        return UsageError(f"--metrics-port {port} on {addr} needs privileges; use a port above 1023")
    if exc.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"--metrics-addr {addr} is not an address of this machine")
    return UsageError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}")
