"""The dashboard's paths on the metrics port: the page, its bundled files, its state and events.

``/`` the page; ``/dashboard/<file>`` its script, styles and icon (a fixed set
read once from the package: any other name is 404, so no path leaves it);
``/api/state`` the newest frame as JSON; ``/api/events`` the server-sent event
stream (:mod:`.feed`). Everything is GET or HEAD. Every reply forbids the page
anything not from this port (Content-Security-Policy) and content sniffing.
"""

from __future__ import annotations

import importlib.resources
import threading
from collections.abc import Generator, Iterator

from ..routes import Reply, Request, text_reply
from .feed import Feed

__all__ = ["ASSETS", "DashboardRoutes", "MAX_STREAMS", "SECURITY_HEADERS"]

#: The bundled files under /dashboard/, and their content types.
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
#: Pages following the run at once; each holds one of the port's threads.
MAX_STREAMS = 32

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
     "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
_NO_STORE = (("Cache-Control", "no-store"),)
_ALLOW = (("Allow", "GET, HEAD"),)


def _read(name: str) -> bytes:
    return importlib.resources.files("loadgen.observe.dashboard").joinpath("assets", name).read_bytes()


class _Stream:
    """A page's event stream as the server iterates it; closing it (always, by the server)
    frees the page's place."""

    def __init__(self, events: Generator[bytes, None, None], release: threading.Semaphore) -> None:
        self._events = events
        self._release: threading.Semaphore | None = release

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            self._events.close()
            release.release()


class DashboardRoutes:
    """The handlers to mount: :meth:`page` at ``/``, :meth:`asset` at ``/dashboard``,
    :meth:`state` at ``/api/state``, :meth:`events` at ``/api/events``."""

    def __init__(self, feed: Feed, *, max_streams: int = MAX_STREAMS) -> None:
        self.feed = feed
        self._page = _read("index.html")
        self._assets = {name: (_read(name), ctype) for name, ctype in ASSETS.items()}
        self._streams = threading.Semaphore(max_streams)

    def page(self, request: Request) -> Reply:
        refused = _refuse(request)
        if refused is not None:
            return refused
        return Reply(200, "text/html; charset=utf-8", self._page, SECURITY_HEADERS + _NO_STORE)

    def asset(self, request: Request) -> Reply:
        refused = _refuse(request)
        if refused is not None:
            return refused
        prefix, _, name = request.path.partition("/dashboard/")
        found = self._assets.get(name) if prefix == "" else None  # an exact name: nothing else is served
        if found is None:
            return text_reply(404, "not found\n", SECURITY_HEADERS)
        body, ctype = found
        return Reply(200, ctype, body, SECURITY_HEADERS + (("Cache-Control", "no-cache"),))

    def state(self, request: Request) -> Reply:
        refused = _refuse(request, exact="/api/state")
        if refused is not None:
            return refused
        return Reply(200, "application/json", self.feed.latest, SECURITY_HEADERS + _NO_STORE)

    def events(self, request: Request) -> Reply:
        refused = _refuse(request, exact="/api/events")
        if refused is not None:
            return refused
        headers = SECURITY_HEADERS + _NO_STORE + (("X-Accel-Buffering", "no"),)
        if request.method == "HEAD":
            return Reply(200, "text/event-stream", b"", headers)
        if not self._streams.acquire(blocking=False):
            return text_reply(503, f"too many pages follow this run (at most {MAX_STREAMS})\n",
                              SECURITY_HEADERS + (("Retry-After", "10"),))
        stream = _Stream(self.feed.stream(request.closing), self._streams)
        return Reply(200, "text/event-stream", stream, headers)


def _refuse(request: Request, exact: str | None = None) -> Reply | None:
    """405 for anything but GET and HEAD; 404 for a path under an exact one."""
    if exact is not None and request.path != exact:
        return text_reply(404, "not found\n", SECURITY_HEADERS)
    if request.method not in ("GET", "HEAD"):
        return text_reply(405, "method not allowed\n", SECURITY_HEADERS + _ALLOW)
    return None
