"""A run's side of :mod:`loadgen.events`: the scenario's listeners installed for the run,
``test_start`` and ``test_stop`` fired, and each user's client reporting its requests
to ``events.request`` listeners when there are any.

A user created while ``request`` has no listener gets the plain :class:`Client`:
the per-request path is exactly what it was, not even one check. Which client a
user gets is decided when it is created, so listeners added in ``init`` or
``test_start`` (or at import) reach every user; one added by a task reaches the
users created after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .. import events
from ..config import RunConfig
from ..control import TaskControl
from ..events import Environment, RequestFailed
from ..http.client import Client, Session
from ..http.response import Response
from ..scenario import Scenario

__all__ = ["RunHooks", "ReportingClient"]

Report = Callable[[BaseException], None]


class ReportingClient(Client):
    """A user's client while ``events.request`` has listeners: each call is reported after it returns."""

    def __init__(self, session: Session, base_url: str | None, *, http2: str | None, report: Report) -> None:
        super().__init__(session, base_url, http2=http2)
        self._report = report

    async def request(self, method: str, url: str, **kw: Any) -> Response:  # type: ignore[override]
        started = time.time()
        resp = await super().request(method, url, **kw)
        if events.request.listeners:
            name = kw.get("name") or (url.partition("?")[0] if url[:1] == "/" else urlsplit(url).path or "/")
            try:
                length = len(resp.content)
            except ValueError:  # a body that cannot be decoded: already counted as its own error
                length = 0
            failed = None if resp.ok else RequestFailed(resp.error or f"HTTP {resp.status}")
            full = f"{self.base_url}{resp.url}" if resp.url[:1] == "/" and self.base_url else resp.url
            await events.notify(
                events.request, self._report, request_type=method.upper(), name=name,
                response_time=resp.elapsed_ms, response_length=length, response=resp, context={},
                exception=failed, start_time=started, url=full,
            )
        return resp


class RunHooks:
    """The scenario's hook listeners for one run: :meth:`start`, :meth:`stop`, then :meth:`close`."""

    def __init__(self, scenario: Scenario, config: RunConfig, host: str | None, report: Report,
                 warn: Callable[[str], None]) -> None:
        self._listeners = scenario.listeners
        self._report = report
        self._warn = warn
        self._saved: events.Snapshot | None = None
        self.environment = Environment(host, MappingProxyType({**scenario.options, **config.to_json()}))

    def client(self, session: Session, host: str | None, http2: str | bool | None) -> Client:
        """A new user's client: one that reports its requests only while someone listens."""
        if events.request.listeners:
            return ReportingClient(session, host, http2=http2, report=self._report)  # type: ignore[arg-type]
        return Client(session, host, http2=http2)  # type: ignore[arg-type]

    async def start(self, stopped: asyncio.Event) -> None:
        """Install the listeners and fire ``test_start``; a stop (Ctrl-C) while it runs cuts it short."""
        self._saved = events.install(self._listeners)
        if not events.test_start.listeners:
            return
        firing = asyncio.ensure_future(events.notify(events.test_start, self._report, environment=self.environment))
        waiting = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait({firing, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            if not firing.done():
                firing.cancel()
                self._warn("the run was stopped while its events.test_start listeners ran")
            elif not firing.cancelled() and firing.exception() is not None:
                self._report(firing.exception())  # type: ignore[arg-type]  # a control exception, out of place here

    async def stop(self, timeout_s: float) -> None:
        """Fire ``test_stop``, waiting at most ``timeout_s`` for ``async`` listeners."""
        if not events.test_stop.listeners:
            return
        try:
            await asyncio.wait_for(events.notify(events.test_stop, self._report, environment=self.environment),
                                   timeout_s)
        except asyncio.TimeoutError:
            self._warn(f"events.test_stop listeners did not finish within {timeout_s:g}s and were cancelled")
        except TaskControl as exc:  # StopUser and the like mean nothing once the users stopped
            self._report(exc)

    def close(self) -> None:
        """Take the scenario's listeners off the hooks again."""
        if self._saved is not None:
            events.restore(self._saved)
            self._saved = None
