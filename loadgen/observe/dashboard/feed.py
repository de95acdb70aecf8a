"""The frames the pages follow: a bounded history and a server-sent event stream per page.

The event loop only :meth:`Feed.publish`\\ es: a frame serialised once (orjson),
its chart point kept in a bounded history, a condition notified; it never waits
for a page. Each page's stream runs in the port's request thread, which is the
one that blocks when the page reads slowly. A page that connects gets the whole
history first (its charts start full), then every frame as it comes; a page that
fell behind gets the points it missed and the newest frame, never a queue.

Events: ``history`` (a JSON array of points), ``points`` (missed points),
``frame`` (a whole frame), ``end`` (the run is over or the port is closing; the
page stops listening). Lines starting with ``:`` keep an idle connection open.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Generator

import orjson

from .frames import Frame

__all__ = ["DEFAULT_HISTORY", "Feed", "sse"]

#: Points kept for a page that connects: an hour of one-second intervals.
DEFAULT_HISTORY = 3600
_RETRY = b"retry: 3000\n\n"  # how long a page's EventSource waits before reconnecting


def sse(event: str, data: bytes, ident: int | None = None) -> bytes:
    """One server-sent event; ``data`` is one line of JSON (orjson writes no newlines)."""
    head = f"event: {event}\n" + (f"id: {ident}\n" if ident is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


class Feed:
    """The latest frame and the history of points, shared by every page (thread-safe)."""

    def __init__(self, first: Frame, history: int = DEFAULT_HISTORY) -> None:
        self._cond = threading.Condition()
        self._points: deque[tuple[int, bytes]] = deque(maxlen=history)  # (seq, point JSON)
        self._seq = 0
        self._json = orjson.dumps(first)
        self._event = sse("frame", self._json, 0)
        self._finished = False

    # -- the producer (the event loop, once an interval; the session at the end) --------

    def publish(self, frame: Frame) -> None:
        """Serialise ``frame`` once and wake the pages; O(frame), never waits for a page."""
        body = orjson.dumps(frame)
        # A copy of its exact size: orjson's output holds a 4 KiB buffer however short, so an
        # hour of ~190-byte points kept as they come took 15.1 MB rather than 1.2 MB (tracemalloc).
        point = bytes(memoryview(orjson.dumps(frame.point))) if frame.point is not None else None
        with self._cond:
            self._seq += 1
            if point is not None:
                self._points.append((self._seq, point))
            self._json = body
            self._event = sse("frame", body, self._seq)
            self._cond.notify_all()

    def finish(self, frame: Frame) -> None:
        """The final frame (its point is already in the history); streams end after sending it."""
        body = orjson.dumps(frame)
        with self._cond:
            self._seq += 1
            self._json = body
            self._event = sse("frame", body, self._seq)
            self._finished = True
            self._cond.notify_all()

    # -- the readers (the port's request threads) ------------------------------------

    @property
    def latest(self) -> bytes:
        """The newest frame as JSON."""
        with self._cond:
            return self._json

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._finished

    @property
    def points(self) -> int:
        """How many points the history holds."""
        with self._cond:
            return len(self._points)

    def stream(self, closing: threading.Event, *, poll_s: float = 0.2,
               keepalive_s: float = 15.0) -> Generator[bytes, None, None]:
        """One page's events until the run is over or ``closing`` is set (checked every ``poll_s``)."""
        with self._cond:
            seq, event, finished = self._seq, self._event, self._finished
            history = [p for _, p in self._points]
        yield _RETRY + sse("history", b"[" + b",".join(history) + b"]") + event
        quiet_since = time.monotonic()
        while not finished:
            if closing.is_set():
                yield sse("end", b'"closing"')
                return
            with self._cond:
                if self._seq == seq:
                    self._cond.wait(poll_s)
                if self._seq == seq:
                    chunk = None
                else:
                    missed = self._since(seq)
                    seq, finished = self._seq, self._finished
                    chunk = (sse("points", b"[" + b",".join(missed) + b"]") if missed else b"") + self._event
            now = time.monotonic()
            if chunk is not None:
                quiet_since = now
                yield chunk  # written outside the lock: a slow page blocks its own thread only
            elif now - quiet_since >= keepalive_s:
                quiet_since = now
                yield b": keepalive\n\n"
        yield sse("end", b'"finished"')

    def _since(self, seq: int) -> list[bytes]:
        """The points after ``seq`` and before the newest frame (which carries its own); under the lock.
        From the newest back: a page is rarely more than a frame behind."""
        out = []
        for s, p in reversed(self._points):
            if s <= seq:
                break
            if s < self._seq:
                out.append(p)
        out.reverse()
        return out
