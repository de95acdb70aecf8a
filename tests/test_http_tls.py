"""How connections are opened over TLS (loadgen/http/tls.py, connector.py), against real nginx.

Server certificates are checked against the system's CAs or a given bundle
(or not at all with ``insecure``), by name or by IP address, also when
``--resolve`` sends the connection elsewhere; mutual TLS presents a client
certificate; ALPN picks h2 or http/1.1 and the protocol built for it gets
every byte the server sends, the first HTTP/2 SETTINGS included. Errors are
codes; a cancelled open leaves no socket behind. Each on uvloop (the engine's
loop) and, where the two loops' TLS code differs in what matters, on asyncio's.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import uvloop

from loadgen.engine.recorder import ERR_CONNECT, ERR_TLS
from loadgen.errors import UsageError
from loadgen.http.connection import Connection
from loadgen.http.connector import Connector, parse_resolve
from loadgen.http.origin import Origin
from loadgen.http.tls import TlsOptions
from servers_tls import Nginx, Pki, free_port, make_pki

pytestmark = pytest.mark.timeout(180)

T = TypeVar("T")
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
#: Bound on any one wait in these tests (a slow, busy machine gets plenty; nothing is timed).
WAIT_S = 20.0


def run(coro: Coroutine[object, object, T], loop: str = "uvloop") -> T:
    """Run ``coro`` on a fresh loop of the given kind."""
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(coro)


async def fetch(conn: Connection, host_header: str, target: str = "/", extra: bytes = b"") -> tuple[int, bytes]:
    """One request on ``conn``: status and body."""
    wire = b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target.encode(), host_header.encode(), extra)
    waiter = conn.send(wire, 0, False)
    async with asyncio.timeout(WAIT_S):
        status = await waiter
    return status, conn.body()


async def get(connector: Connector, url: str, **open_kw: object) -> tuple[int, bytes] | int:
    """Open a connection to ``url``'s origin and GET its path: (status, body), or the open's error code."""
    origin = Origin(url)
    registry: set[Connection] = set()
    got = await connector.open(origin, lambda alpn: Connection(registry), **open_kw)  # type: ignore[arg-type]
    if isinstance(got, int):
        return got
    assert isinstance(got, Connection)
    try:
        path = url.split(origin.host_header, 1)[1] or "/"
        return await fetch(got, origin.host_header, path)
    finally:
        got.close()


@pytest.fixture(params=sorted(LOOPS))
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


# Server blocks, by index into Nginx.ports.
VERIFIED, H2, SELF_SIGNED, MUTUAL, MUTUAL_12, H2_12, PLAIN = range(7)


@pytest.fixture(scope="module")
def nginx(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    cert = f"ssl_certificate {pki.server_cert}; ssl_certificate_key {pki.server_key};"
    mutual = f"ssl_verify_client on; ssl_client_certificate {pki.client_ca_cert};"
    # Each answers with what it saw: the Host header and the SNI name ($ssl_server_name).
    seen = 'location / { return 200 "$host $ssl_server_name"; }'
    client = 'location / { return 200 "client $ssl_client_s_dn"; }'
    servers = [
        f"server {{ listen 127.0.0.1:{{port}} ssl; {cert} {seen} }}",
        f"server {{ listen 127.0.0.1:{{port}} ssl http2; {cert} {seen} }}",
        f"server {{ listen 127.0.0.1:{{port}} ssl; ssl_certificate {pki.self_signed_cert}; "
        f"ssl_certificate_key {pki.self_signed_key}; {seen} }}",
        f"server {{ listen 127.0.0.1:{{port}} ssl; {cert} {mutual} {client} }}",
        f"server {{ listen 127.0.0.1:{{port}} ssl; ssl_protocols TLSv1.2; {cert} {mutual} {client} }}",
        f"server {{ listen 127.0.0.1:{{port}} ssl http2; ssl_protocols TLSv1.2; {cert} {seen} }}",
        f"server {{ listen 127.0.0.1:{{port}}; {seen} }}",
    ]
    server = Nginx(tmp_path_factory.mktemp("nginx"), servers)
    yield server
    server.stop()


def https(nginx: Nginx, block: int, host: str = "localhost", path: str = "/") -> str:
    return f"https://{host}:{nginx.ports[block]}{path}"


# -- server verification ---------------------------------------------------------------


def test_verification_refuses_unknown_issuers_by_default(nginx: Nginx, loop_kind: str) -> None:
    """Neither a self-signed certificate nor one from a CA outside the system's store is trusted."""
    connector = Connector()
    assert run(get(connector, https(nginx, SELF_SIGNED)), loop_kind) == ERR_TLS
    assert run(get(connector, https(nginx, VERIFIED)), loop_kind) == ERR_TLS


def test_insecure_accepts_any_certificate(nginx: Nginx, loop_kind: str) -> None:
    connector = Connector(tls=TlsOptions(insecure=True))
    assert run(get(connector, https(nginx, SELF_SIGNED)), loop_kind) == (200, b"localhost localhost")


def test_ca_bundle_is_trusted_instead_of_the_system_store(nginx: Nginx, pki: Pki, loop_kind: str) -> None:
    trusting_self = Connector(tls=TlsOptions(ca_bundle=str(pki.self_signed_cert)))
    assert run(get(trusting_self, https(nginx, SELF_SIGNED)), loop_kind) == (200, b"localhost localhost")
    trusting_ca = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)))
    assert run(get(trusting_ca, https(nginx, VERIFIED)), loop_kind) == (200, b"localhost localhost")
    # The bundle replaces the system's CAs: the context holds the one CA of the file.
    assert TlsOptions(ca_bundle=str(pki.ca_cert)).context(("http/1.1",)).cert_store_stats()["x509_ca"] == 1
    # A bundle of another CA does not vouch for the server.
    other = Connector(tls=TlsOptions(ca_bundle=str(pki.client_ca_cert)))
    assert run(get(other, https(nginx, VERIFIED)), loop_kind) == ERR_TLS


def test_ca_bundle_may_be_a_directory_of_hashed_certificates(nginx: Nginx, pki: Pki, tmp_path: Path) -> None:
    hashed = tmp_path / "cas"
    hashed.mkdir()
    shutil.copy(pki.ca_cert, hashed / "ca.pem")
    subprocess.run(["openssl", "rehash", str(hashed)], check=True, capture_output=True)
    connector = Connector(tls=TlsOptions(ca_bundle=str(hashed)))
    assert run(get(connector, https(nginx, VERIFIED))) == (200, b"localhost localhost")


def test_an_ip_address_url_is_verified_against_the_ip_san(nginx: Nginx, pki: Pki, loop_kind: str) -> None:
    """https://127.0.0.1:PORT: no SNI is sent for an address (nginx sees none), and the IP SAN is checked."""
    connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)))
    assert run(get(connector, https(nginx, VERIFIED, "127.0.0.1")), loop_kind) == (200, b"127.0.0.1 ")


def test_resolve_connects_elsewhere_but_verifies_and_sends_the_name(nginx: Nginx, pki: Pki, loop_kind: str) -> None:
    port = nginx.ports[VERIFIED]
    name = "staging.example.test"
    resolve = dict([parse_resolve(f"{name}:{port}:127.0.0.1")])
    connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)), resolve=resolve)
    # nginx saw the name as SNI and as Host; the certificate was checked for it (DNS:staging.example.test).
    assert run(get(connector, f"https://{name}:{port}/"), loop_kind) == (200, f"{name} {name}".encode())
    # The certificate is checked for the name, not the address: a name it lacks fails.
    wrong = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)),
                      resolve={("other.example.test", port): "127.0.0.1"})
    assert run(get(wrong, f"https://other.example.test:{port}/"), loop_kind) == ERR_TLS
    # Another port of the same name is not resolved by the entry (.test names never resolve).
    assert run(get(connector, f"https://{name}:{free_port()}/")) == ERR_CONNECT


def test_resolve_applies_to_plain_http(nginx: Nginx) -> None:
    port = nginx.ports[PLAIN]
    connector = Connector(resolve={("staging.example.test", port): "127.0.0.1"})
    assert run(get(connector, f"http://staging.example.test:{port}/")) == (200, b"staging.example.test ")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("api.example.com:443:127.0.0.1", (("api.example.com", 443), "127.0.0.1")),
        ("API.Example.com:8443:10.0.0.7", (("api.example.com", 8443), "10.0.0.7")),
        ("example.com:443:[2001:db8::1]", (("example.com", 443), "2001:db8::1")),
        ("example.com:443:2001:db8::1", (("example.com", 443), "2001:db8::1")),
        ("[::1]:443:127.0.0.1", (("::1", 443), "127.0.0.1")),
    ],
)
def test_parse_resolve(spec: str, expected: tuple[tuple[str, int], str]) -> None:
    assert parse_resolve(spec) == expected


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("example.com", "is not HOST:PORT:ADDRESS"),
        ("example.com:443", "is not HOST:PORT:ADDRESS"),
        (":443:127.0.0.1", "is not HOST:PORT:ADDRESS"),
        ("example.com:https:127.0.0.1", "invalid port"),
        ("example.com:70000:127.0.0.1", "invalid port"),
        ("example.com:443:backend.internal", "not one IP address"),
        ("example.com:443:127.0.0.1,127.0.0.2", "not one IP address"),
    ],
)
def test_parse_resolve_refuses_malformed_specs(spec: str, says: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_resolve(spec)
    message = str(err.value)
    assert says in message and repr(spec) in message and "\n" not in message


# -- mutual TLS -------------------------------------------------------------------------


@pytest.mark.parametrize("block", [MUTUAL, MUTUAL_12], ids=["tls1.3", "tls1.2"])
def test_mutual_tls(nginx: Nginx, pki: Pki, block: int, loop_kind: str) -> None:
    """nginx's ``ssl_verify_client on`` asks for a certificate in the handshake but does not end it
    without one: the handshake succeeds and nginx answers the request with 400 over TLS (1.2 and 1.3
    alike). With the client certificate its CA signed, 200; with one from another CA, 400 again."""
    ca = str(pki.ca_cert)
    without = run(get(Connector(tls=TlsOptions(ca_bundle=ca)), https(nginx, block)), loop_kind)
    assert isinstance(without, tuple) and without[0] == 400
    assert b"No required SSL certificate was sent" in without[1]

    with_cert = TlsOptions(ca_bundle=ca, client_cert=str(pki.client_cert), client_key=str(pki.client_key))
    assert run(get(Connector(tls=with_cert), https(nginx, block)), loop_kind) == (200, b"client CN=user")

    untrusted = TlsOptions(ca_bundle=ca, client_cert=str(pki.server_cert), client_key=str(pki.server_key))
    refused = run(get(Connector(tls=untrusted), https(nginx, block)), loop_kind)
    assert isinstance(refused, tuple) and refused[0] == 400 and b"The SSL certificate error" in refused[1]


def test_client_certificate_and_key_in_one_file(nginx: Nginx, pki: Pki, tmp_path: Path) -> None:
    both = tmp_path / "client-and-key.pem"
    both.write_bytes(pki.client_cert.read_bytes() + pki.client_key.read_bytes())
    options = TlsOptions(ca_bundle=str(pki.ca_cert), client_cert=str(both))
    options.validate()
    assert run(get(Connector(tls=options), https(nginx, MUTUAL))) == (200, b"client CN=user")


def test_per_call_tls_options_replace_the_connectors(nginx: Nginx, pki: Pki) -> None:
    """``open(tls=...)``, as requests' verify=/cert= of one call map to (TlsOptions.for_request)."""
    base = TlsOptions()
    connector = Connector(tls=base)
    url = https(nginx, MUTUAL)
    per_call = base.for_request(verify=str(pki.ca_cert), cert=(str(pki.client_cert), str(pki.client_key)))
    assert run(get(connector, url, tls=per_call)) == (200, b"client CN=user")
    assert run(get(connector, url)) == ERR_TLS


# -- validate() and contexts -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.txt").write_text("not a certificate\n")
    subprocess.run(["openssl", "pkey", "-in", str(pki.client_key), "-aes256", "-passout", "pass:secret",
                    "-out", str(d / "encrypted.key")], check=True, capture_output=True)
    return {"missing": str(d / "missing.pem"), "text": str(d / "notes.txt"), "encrypted": str(d / "encrypted.key")}


def _problem(options: TlsOptions) -> str:
    with pytest.raises(UsageError) as err:
        options.validate()
    message = str(err.value)
    assert "\n" not in message and "_ssl.c" not in message and "PEM lib" not in message
    return message


def test_validate_names_the_file_and_the_problem(pki: Pki, bad_files: dict[str, str]) -> None:
    cert, key = str(pki.client_cert), str(pki.client_key)
    missing, text, encrypted = bad_files["missing"], bad_files["text"], bad_files["encrypted"]
    assert _problem(TlsOptions(ca_bundle=missing)) == f"the CA bundle {missing!r} does not exist"
    assert _problem(TlsOptions(ca_bundle=text)) == f"the CA bundle {text!r} holds no PEM certificate"
    assert _problem(TlsOptions(client_cert=missing, client_key=key)) == (
        f"the client certificate {missing!r} does not exist")
    assert _problem(TlsOptions(client_cert=cert, client_key=missing)) == f"the client key {missing!r} does not exist"
    assert _problem(TlsOptions(client_cert=text, client_key=key)) == (
        f"the client certificate {text!r} is not a PEM certificate")
    assert _problem(TlsOptions(client_cert=cert, client_key=text)) == (
        f"the client key {text!r} is not a PEM private key")
    assert _problem(TlsOptions(client_cert=cert)) == (
        f"the client certificate {cert!r} holds no PEM private key; give the key file too")
    server_key = str(pki.server_key)
    assert _problem(TlsOptions(client_cert=cert, client_key=server_key)) == (
        f"the client key {server_key!r} does not match the client certificate {cert!r}")
    assert _problem(TlsOptions(client_key=key)) == f"the client key {key!r} is given without a client certificate"
    assert _problem(TlsOptions(client_cert=cert, client_key=encrypted)).startswith(
        f"the client key {encrypted!r} is protected by a passphrase, which loadgen cannot ask for")


def test_validate_accepts_good_files(pki: Pki) -> None:
    TlsOptions().validate()
    TlsOptions(insecure=True, ca_bundle=str(pki.ca_cert), client_cert=str(pki.client_cert),
               client_key=str(pki.client_key)).validate()


def test_unusable_files_raise_usage_error_from_open(nginx: Nginx, bad_files: dict[str, str]) -> None:
    connector = Connector(tls=TlsOptions(ca_bundle=bad_files["text"]))
    with pytest.raises(UsageError, match="holds no PEM certificate"):
        run(get(connector, https(nginx, VERIFIED)))


def test_contexts_are_built_once_per_options_and_alpn(pki: Pki) -> None:
    a = TlsOptions(ca_bundle=str(pki.ca_cert)).context(("http/1.1",))
    assert TlsOptions(ca_bundle=str(pki.ca_cert)).context(("http/1.1",)) is a  # equal options, same context
    assert TlsOptions(ca_bundle=str(pki.ca_cert)).context(("h2", "http/1.1")) is not a
    assert TlsOptions().context(("http/1.1",)) is not a
    insecure = TlsOptions(insecure=True).context(("http/1.1",))
    assert not insecure.check_hostname and insecure.verify_mode.name == "CERT_NONE"


def test_for_request_maps_requests_verify_and_cert() -> None:
    base = TlsOptions(ca_bundle="/etc/cas.pem", client_cert="/c.pem", client_key="/c.key")
    assert base.for_request() is base
    assert base.for_request(verify=False) == TlsOptions(True, "/etc/cas.pem", "/c.pem", "/c.key")
    assert TlsOptions(insecure=True).for_request(verify=True) == TlsOptions()
    assert base.for_request(verify="/other.pem") == TlsOptions(False, "/other.pem", "/c.pem", "/c.key")
    assert base.for_request(cert="/both.pem") == TlsOptions(False, "/etc/cas.pem", "/both.pem", None)
    assert base.for_request(cert=("/x.pem", "/x.key")) == TlsOptions(False, "/etc/cas.pem", "/x.pem", "/x.key")
    with pytest.raises(UsageError, match=r"^verify=3 is not True, False or the path of a CA bundle$"):
        base.for_request(verify=3)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="is not a certificate path or a"):
        base.for_request(cert=("/x.pem",))  # type: ignore[arg-type]


# -- ALPN, and the protocol attached before the first byte ----------------------------------------


class FirstBytes(asyncio.Protocol):
    """Records what the connector hands it: the ALPN result, and the order of events and bytes."""

    def __init__(self, alpn: str | None) -> None:
        self.alpn = alpn
        self.events: list[str] = []
        self.first: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append("data")
        if not self.first.done():
            self.first.set_result(data)


async def _alpn_of(connector: Connector, url: str, alpn: tuple[str, ...]) -> str | None:
    protocol = await connector.open(Origin(url), FirstBytes, alpn=alpn)
    assert isinstance(protocol, FirstBytes) and protocol.transport is not None
    protocol.transport.close()
    return protocol.alpn


def test_alpn_result_reaches_the_factory(nginx: Nginx, pki: Pki, loop_kind: str) -> None:
    connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)))
    both = ("h2", "http/1.1")
    assert run(_alpn_of(connector, https(nginx, H2), both), loop_kind) == "h2"
    assert run(_alpn_of(connector, https(nginx, H2), ("http/1.1",)), loop_kind) == "http/1.1"
    assert run(_alpn_of(connector, https(nginx, VERIFIED), both), loop_kind) == "http/1.1"
    assert run(_alpn_of(connector, f"http://127.0.0.1:{nginx.ports[PLAIN]}/", both), loop_kind) is None


@pytest.mark.parametrize("block", [H2, H2_12], ids=["tls1.3", "tls1.2"])
def test_h2_protocol_gets_the_servers_settings_frame(nginx: Nginx, pki: Pki, block: int, loop_kind: str) -> None:
    """nginx sends its SETTINGS as soon as the handshake is done (with TLS 1.2, in the same flight as
    its Finished): the h2 protocol is attached before, so it is the first thing it receives."""
    connector = Connector(tls=TlsOptions(ca_bundle=str(pki.ca_cert)))

    async def main() -> None:
        for _ in range(3):
            protocol = await connector.open(Origin(https(nginx, block)), FirstBytes, alpn=("h2", "http/1.1"))
            assert isinstance(protocol, FirstBytes) and protocol.alpn == "h2"
            async with asyncio.timeout(WAIT_S):
                first = await protocol.first
            assert protocol.events[:2] == ["made", "data"]
            assert first[3] == 0x4 and int.from_bytes(first[5:9], "big") == 0  # SETTINGS, on stream 0
            assert protocol.transport is not None
            protocol.transport.close()

    run(main(), loop_kind)


# -- connect errors, timeouts, cancellation ----------------------------------------------


def test_refused_and_unresolvable_are_connect_errors(loop_kind: str) -> None:
    connector = Connector(connect_timeout_s=WAIT_S)
    assert run(get(connector, f"https://127.0.0.1:{free_port()}/"), loop_kind) == ERR_CONNECT
    assert run(get(connector, f"http://127.0.0.1:{free_port()}/"), loop_kind) == ERR_CONNECT
    assert run(get(connector, "https://no-such-host.invalid/"), loop_kind) == ERR_CONNECT


class SilentServer:
    """Accepts connections and never answers; tells when a client's bytes came and when it went away."""

    def __init__(self) -> None:
        self.received: asyncio.Event = asyncio.Event()
        self.gone: asyncio.Event = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                self.received.set()
        except ConnectionError:
            pass
        self.gone.set()
        writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def test_a_stalled_handshake_is_a_connect_timeout(loop_kind: str) -> None:
    async def main() -> int:
        silent = SilentServer()
        port = await silent.start()
        try:
            got = await get(Connector(connect_timeout_s=0.5), f"https://localhost:{port}/")
            assert isinstance(got, int)
            return got
        finally:
            silent.close()

    assert run(main(), loop_kind) == ERR_CONNECT


def test_a_cancelled_open_raises_and_leaves_no_socket(loop_kind: str) -> None:
    """Cancelled during the TLS handshake (the server got the ClientHello and never answers):
    CancelledError, the factory never called, and the server sees the connection closed."""

    async def main() -> None:
        silent = SilentServer()
        port = await silent.start()
        built: list[str | None] = []
        try:
            connector = Connector(connect_timeout_s=60)
            task = asyncio.create_task(
                connector.open(Origin(f"https://localhost:{port}/"), built.append)  # type: ignore[arg-type]
            )
            async with asyncio.timeout(WAIT_S):
                await silent.received.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            async with asyncio.timeout(WAIT_S):
                await silent.gone.wait()
            assert built == []
        finally:
            silent.close()

    run(main(), loop_kind)
