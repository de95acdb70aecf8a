"""What every user's client shares during a run: the recorder, timeouts, how connections are opened.

Timeouts are enforced by one sweep every 50 ms over the live connections,
not by a timer per request: arming and cancelling a timer would cost more per
request than the rest of the client's bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from time import perf_counter_ns

from ..engine.recorder import ERR_TIMEOUT, Recorder
from ..errors import UsageError
from .connection import BareConnection, Connection
from .connector import Connector, Route
from .http2 import Http2Connection, InFlight
from .limits import DEFAULT_LIMITS, Limits
from .origin import Origin
from .proxy import Proxies
from .redirects import DEFAULT_MAX_REDIRECTS
from .tls import TlsOptions

__all__ = ["Session", "check_http2", "HTTP2_MODES", "MAX_REQUEST_ERRORS", "OTHER_REQUEST_ERRORS"]

HTTP2_MODES = ("off", "h2", "h2c")
_ALPN_H1 = ("http/1.1",)
_ALPN_H2 = ("h2", "http/1.1")

_SWEEP_S = 0.05
#: Distinct messages kept in :attr:`Session.request_errors`; later ones are counted under one key.
MAX_REQUEST_ERRORS = 20
OTHER_REQUEST_ERRORS = f"other requests that could not be sent (messages past the first {MAX_REQUEST_ERRORS})"


def check_http2(value: str | bool) -> str:
    """``"off"``, ``"h2"`` (offered by ALPN over TLS) or ``"h2c"`` (also prior knowledge on http://); True is "h2"."""
    if value is True:
        return "h2"
    if value is False:
        return "off"
    if value not in HTTP2_MODES:
        raise UsageError(f"http2 must be one of {', '.join(HTTP2_MODES)} (or True/False), not {value!r}")
    return value  # type: ignore[return-value]


class Session:
    """What every user's client shares during a run: recorder, limits, timeouts, how connections open.

    ``tls``, ``proxies``, ``resolve`` and ``connect_timeout_s`` make the
    :class:`~loadgen.http.connector.Connector`; ``http2`` is each client's
    default (see :class:`~loadgen.http.client.Client`); ``max_redirects`` the
    calls' default limit (0: redirects are answers, not followed).
    """

    def __init__(
        self,
        recorder: Recorder,
        *,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        limits: Limits = DEFAULT_LIMITS,
        tls: TlsOptions = TlsOptions(),
        proxies: Proxies | None = None,
        resolve: Mapping[tuple[str, int], str] | None = None,
        http2: str | bool = "off",
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
    ) -> None:
        """``limits``: the response size limits every connection enforces (see :mod:`.limits`)."""
        self.recorder = recorder
        self.limits = limits
        self.timeout_ns = int(timeout_s * 1e9)
        self.connect_timeout_s = connect_timeout_s
        self.tls = tls
        self.proxies = proxies if proxies is not None else Proxies.from_env({})
        self.http2 = check_http2(http2)
        self.max_redirects = max_redirects
        self.connector = Connector(tls=tls, proxies=self.proxies, resolve=resolve, connect_timeout_s=connect_timeout_s)
        #: Open connections and in-flight HTTP/2 streams: what the timeout sweep looks at.
        self.connections: set[InFlight] = set()
        #: Requests that could not be sent (see the module docstring): message -> count, bounded.
        self.request_errors: dict[str, int] = {}
        #: Requests sent a second time after a kept-alive connection failed under them (Client._exchange).
        self.retried = 0
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

    def route(self, origin: Origin) -> Route:
        """How requests to ``origin`` travel: directly, forwarded by a proxy, or tunnelled through one."""
        return self.connector.route(origin)

    async def connect(self, origin: Origin, *, bare: bool = False, http2: str = "off",
                      tls: TlsOptions | None = None) -> Connection | Http2Connection | int:
        """A new connection, or the error code of why there is none (``connect``, ``tls``, ``proxy``).

        ``bare``: a :class:`BareConnection`, which does not keep headers or body.
        ``http2``: ``"h2"`` offers h2 by ALPN on https and takes what the server
        picks; ``"h2c"`` also speaks HTTP/2 from the first byte on http:// (prior
        knowledge), except through a forwarding proxy. ``tls``: this call's own TLS options (``verify=``, ``cert=``).
        A cancelled connect (the run ended) raises CancelledError and leaves no socket behind.
        """
        registry, limits, scheme = self.connections, self.limits, origin.scheme
        cls = BareConnection if bare else Connection
        # Prior knowledge speaks HTTP/2 from the first byte: not to a proxy that forwards
        # HTTP/1.1 requests (it would read the preface as a request): that route stays HTTP/1.1.
        prior = http2 == "h2c" and not origin.tls and not (self.proxies and self.route(origin).forward)

        def protocol(alpn: str | None) -> asyncio.Protocol:
            if alpn == "h2" or prior:
                return Http2Connection(registry, limits, scheme=scheme)
            return cls(registry, limits)

        alpn = _ALPN_H2 if http2 != "off" and origin.tls else _ALPN_H1
        return await self.connector.open(origin, protocol, alpn=alpn, tls=tls)  # type: ignore[return-value]
