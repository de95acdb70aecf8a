"""What every user's client shares during a run: the recorder, timeouts, how connections are opened.

Timeouts are enforced by one sweep every 50 ms over the live connections,
not by a timer per request: arming and cancelling a timer would cost more per
request than the rest of the client's bookkeeping.
"""

from __future__ import annotations

import asyncio
import ssl
from time import perf_counter_ns

from ..engine.recorder import ERR_CONNECT, ERR_TIMEOUT, Recorder
from .connection import BareConnection, Connection
from .limits import DEFAULT_LIMITS, Limits
from .origin import Origin

__all__ = ["Session", "MAX_REQUEST_ERRORS", "OTHER_REQUEST_ERRORS"]

_SWEEP_S = 0.05
#: Distinct messages kept in :attr:`Session.request_errors`; later ones are counted under one key.
MAX_REQUEST_ERRORS = 20
OTHER_REQUEST_ERRORS = f"other requests that could not be sent (messages past the first {MAX_REQUEST_ERRORS})"


class Session:
    """What every user's client shares during a run."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        verify_tls: bool = True,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        """``limits``: the response size limits every connection enforces (see :mod:`.limits`)."""
        self.recorder = recorder
        self.limits = limits
        self.timeout_ns = int(timeout_s * 1e9)
        self.connect_timeout_s = connect_timeout_s
        self.connections: set[Connection] = set()
        #: Requests that could not be sent (see the module docstring): message -> count, bounded.
        self.request_errors: dict[str, int] = {}
        #: Requests sent a second time after a kept-alive connection failed under them (Client._exchange).
        self.retried = 0
        self._verify_tls = verify_tls
        self._ssl: ssl.SSLContext | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start enforcing timeouts (call inside the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._sweeper = self._loop.call_later(_SWEEP_S, self._sweep)

    def close(self) -> None:
        """Stop the sweep and drop every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
            conn.close()

    def note_request_error(self, message: str) -> None:
        """Count a request that could not be sent, by message (at most MAX_REQUEST_ERRORS kept)."""
        errs = self.request_errors
        if message not in errs and len(errs) >= MAX_REQUEST_ERRORS:
            message = OTHER_REQUEST_ERRORS
        errs[message] = errs.get(message, 0) + 1

    def _sweep(self) -> None:
        now = perf_counter_ns()
        for conn in list(self.connections):
            d = conn.deadline_ns
            if d and now >= d:
                conn.fail(ERR_TIMEOUT)
        self._sweeper = self._loop.call_later(_SWEEP_S, self._sweep)  # type: ignore[union-attr]

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context()
            if not self._verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    async def connect(self, origin: Origin, *, bare: bool = False) -> Connection | int:
        """A new connection, or the error code of why there is none.

        ``bare``: a :class:`BareConnection`, which does not keep headers or body.
        A cancelled connect (the run ended) raises CancelledError and leaves no
        socket behind. ``asyncio.timeout``, not ``wait_for``: in Python 3.11
        ``wait_for`` swallows a cancellation that arrives as the connect completes.
        """
        loop = asyncio.get_running_loop()
        cls = BareConnection if bare else Connection
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(
                    lambda: cls(self.connections, self.limits),
                    origin.host,
                    origin.port,
                    ssl=self.ssl_context if origin.tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError):
            return ERR_CONNECT
        return conn  # type: ignore[return-value]

