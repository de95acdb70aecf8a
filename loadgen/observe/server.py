"""The ``/metrics`` HTTP endpoint: a small threaded WSGI server beside the event loop.

A thread of its own, so a scrape never waits for the loop, and the loop never
serves a scrape. A port that cannot be bound is a one-sentence
:class:`~loadgen.errors.UsageError` before the run starts.

Clients are not trusted to finish (:mod:`.connections` carries them: whole-request
deadlines, connections cut when the port stops, no tracebacks); this module routes
``/metrics`` and the mounted handlers (:mod:`.routes`).
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterable
from wsgiref.simple_server import make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from ..errors import UsageError
from .connections import READ, SOCKET, RequestHandler, Stream, ThreadedServer, ThreadedServer6, shut
from .routes import Handler, Reply, Request, text_reply
from .textformat import CONTENT_TYPE

__all__ = ["DEFAULT_ADDR", "DEFAULT_PORT", "MetricsServer"]

#: Default of ``--metrics-port`` (not taken in Prometheus's default port allocations).
DEFAULT_PORT = 9646
DEFAULT_ADDR = "127.0.0.1"

_INDEX = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
_MAX_BODY = 64 * 1024  # a control call is a few bytes; nothing larger is read
_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            409: "Conflict", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
            500: "Internal Server Error", 503: "Service Unavailable"}
_STREAM_GRACE_S = 1.0  # streams end by themselves once closing is set; after this their sockets are shut


class MetricsServer:
    """Serves ``scrape()`` at ``/metrics`` (and a link to it at ``/``) from a thread."""

    def __init__(self, scrape: Callable[[], bytes]) -> None:
        self._scrape = scrape
        self._server: ThreadedServer | None = None
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
        server_class = ThreadedServer6 if ":" in addr else ThreadedServer
        try:
            server = make_server(addr, port, self._wsgi, server_class, RequestHandler)
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
            shut(sock)

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        handler = self._handler(path)
        if handler is not None:
            return self._handled(handler, environ, start_response)
        environ[READ]()  # no body is read here
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
            environ[READ](unread=True)
            return self._reply(reply, environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = environ["wsgi.input"].read(length) if length else b""
        except OSError:
            body = None
        environ[READ]()
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
        sock = environ.get(SOCKET)
        if not isinstance(sock, socket.socket):  # pragma: no cover - our handler always sets it
            return reply.body
        return Stream(reply.body, sock, self._streams, self._streams_lock)


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
