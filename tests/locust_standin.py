"""A permissive stand-in for the APIs locustfiles are written against: any method, any path, 200 and JSON.

Converted Locust examples need a server to run against, and the servers they
were written for (Locust's own web UI, docs.locust.io, postman-echo.com) are
not ours to load. This one answers every request with 200 and one JSON
document that satisfies what example code commonly reads from a response:

- tokens, as a login endpoint returns them: ``token``, ``access_token``,
  ``refresh_token``, ``token_type``, ``expires_in``;
- a list page: ``items``/``results`` (three objects with ``id`` and ``name``),
  ``total``, ``count``;
- one object: ``id`` (the last path segment when it is a number, else 1),
  ``name``, ``status: "ok"``, ``ok``, ``success``;
- an echo, as postman-echo.com gives it: ``args`` (the query), ``data`` (the
  body: parsed JSON, else the text), ``json``, ``form``, ``headers``,
  ``method``, ``path``, ``url``.

HEAD gets the headers only. Every request is counted (``requests``) and kept
as ``(method, path with query)`` in ``seen``, so a test can compare what a run
reports with what the server served. ``StandIn.start()`` runs it on
127.0.0.1, a free port, in its own thread and event loop; ``ssl=`` serves
HTTPS instead, and ``proxy_url`` is then a CONNECT proxy on 127.0.0.1 that
tunnels every CONNECT, whatever host it names, to the stand-in: an example
that calls ``https://google.com/`` runs with ``--proxy`` and a CA bundle that
trusts the stand-in's certificate, and never leaves the machine (``tunnelled``
lists the ``host:port`` each CONNECT asked for).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl as ssl_module
import threading
from collections.abc import Mapping
from typing import Union

from aiohttp import web

__all__ = ["StandIn", "make_app", "document"]

Json = Union[None, bool, int, float, str, list["Json"], dict[str, "Json"]]

_ITEMS: list[Json] = [{"id": i, "name": f"item {i}"} for i in (1, 2, 3)]


def _object_id(path: str) -> int:
    last = path.rstrip("/").rpartition("/")[2]
    return int(last) if last.isdigit() else 1


def _body(raw: bytes, content_type: str) -> tuple[Json, Json, dict[str, str]]:
    """(data, json, form) of a request body, as an echo service reports them."""
    text = raw.decode("utf-8", "replace")
    if "json" in content_type and raw:
        try:
            parsed: Json = json.loads(text)
        except ValueError:
            return text, None, {}
        return parsed, parsed, {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        from urllib.parse import parse_qsl

        form = dict(parse_qsl(text, keep_blank_values=True))
        return {}, None, form
    return text, None, {}


def document(method: str, path: str, query: Mapping[str, str], url: str, headers: Mapping[str, str],
             raw: bytes) -> dict[str, Json]:
    """The JSON every request is answered with (see the module docstring)."""
    data, parsed, form = _body(raw, headers.get("Content-Type", ""))
    return {
        "status": "ok",
        "ok": True,
        "success": True,
        "id": _object_id(path),
        "name": "item",
        "token": "stand-in-token",
        "access_token": "stand-in-token",
        "refresh_token": "stand-in-refresh",
        "token_type": "bearer",
        "expires_in": 3600,
        "items": _ITEMS,
        "results": _ITEMS,
        "total": len(_ITEMS),
        "count": len(_ITEMS),
        "args": dict(query),
        "data": data,
        "json": parsed,
        "form": dict(form),
        "headers": dict(headers),
        "method": method,
        "path": path,
        "url": url,
    }


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until end of file, then half-close, as a tunnel does."""
    try:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError:
        pass


class _Counter:
    """What the stand-in served; appended from the server's loop, read from the test's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []

    def add(self, method: str, path_qs: str) -> None:
        with self._lock:
            self.seen.append((method, path_qs))

    def snapshot(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.seen)

    def clear(self) -> None:
        with self._lock:
            self.seen.clear()


def make_app(counter: _Counter | None = None) -> web.Application:
    """The stand-in's aiohttp application (not started)."""
    served = counter or _Counter()

    async def answer(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        served.add(request.method, request.path_qs)
        if request.method == "HEAD":
            return web.Response(status=200, content_type="application/json")
        doc = document(request.method, request.path, request.query, str(request.url), request.headers, raw)
        return web.json_response(doc)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


class StandIn:
    """The stand-in served from its own thread on 127.0.0.1; ``url``, ``port``, ``requests``, ``seen``."""

    def __init__(self, ssl: ssl_module.SSLContext | None) -> None:
        self._ssl = ssl
        self._counter = _Counter()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped = asyncio.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="locust-standin", daemon=True)
        self.port = 0
        self.proxy_port = 0
        self.tunnelled: list[str] = []

    @classmethod
    def start(cls, *, ssl: ssl_module.SSLContext | None = None) -> StandIn:
        """Start serving; raises if the server did not come up within 30 s."""
        standin = cls(ssl)
        standin._thread.start()
        if not standin._ready.wait(30):
            raise RuntimeError("the stand-in did not start within 30 s")
        if standin._error is not None:
            raise RuntimeError(f"the stand-in failed to start: {standin._error}")
        return standin

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def seen(self) -> list[tuple[str, str]]:
        """``(method, path with query)`` of every request served so far."""
        return self._counter.snapshot()

    @property
    def requests(self) -> int:
        return len(self.seen)

    def reset(self) -> None:
        """Forget what was served (``seen``, ``tunnelled``)."""
        self._counter.clear()
        self.tunnelled.clear()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        runner = web.AppRunner(make_app(self._counter), access_log=None)
        try:
            await runner.setup()
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
            await web.SockSite(runner, sock, ssl_context=self._ssl).start()
            proxy = await asyncio.start_server(self._tunnel, "127.0.0.1", 0)
            self.proxy_port = int(proxy.sockets[0].getsockname()[1])
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            proxy.close()
            await runner.cleanup()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One proxy connection: a CONNECT to any host is a tunnel to the stand-in; nothing else is served."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            words = head.split(b"\r\n", 1)[0].split()
            if len(words) != 3 or words[0] != b"CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.tunnelled.append(words[1].decode("latin-1"))
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(15)

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
