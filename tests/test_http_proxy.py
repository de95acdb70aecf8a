"""Proxies (loadgen/http/proxy.py) and connections through them (connector.py), against real tinyproxy.

The environment is read as requests reads it (upper and lower case, ALL_PROXY,
NO_PROXY by name, suffix, port and CIDR block, --proxy for both schemes);
credentials never show in a repr or a message. Plain http is forwarded with
the absolute-form target, https goes through CONNECT, NO_PROXY goes around
the proxy, a proxy's refusal is ``proxy`` and a proxy that is down ``connect``;
tinyproxy's log shows what it was asked.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.engine.recorder import ERR_CONNECT, ERR_PROXY
from loadgen.errors import UsageError
from loadgen.http.connection import Connection
from loadgen.http.connector import Connector, Route
from loadgen.http.origin import Origin
from loadgen.http.proxy import NoProxy, Proxies, Proxy
from loadgen.http.tls import TlsOptions
from servers_tls import Nginx, Pki, Tinyproxy, free_port, make_pki
from test_http_tls import LOOPS, WAIT_S, FirstBytes, fetch, get, run

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=sorted(LOOPS))
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the environment, as requests reads it ------------------------------------------------


def shown(proxies: Proxies, scheme: str, host: str = "example.com", port: int | None = None) -> str | None:
    """The proxy ``proxies`` picks for an origin, as its masked URL (None: direct)."""
    proxy = proxies.for_origin(scheme, host, port or (443 if scheme == "https" else 80))
    return None if proxy is None else proxy.shown


def test_http_and_https_proxies_by_scheme() -> None:
    proxies = Proxies.from_env({"HTTP_PROXY": "http://p1:3128", "HTTPS_PROXY": "http://p2:3129"})
    assert shown(proxies, "http") == "http://p1:3128"
    assert shown(proxies, "https") == "http://p2:3129"
    only_http = Proxies.from_env({"http_proxy": "http://p1:3128"})
    assert shown(only_http, "http") == "http://p1:3128" and shown(only_http, "https") is None
    assert only_http


def test_lower_case_wins_and_an_empty_one_unsets() -> None:
    env = {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"}
    assert shown(Proxies.from_env(env), "http") == "http://lower:2"
    unset = Proxies.from_env({"HTTP_PROXY": "http://upper:1", "http_proxy": ""})
    assert shown(unset, "http") is None and not unset
    # An empty upper-case one changes nothing.
    assert shown(Proxies.from_env({"HTTPS_PROXY": "", "https_proxy": "http://p:1"}), "https") == "http://p:1"


def test_all_proxy_covers_what_is_not_set() -> None:
    env = {"ALL_PROXY": "http://every:8080", "HTTPS_PROXY": "http://secure:8443"}
    proxies = Proxies.from_env(env)
    assert shown(proxies, "http") == "http://every:8080" and shown(proxies, "https") == "http://secure:8443"
    # An ALL_PROXY that is never used (both schemes set) is not even read: a SOCKS one there is no error.
    both = Proxies.from_env({"all_proxy": "socks5://s:1080", "http_proxy": "http://a:1", "https_proxy": "http://b:2"})
    assert shown(both, "http") == "http://a:1"


def test_http_proxy_is_ignored_in_a_cgi_script() -> None:
    """httpoxy: in CGI, HTTP_PROXY may come from a request's Proxy header (urllib ignores it; http_proxy stays)."""
    assert shown(Proxies.from_env({"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1"}), "http") is None
    assert shown(Proxies.from_env({"REQUEST_METHOD": "GET", "http_proxy": "http://ok:1"}), "http") == "http://ok:1"


def test_explicit_proxy_serves_both_schemes_and_no_proxy_still_applies() -> None:
    env = {"HTTP_PROXY": "http://env:1", "NO_PROXY": "internal.test"}
    proxies = Proxies.from_env(env, explicit="http://cli:3128")
    assert shown(proxies, "http") == "http://cli:3128" and shown(proxies, "https") == "http://cli:3128"
    assert shown(proxies, "https", "api.internal.test") is None
    # --proxy "" means no proxy at all (curl), whatever the environment says.
    assert not Proxies.from_env(env, explicit="")
    assert not Proxies.from_env({})


def test_proxy_url_forms() -> None:
    bare = Proxy.parse("proxy.test:3128", "HTTP_PROXY")  # no scheme: http, as requests
    assert (bare.scheme, bare.host, bare.port, bare.authorization) == ("http", "proxy.test", 3128, None)
    assert Proxy.parse("http://proxy.test", "HTTP_PROXY").port == 80
    assert Proxy.parse("http://[::1]:3128/", "HTTP_PROXY").host == "::1"
    # Credentials are percent-decoded, then sent as Basic.
    p = Proxy.parse("http://us%20er:p%40ss%3Aw@proxy.test:3128", "HTTPS_PROXY")
    assert p.authorization == "Basic " + base64.b64encode(b"us er:p@ss:w").decode()
    token = Proxy.parse("http://token@proxy.test:1", "X")  # a user alone: an empty password, as requests
    assert token.authorization == "Basic " + base64.b64encode(b"token:").decode()


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypassed"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),  # a label boundary, unlike requests' endswith
        (".example.com", "api.example.com", 443, True),
        (".example.com", "example.com", 443, True),  # urllib strips the leading dot
        ("EXAMPLE.com", "example.com", 443, True),
        (" a.test , example.com ", "example.com", 443, True),
        ("example.com:8443", "example.com", 8443, True),
        ("example.com:8443", "example.com", 443, False),
        ("*", "anything.test", 1, True),
        ("127.0.0.0/8", "127.0.0.1", 80, True),
        ("127.0.0.0/8", "10.0.0.1", 80, False),
        ("10.0.0.0/8", "10.200.3.4", 80, True),
        ("10.1.2.3", "10.1.2.3", 80, True),
        ("10.1.2.3", "10.1.2.4", 80, False),
        ("10.1.2.3:8080", "10.1.2.3", 8080, True),
        ("10.1.2.3:8080", "10.1.2.3", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("fd00::/8", "fd12::1", 80, True),
        ("fd00::/8", "127.0.0.1", 80, False),
        ("localhost", "127.0.0.1", 80, False),  # names are not resolved
        ("", "example.com", 443, False),
    ],
)
def test_no_proxy_forms(no_proxy: str, host: str, port: int, bypassed: bool) -> None:
    assert NoProxy(no_proxy).covers(host, port) is bypassed
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://p:1", "no_proxy": no_proxy})
    assert (proxies.for_origin("https", host, port) is None) is bypassed


def test_routes_are_cached_per_origin() -> None:
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://p:1"})
    first = proxies.for_origin("https", "a.test", 443)
    assert first is not None and proxies.for_origin("https", "a.test", 443) is first
    connector = Connector(proxies=proxies)
    origin = Origin("https://a.test/")
    assert connector.route(origin) is connector.route(Origin("https://a.test:443/x"))
    assert connector.route(origin) == Route(first, False, b"")
    assert Connector(proxies=Proxies.from_env({})).proxies is None  # no proxy at all: the fast path


def test_credentials_never_show() -> None:
    env = {"HTTP_PROXY": "http://bob:s3cret@proxy.test:3128"}
    proxies = Proxies.from_env(env)
    proxy = proxies.for_origin("http", "example.com", 80)
    assert proxy is not None and proxy.shown == "http://***@proxy.test:3128"
    secret_b64 = base64.b64encode(b"bob:s3cret").decode()
    route = Connector(proxies=proxies).route(Origin("http://example.com/"))
    assert route.proxy_line == f"Proxy-Authorization: Basic {secret_b64}\r\n".encode()
    assert route.proxy_authorization == f"Basic {secret_b64}"
    # A tunnel carries the credentials in CONNECT, not in the requests inside it.
    tunnelled = Connector(proxies=Proxies.from_env({"HTTPS_PROXY": env["HTTP_PROXY"]}))
    tunnel = tunnelled.route(Origin("https://example.com/"))
    assert tunnel.proxy_line == b"" and tunnel.proxy_authorization is None and tunnel.proxy == proxy
    for text in (repr(proxy), repr(proxies), repr(route), str(proxy)):
        assert "s3cret" not in text and secret_b64 not in text and "***" in text


@pytest.mark.parametrize(
    ("env", "explicit", "message"),
    [
        ({"HTTPS_PROXY": "http://bob:s3cret@proxy.test:99999"}, None,
         "the proxy URL 'http://***@proxy.test:99999' in HTTPS_PROXY has an invalid host or port"),
        ({"https_proxy": "http://bob:s3cret@proxy.test:port"}, None,
         "the proxy URL 'http://***@proxy.test:port' in https_proxy has an invalid host or port"),
        ({"ALL_PROXY": "socks5://bob:s3cret@proxy.test:1080"}, None,
         "the proxy URL 'socks5://***@proxy.test:1080' in ALL_PROXY uses socks5://, "
         "and loadgen supports only http:// proxies"),
        ({"HTTP_PROXY": "https://bob:s3cret@proxy.test"}, None,
         "the proxy URL 'https://***@proxy.test' in HTTP_PROXY uses https://, "
         "and loadgen supports only http:// proxies"),
        ({"HTTP_PROXY": "http://bob:s3cret@:3128"}, None, "the proxy URL 'http://***@:3128' in HTTP_PROXY has no host"),
        ({"HTTP_PROXY": "http://bob:s3cret@proxy test:3128"}, None,
         "the proxy URL 'http://***@proxy test:3128' in HTTP_PROXY contains a space or a control character"),
        ({}, "http://bob:s3cret@[::1:3128",
         "the proxy URL 'http://***@[::1:3128' in --proxy has an invalid host or port"),
        ({"NO_PROXY": "10.0.0.0/33"}, None, "NO_PROXY entry '10.0.0.0/33' is not a valid address block"),
        ({"no_proxy": "example.com:http"}, None, "no_proxy entry 'example.com:http' has an invalid port"),
        ({"NO_PROXY": "[::1"}, None, "NO_PROXY entry '[::1' is not [IPv6] or [IPv6]:PORT"),
    ],
)
def test_every_error_is_one_sentence_naming_the_variable(env: dict[str, str], explicit: str | None,
                                                         message: str) -> None:
    with pytest.raises(UsageError) as err:
        Proxies.from_env(env, explicit)
    assert str(err.value) == message
    assert "s3cret" not in str(err.value) and "bob" not in str(err.value)


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://p:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    proxies = Proxies.from_env(os.environ)
    assert shown(proxies, "https") == "http://p:3128" and shown(proxies, "https", "localhost") is None


# -- through a real proxy ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


TLS, H2, PLAIN = range(3)


@pytest.fixture(scope="module")
def nginx(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    cert = f"ssl_certificate {pki.server_cert}; ssl_certificate_key {pki.server_key};"
    seen = 'location / { return 200 "$host $ssl_server_name"; }'
    servers = [
        f"server {{ listen 127.0.0.1:{{port}} ssl; {cert} {seen} }}",
        f"server {{ listen 127.0.0.1:{{port}} ssl http2; ssl_protocols TLSv1.2; {cert} {seen} }}",
        f"server {{ listen 127.0.0.1:{{port}}; {seen} }}",
    ]
    server = Nginx(tmp_path_factory.mktemp("nginx"), servers)
    yield server
    server.stop()


@pytest.fixture
def proxy_dir() -> Iterator[Path]:
    """A directory for tinyproxy outside pytest's tmp_path: run as root, tinyproxy drops to nobody,
    who cannot pass tmp_path's private parents to write its log."""
    d = Path(tempfile.mkdtemp(prefix="loadgen-tinyproxy-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tinyproxy(proxy_dir: Path) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(proxy_dir / "plain")
    yield proxy
    proxy.stop()


@pytest.fixture
def tinyproxy_auth(proxy_dir: Path) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(proxy_dir / "auth", auth=("loader", "pw-42"))
    yield proxy
    proxy.stop()


def with_credentials(proxy: Tinyproxy, user: str, password: str) -> str:
    return f"http://{user}:{password}@127.0.0.1:{proxy.port}"


async def forward(connector: Connector, url: str) -> tuple[int, bytes] | int:
    """A plain-http GET as the client sends it through a forwarding proxy: absolute-form target, proxy line."""
    origin = Origin(url)
    route = connector.route(origin)
    assert route.forward
    registry: set[Connection] = set()
    conn = await connector.open(origin, lambda alpn: Connection(registry))
    if isinstance(conn, int):
        return conn
    assert isinstance(conn, Connection)
    try:
        return await fetch(conn, origin.host_header, url, route.proxy_line)
    finally:
        conn.close()


def test_plain_http_is_forwarded_with_the_absolute_form(nginx: Nginx, tinyproxy: Tinyproxy) -> None:
    url = f"http://127.0.0.1:{nginx.ports[PLAIN]}/forwarded"
    connector = Connector(proxies=Proxies.from_env({"HTTP_PROXY": tinyproxy.url}))
    assert run(forward(connector, url)) == (200, b"127.0.0.1 ")
    assert f"GET {url} HTTP/1.1" in tinyproxy.log()
    assert any(" GET /forwarded " in line for line in nginx.log())


def test_https_goes_through_a_connect_tunnel(nginx: Nginx, pki: Pki, tinyproxy: Tinyproxy, loop_kind: str) -> None:
    port = nginx.ports[TLS]
    connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)),
                          proxies=Proxies.from_env({"HTTPS_PROXY": tinyproxy.url}))
    route = connector.route(Origin(f"https://localhost:{port}/"))
    assert route.proxy is not None and not route.forward and route.proxy_line == b""
    # TLS end to end through the tunnel: nginx saw the name as SNI and Host, the certificate was verified.
    assert run(get(connector, f"https://localhost:{port}/tunnelled"), loop_kind) == (200, b"localhost localhost")
    assert f"CONNECT localhost:{port} HTTP/1.1" in tinyproxy.log()


def test_h2_through_a_tunnel_gets_the_servers_first_bytes(nginx: Nginx, pki: Pki, tinyproxy: Tinyproxy,
                                                          loop_kind: str) -> None:
    """After ``start_tls`` over a tunnel the server's SETTINGS may arrive before the connector holds the
    new transport (TLS 1.2 sends it with the Finished): it is kept and handed to the h2 protocol first."""
    connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)), proxies=Proxies.from_env({}, tinyproxy.url))

    async def main() -> None:
        for _ in range(3):
            protocol = await connector.open(Origin(f"https://localhost:{nginx.ports[H2]}/"), FirstBytes,
                                            alpn=("h2", "http/1.1"))
            assert isinstance(protocol, FirstBytes) and protocol.alpn == "h2"
            async with asyncio.timeout(WAIT_S):
                first = await protocol.first
            assert protocol.events[:2] == ["made", "data"] and first[3] == 0x4  # a SETTINGS frame
            assert protocol.transport is not None
            protocol.transport.close()

    run(main(), loop_kind)


class CoalescingProxy:
    """A CONNECT proxy that holds what the server sends until the server has been quiet for a moment,
    then passes it on in one write: the end of a TLS 1.2 handshake and the server's first bytes
    after it then reach the client in one read, before ``start_tls`` has returned."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        port = int(head.split()[1].rpartition(b":")[2])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(self._pipe(reader, up_writer, 0.0), self._pipe(up_reader, writer, 0.3),
                             return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold_s: float) -> None:
        try:
            while chunk := await reader.read(65536):
                while hold_s:
                    try:
                        more = await asyncio.wait_for(reader.read(65536), hold_s)
                    except TimeoutError:
                        break
                    if not more:
                        break
                    chunk += more
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def test_bytes_that_come_with_the_tunnels_handshake_are_not_lost(nginx: Nginx, pki: Pki, loop_kind: str) -> None:
    async def main() -> None:
        relay = CoalescingProxy()
        url = await relay.start()
        try:
            connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)), proxies=Proxies.from_env({}, url))
            protocol = await connector.open(Origin(f"https://localhost:{nginx.ports[H2]}/"), FirstBytes,
                                            alpn=("h2", "http/1.1"))
            assert isinstance(protocol, FirstBytes) and protocol.alpn == "h2"
            async with asyncio.timeout(WAIT_S):
                first = await protocol.first
            assert protocol.events[:2] == ["made", "data"] and first[3] == 0x4  # the SETTINGS frame
            assert protocol.transport is not None
            protocol.transport.close()
        finally:
            relay.close()

    run(main(), loop_kind)


def test_no_proxy_goes_around_the_proxy(nginx: Nginx, pki: Pki, tinyproxy: Tinyproxy) -> None:
    env = {"HTTP_PROXY": tinyproxy.url, "HTTPS_PROXY": tinyproxy.url, "NO_PROXY": "localhost,127.0.0.0/8"}
    connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)), proxies=Proxies.from_env(env))
    https_url = f"https://localhost:{nginx.ports[TLS]}/direct-tls"
    http_url = f"http://127.0.0.1:{nginx.ports[PLAIN]}/direct-plain"
    assert connector.route(Origin(https_url)).proxy is None and connector.route(Origin(http_url)).proxy is None
    assert run(get(connector, https_url)) == (200, b"localhost localhost")
    assert run(get(connector, http_url)) == (200, b"127.0.0.1 ")
    # The same origins through the proxy (no NO_PROXY) do show in its log: the log is read.
    through = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)), proxies=Proxies.from_env({}, tinyproxy.url))
    assert run(forward(through, f"http://127.0.0.1:{nginx.ports[PLAIN]}/proxied")) == (200, b"127.0.0.1 ")
    log = tinyproxy.log()
    assert "/proxied" in log
    assert "direct-plain" not in log and f":{nginx.ports[TLS]}" not in log and "CONNECT localhost" not in log
    served = nginx.log()
    assert any("/direct-tls" in line for line in served) and any("/direct-plain" in line for line in served)


def test_proxy_credentials(nginx: Nginx, pki: Pki, tinyproxy_auth: Tinyproxy, loop_kind: str) -> None:
    """tinyproxy with BasicAuth: CONNECT without (or with wrong) credentials is refused (407): ``proxy``;
    with them, the tunnel works. Forwarded plain http without them gets the proxy's 407 as its response."""
    tls = TlsOptions(ca_bundle=str(pki.ca_cert))
    https_url = f"https://localhost:{nginx.ports[TLS]}/"
    http_url = f"http://127.0.0.1:{nginx.ports[PLAIN]}/"

    def connector(proxy_url: str) -> Connector:
        return Connector(tls=tls, proxies=Proxies.from_env({}, proxy_url))

    assert run(get(connector(tinyproxy_auth.url), https_url), loop_kind) == ERR_PROXY
    assert run(get(connector(with_credentials(tinyproxy_auth, "loader", "wrong")), https_url), loop_kind) == ERR_PROXY
    good = connector(with_credentials(tinyproxy_auth, "loader", "pw-42"))
    assert run(get(good, https_url), loop_kind) == (200, b"localhost localhost")

    refused = run(forward(connector(tinyproxy_auth.url), http_url))
    assert isinstance(refused, tuple) and refused[0] == 407
    assert run(forward(good, http_url)) == (200, b"127.0.0.1 ")


def test_a_proxy_that_is_down_is_a_connect_error(nginx: Nginx, loop_kind: str) -> None:
    connector = Connector(proxies=Proxies.from_env({}, f"http://127.0.0.1:{free_port()}"))
    assert run(get(connector, f"https://localhost:{nginx.ports[TLS]}/"), loop_kind) == ERR_CONNECT
    assert run(forward(connector, f"http://127.0.0.1:{nginx.ports[PLAIN]}/"), loop_kind) == ERR_CONNECT


class FakeProxy:
    """A TCP server that reads a CONNECT request and then does what ``answer`` says:
    bytes to send (then close), or None to stay silent."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.gone = asyncio.Event()
        self.got_request = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            self.got_request.set()
            if self.answer is not None:
                writer.write(self.answer)
                await writer.drain()
            else:
                while await reader.read(65536):
                    pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        self.gone.set()
        writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.mark.parametrize(
    "answer",
    [b"", b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", b"garbage\r\n\r\n",
     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\n\r\n"],
    ids=["closes", "502", "garbage", "interim-then-403"],
)
def test_a_failed_tunnel_is_a_proxy_error(answer: bytes, loop_kind: str) -> None:
    async def main() -> tuple[int | tuple[int, bytes], list[bytes]]:
        fake = FakeProxy(answer)
        url = await fake.start()
        try:
            got = await get(Connector(proxies=Proxies.from_env({}, url)), "https://target.test:8443/")
            return got, fake.requests
        finally:
            fake.close()

    got, requests = run(main(), loop_kind)
    assert got == ERR_PROXY
    assert requests == [b"CONNECT target.test:8443 HTTP/1.1\r\nHost: target.test:8443\r\n\r\n"]


def test_the_connect_request_carries_credentials_and_brackets_ipv6() -> None:
    async def main() -> list[bytes]:
        fake = FakeProxy(b"")
        url = await fake.start()
        try:
            proxies = Proxies.from_env({}, url.replace("http://", "http://u:p@"))
            assert await get(Connector(proxies=proxies), "https://[::1]/") == ERR_PROXY
            assert await get(Connector(proxies=proxies), "https://bücher.test:1/") == ERR_PROXY  # IDNA on the wire
            return fake.requests
        finally:
            fake.close()

    auth = base64.b64encode(b"u:p").decode()
    assert run(main()) == [
        f"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode(),
        f"CONNECT xn--bcher-kva.test:1 HTTP/1.1\r\nHost: xn--bcher-kva.test:1\r\n"
        f"Proxy-Authorization: Basic {auth}\r\n\r\n".encode(),
    ]


def test_a_silent_proxy_is_a_connect_timeout_and_a_cancel_closes_the_socket(loop_kind: str) -> None:
    """The connect timeout covers the proxy's answer; a cancelled open waiting for it closes the connection."""

    async def main() -> None:
        fake = FakeProxy(None)
        url = await fake.start()
        try:
            quick = Connector(proxies=Proxies.from_env({}, url), connect_timeout_s=0.5)
            assert await get(quick, "https://target.test/") == ERR_CONNECT
            async with asyncio.timeout(WAIT_S):
                await fake.gone.wait()
            fake.gone.clear()
            fake.got_request.clear()
            patient = Connector(proxies=Proxies.from_env({}, url), connect_timeout_s=60)
            task = asyncio.create_task(get(patient, "https://target.test/"))
            async with asyncio.timeout(WAIT_S):
                await fake.got_request.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            async with asyncio.timeout(WAIT_S):
                await fake.gone.wait()
        finally:
            fake.close()

    run(main(), loop_kind)
