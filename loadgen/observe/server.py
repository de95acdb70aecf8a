"""The ``/metrics`` HTTP endpoint: a small threaded WSGI server beside the event loop.

A thread of its own, so a scrape never waits for the loop, and the loop never
serves a scrape. A port that cannot be bound is a one-sentence
:class:`~loadgen.errors.UsageError` before the run starts.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from ..errors import UsageError
from .routes import Handler, Reply, Request, text_reply
from .textformat import CONTENT_TYPE

__all__ = ["DEFAULT_ADDR", "DEFAULT_PORT", "MetricsServer"]

#: Default of ``--metrics-port`` (not taken in Prometheus's default port allocations).
DEFAULT_PORT = 9646
DEFAULT_ADDR = "127.0.0.1"

_INDEX = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
_MAX_BODY = 64 * 1024  # a control call is a few bytes; nothing larger is read
_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Content Too Large", 500: "Internal Server Error"}


class _Handler(WSGIRequestHandler):
    timeout = 10  # a stalled client cannot hold stop() for long

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - no access log on the terminal
        pass


class _Server(ThreadingMixIn, WSGIServer):
    # Non-daemon request threads: server_close() joins them, so stop() never cuts the
    # response of a scrape in progress short (the scrape after a run is why we linger).
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True  # on Linux this still refuses a port another socket listens on


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
        server.server_close()  # joins request threads
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        handler = self._handler(path)
        if handler is not None:
            return self._handled(handler, environ, start_response)
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
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            reply = text_reply(413 if length > _MAX_BODY else 400, "the request body is too large or its length "
                                                                   "is not a number\n")
        else:
            body = environ["wsgi.input"].read(length) if length else b""
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
    def _reply(reply: Reply, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status = f"{reply.status} {_REASONS.get(reply.status, 'Status')}"
        headers = [("Content-Type", reply.content_type), *reply.headers]
        if isinstance(reply.body, bytes):
            headers.append(("Content-Length", str(len(reply.body))))
            start_response(status, headers)
            return [reply.body] if environ.get("REQUEST_METHOD") != "HEAD" else []
        start_response(status, headers)
        return reply.body


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
