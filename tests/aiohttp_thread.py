"""Test servers on 127.0.0.1 (a free port), each in a thread of its own with its own event loop.

The client under test runs its own loop in the test's thread, so a server there would deadlock it;
a server thread keeps the two loops apart over a real socket.

``ThreadedApp`` serves an aiohttp application; ``ThreadedStreamServer`` serves a bare asyncio
stream handler, for answers aiohttp refuses to write (control characters in a header, say).
Both are context managers and have ``.port``, ``.scheme``, ``.url(path, host)`` and ``.stop()``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from aiohttp import web

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

START_S = 20.0  # generous: the suite runs on a slow, busy, shared machine


class _LoopThread:
    """Runs ``_open`` in a new thread's loop, serves until ``stop``, then runs the closer ``_open`` gave."""

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self.port = 0
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name=type(self).__name__)
        self._thread.start()
        if not self._ready.wait(START_S) or self._error is not None or not self.port:
            raise RuntimeError(f"the {type(self).__name__} test server did not start") from self._error

    async def _open(self) -> Callable[[], Awaitable[None]]:
        """Start serving, set ``self.port``; return what closes the server."""
        raise NotImplementedError

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            close = self._loop.run_until_complete(self._open())
        except BaseException as e:  # handed to the starting thread, which raises
            self._error = e
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        self._loop.run_forever()
        try:
            self._loop.run_until_complete(close())
        finally:
            self._loop.close()

    def url(self, path: str = "", host: str = "127.0.0.1") -> str:
        """``scheme://host:port`` followed by ``path``."""
        return f"{self.scheme}://{host}:{self.port}{path}"

    def stop(self, timeout: float = 20.0) -> None:
        """Stop serving and wait (at most ``timeout`` seconds) for the thread to end; idempotent."""
        if self._thread.is_alive() and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._loop.stop)
            except RuntimeError:  # the loop closed meanwhile
                pass
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ThreadedApp(_LoopThread):
    """An aiohttp application served on 127.0.0.1 from its own thread and event loop.

    ``app``: the application, or a function that builds it (called in the server's loop).
    ``shutdown_timeout``: how long ``stop`` lets unfinished handlers run on (aiohttp's default).
    ``access_log``: False leaves aiohttp's access log off.
    """

    def __init__(self, app: web.Application | Callable[[], web.Application],
                 ssl_context: ssl.SSLContext | None = None, *,
                 shutdown_timeout: float = 60.0, access_log: bool = True) -> None:
        self._app = app
        self._shutdown_timeout = shutdown_timeout
        self._access_log = access_log
        super().__init__(ssl_context)

    async def _open(self) -> Callable[[], Awaitable[None]]:
        app = self._app if isinstance(self._app, web.Application) else self._app()
        # aiohttp takes access_log=None, not False, for "no access log"
        runner = (web.AppRunner(app, shutdown_timeout=self._shutdown_timeout) if self._access_log
                  else web.AppRunner(app, shutdown_timeout=self._shutdown_timeout, access_log=None))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.ssl_context).start()
        self.port = runner.addresses[0][1]
        return runner.cleanup


class ThreadedStreamServer(_LoopThread):
    """A bare ``asyncio.start_server`` on 127.0.0.1, calling ``handler`` per connection."""

    def __init__(self, handler: StreamHandler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        super().__init__(ssl_context)

    async def _open(self) -> Callable[[], Awaitable[None]]:
        server = await asyncio.start_server(self._handler, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = server.sockets[0].getsockname()[1]

        async def close() -> None:
            server.close()
            await server.wait_closed()

        return close
