"""How a connection to an origin is opened: directly, at a ``--resolve`` address, or through a proxy.

:meth:`Connector.open` connects over TCP, to the origin or to the address
``--resolve HOST:PORT:ADDR`` gives for it (TLS still checks the name, and the
request's Host stays the name, as in curl), or to a proxy: plain http is sent
to the proxy itself (the client then writes the absolute-form target and
``Proxy-Authorization``, see :class:`Route`), https goes through a ``CONNECT``
tunnel. A ``--resolve`` entry for the proxy's own host and port applies to the
proxy; the target named in ``CONNECT`` is resolved by the proxy.

The protocol that speaks HTTP is built only after TLS has picked the ALPN
protocol (``h2`` or ``http/1.1``), yet before any byte is delivered: an HTTP/2
server sends its SETTINGS right after the handshake. A small stand-in protocol
takes the transport first and hands it over (:class:`_Handover`).

Errors are returned as codes, as on the rest of the request path: ``connect``
(refused, name not resolved, or the whole open taking longer than the connect
timeout), ``tls`` (handshake or certificate verification failed) and ``proxy``
(the tunnel refused or failed). A cancelled open raises CancelledError and
leaves no socket behind.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httptools

from ..engine.recorder import ERR_CONNECT, ERR_PROXY, ERR_TLS
from ..errors import UsageError
from .origin import Origin
from .proxy import Proxies, Proxy
from .tls import DEFAULT_ALPN, TlsOptions

__all__ = ["Connector", "Route", "parse_resolve"]

#: Largest answer head a proxy may send to CONNECT before the tunnel counts as failed.
_MAX_ANSWER = 64 << 10
#: Routes remembered per Connector; past it the cache starts over.
_MAX_ROUTES = 4096

ProtocolFactory = Callable[[str | None], asyncio.Protocol]


@dataclass(frozen=True)
class Route:
    """How requests to an origin travel."""

    proxy: Proxy | None
    #: Plain http through the proxy: the request target is in absolute form
    #: (``GET http://host:port/path HTTP/1.1``) and ``proxy_line`` goes with the headers.
    forward: bool
    #: ``Proxy-Authorization: Basic ...\r\n`` when forwarding through a proxy with credentials, else b""
    #: (kept out of repr: it carries the credentials).
    proxy_line: bytes = field(repr=False)

    @property
    def proxy_authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value a forwarded request carries (None: none), for building headers."""
        return self.proxy.authorization if self.forward and self.proxy is not None else None


_DIRECT = Route(None, False, b"")


def parse_resolve(spec: str) -> tuple[tuple[str, int], str]:
    """curl's ``--resolve HOST:PORT:ADDRESS`` as ``((host, port), address)``; UsageError if malformed.

    ``ADDRESS`` is one IP address (an IPv6 one in brackets or not); ``HOST`` may be
    a bracketed IPv6 address.
    """
    usage = f"--resolve {spec!r} is not HOST:PORT:ADDRESS (for example api.example.com:443:127.0.0.1)"
    text = spec.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageError(usage)
        rest = rest[1:]
    else:
        host, sep, rest = text.partition(":")
        if not sep:
            raise UsageError(usage)
    port_text, sep, address = rest.partition(":")
    if not host or not sep or not address or any(c.isspace() or c in "/@" for c in host):
        raise UsageError(usage)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"--resolve {spec!r} has an invalid port {port_text!r}")
    address = address.strip()
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise UsageError(f"--resolve {spec!r} gives {address!r}, which is not one IP address") from None
    return (host.lower(), int(port_text)), address


class Connector:
    """Opens connections: TLS options, proxies, ``--resolve`` addresses and the connect timeout."""

    def __init__(
        self,
        *,
        tls: TlsOptions = TlsOptions(),
        proxies: Proxies | None = None,
        resolve: Mapping[tuple[str, int], str] | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        """``tls``: for every origin unless :meth:`open` is given others; ``resolve``:
        (host, port) -> address, as :func:`parse_resolve` gives them."""
        self.tls = tls
        self.proxies = proxies if proxies else None  # None: no proxy at all, the fast path
        self.resolve = {(host.lower(), port): address for (host, port), address in (resolve or {}).items()}
        self.connect_timeout_s = connect_timeout_s
        self._routes: dict[str, Route] = {}

    def route(self, origin: Origin) -> Route:
        """How requests to ``origin`` travel (cached per origin)."""
        route = self._routes.get(origin.key)
        if route is not None:
            return route
        proxy = self.proxies.for_origin(origin.scheme, origin.host, origin.port) if self.proxies else None
        if proxy is None:
            route = _DIRECT
        elif origin.tls:
            route = Route(proxy, False, b"")
        else:
            line = b"" if proxy.authorization is None else b"Proxy-Authorization: %s\r\n" % proxy.authorization.encode()
            route = Route(proxy, True, line)
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        self._routes[origin.key] = route
        return route

    async def open(
        self,
        origin: Origin,
        factory: ProtocolFactory,
        *,
        alpn: tuple[str, ...] = DEFAULT_ALPN,
        tls: TlsOptions | None = None,
    ) -> asyncio.Protocol | int:
        """A connection to ``origin`` and its protocol ``factory(negotiated ALPN or None)``, or an error code.

        ``alpn``: what TLS offers; ``tls``: options for this connection instead of the
        connector's. TLS options whose files cannot be used raise :class:`UsageError`
        (call :meth:`TlsOptions.validate` beforehand to find out at start).
        """
        route = self.route(origin)
        ctx = (tls or self.tls).context(alpn) if origin.tls else None
        loop = asyncio.get_running_loop()
        proxy = route.proxy
        transport: asyncio.Transport | None = None
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                if proxy is None or ctx is None:  # direct, or plain http forwarded to the proxy
                    host, port = (origin.host, origin.port) if proxy is None else (proxy.host, proxy.port)
                    host = self.resolve.get((host, port), host)
                    if ctx is None:
                        _, protocol = await loop.create_connection(lambda: factory(None), host, port)
                        return protocol
                    _, handover = await loop.create_connection(
                        lambda: _Handover(factory), host, port, ssl=ctx, server_hostname=origin.host
                    )
                    return handover.protocol()
                answered: asyncio.Future[int] = loop.create_future()
                request = _connect_request(origin, proxy)
                transport, _ = await loop.create_connection(
                    lambda: _Tunnel(request, answered), self.resolve.get((proxy.host, proxy.port), proxy.host),
                    proxy.port,
                )
                status = await answered
                if not 200 <= status < 300:
                    transport.abort()
                    return ERR_PROXY
                handover = _Handover(factory)
                tls_transport = await loop.start_tls(transport, handover, ctx, server_hostname=origin.host)
                handover.connection_made(tls_transport)  # type: ignore[arg-type]
                return handover.protocol()
        except ssl.SSLError:  # before OSError: SSLError is one
            _abort(transport)
            return ERR_TLS
        except (OSError, TimeoutError):
            _abort(transport)
            return ERR_CONNECT
        except BaseException:
            _abort(transport)
            raise


def _abort(transport: asyncio.Transport | None) -> None:
    if transport is not None:
        transport.abort()


def _connect_request(origin: Origin, proxy: Proxy) -> bytes:
    """``CONNECT host:port`` with Host and the proxy's credentials."""
    # host_header is the ASCII host, bracketed if IPv6, with the port only when not the default.
    authority = f"{origin.host_header.removesuffix(f':{origin.port}')}:{origin.port}"
    auth = "" if proxy.authorization is None else f"Proxy-Authorization: {proxy.authorization}\r\n"
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n".encode("latin-1")


class _Tunnel(asyncio.Protocol):
    """Sends CONNECT and reads the head of the proxy's answer; TLS takes the transport over after."""

    def __init__(self, request: bytes, answered: asyncio.Future[int]) -> None:
        self._request = request
        self._answered = answered
        self._parser = httptools.HttpResponseParser(self)
        self._size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._answered.done():
            return  # the answer's body, if a refusal has one: the connection is being dropped
        self._size += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._answer(ERR_PROXY)
        if self._size > _MAX_ANSWER:
            self._answer(ERR_PROXY)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status >= 200:  # 1xx: interim, the real answer follows
            self._answer(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._answer(ERR_PROXY)  # closed before answering: the proxy failed the tunnel

    def _answer(self, code: int) -> None:
        if not self._answered.done():
            self._answered.set_result(code)


class _NotLost:
    """Marks that the connection has not been lost."""


_NOT_LOST = _NotLost()


class _Handover(asyncio.Protocol):
    """Holds a TLS transport until it can build the real protocol for the negotiated ALPN, then hands it over.

    On a connection made by ``create_connection``, ``connection_made`` runs when
    the handshake completes, before any application byte is read. After
    ``start_tls`` (a tunnel) the caller calls it once ``start_tls`` returns, and
    what arrived meanwhile is kept here and passed on in order: the server's
    first bytes may come with the handshake's last flight (TLS 1.2), and
    asyncio's loop reads them before ``start_tls`` returns (uvloop after).
    """

    def __init__(self, factory: ProtocolFactory) -> None:
        self._factory = factory
        self._real: asyncio.Protocol | None = None
        self._error: Exception | None = None
        self._early: list[bytes] = []
        self._eof = False
        self._lost: Exception | None | _NotLost = _NOT_LOST

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        try:
            real = self._factory(alpn)
        except Exception as exc:  # raised again by protocol(), in the caller's task
            self._error = exc
            transport.abort()  # type: ignore[attr-defined]
            return
        transport.set_protocol(real)
        self._real = real
        real.connection_made(transport)
        for data in self._early:
            real.data_received(data)
        self._early.clear()
        if self._eof and not real.eof_received():
            transport.close()
        if not isinstance(self._lost, _NotLost):
            real.connection_lost(self._lost)

    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def eof_received(self) -> bool:
        self._eof = True
        return True  # the real protocol decides, once it has the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc

    def protocol(self) -> asyncio.Protocol:
        """The real protocol, or the factory's exception raised again."""
        if self._error is not None:
            raise self._error
        if self._real is None:
            raise ConnectionResetError("the connection closed before it was made")
        return self._real
