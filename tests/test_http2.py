"""HTTP/2 connections and streams (loadgen/http/http2.py) against real nginx and a hostile h2 server, on uvloop.

nginx (tests/servers_tls.py) serves h2c (prior knowledge) and h2 over TLS with ALPN; what
it logs is what it really served. The hostile server is written here with the h2
library's server side: each request's path picks how it misbehaves.

``.venv/bin/python tests/test_http2.py`` measures the cost per request instead (see
``bench`` at the end).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import TypeVar

import pytest
import uvloop
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import DataReceived, RequestReceived, StreamReset
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes
from hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hyperframe.frame import GoAwayFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgen.engine.recorder import ERR_INVALID_REQUEST, ERR_PROTOCOL, ERR_RESET, ERR_TIMEOUT, ERR_TOO_LARGE
from loadgen.http.http2 import (
    STREAM_WINDOW, Http2Connection, Http2Stream, InFlight, _CachingDecoder, _CachingEncoder,
)
from loadgen.http.limits import DEFAULT_LIMITS, Limits
from servers_tls import Nginx, make_pki

T = TypeVar("T")
Got = tuple[int, Http2Stream]  # a status or error code, and the stream it came on
BIG = 5 << 20  # the static download: larger than our 4 MiB stream window
UPLOAD = 3 << 20  # larger than nginx's 64 KiB stream window for request bodies
FAR = 1 << 62  # a deadline that never comes


def run(coro_fn: Callable[[], Awaitable[T]], limit_s: float = 120.0) -> T:
    """``coro_fn()`` on a fresh uvloop loop, bounded in time (a hang fails the test, it does not stall CI)."""

    async def bounded() -> T:
        async with asyncio.timeout(limit_s):
            return await coro_fn()

    return uvloop.run(bounded())


def request(method: str, path: str, host: str = "localhost", headers: dict[str, str] | None = None,
            body: bytes = b"", length: int | None = None) -> bytes:
    """An HTTP/1.1 request as the client builds it (``length``: a Content-Length for a streamed body)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: loadgen-test", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or length is not None:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def connect(port: int, *, registry: set[InFlight] | None = None, limits: Limits = DEFAULT_LIMITS,
                  tls: ssl.SSLContext | None = None) -> Http2Connection:
    loop = asyncio.get_running_loop()
    reg: set[InFlight] = set() if registry is None else registry
    transport, conn = await loop.create_connection(
        lambda: Http2Connection(reg, limits, scheme="https" if tls else "http"), "127.0.0.1", port,
        ssl=tls, server_hostname="localhost" if tls else None,
    )
    if tls is not None:
        assert transport.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    return conn


async def fetch(conn: Http2Connection, wire: bytes, *, head: bool = False, deadline_ns: int = FAR,
                body: Iterator[bytes] | None = None) -> Got:
    assert conn.available()
    s = conn.stream()
    code = await s.send(wire, deadline_ns, head, body)
    return code, s


def sweep(registry: set[InFlight]) -> None:
    """What the session's timeout sweep does every 50 ms."""
    now = perf_counter_ns()
    for obj in list(registry):
        d = obj.deadline_ns
        if d and now >= d:
            obj.fail(ERR_TIMEOUT)


# --- nginx ----------------------------------------------------------------------------------------

_LOCATIONS = """
    root {www};
    client_max_body_size 10m;
    location = /hello {{ add_header X-Test yes; return 200 "hello h2"; }}
    location = /length {{ return 200 "$content_length"; }}
    location /up/ {{ dav_methods PUT; create_full_put_path on; }}
"""


@dataclass
class Site:
    nginx: Nginx
    www: Path
    big: bytes
    tls: ssl.SSLContext

    def served(self, port: int, needle: str) -> list[str]:
        """nginx's log lines for ``port`` that contain ``needle``."""
        return [line for line in self.nginx.log() if line.endswith(f" {port}") and needle in line]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("h2nginx")
    pki = make_pki(root / "pki")
    www = root / "www"
    (www / "up").mkdir(parents=True)
    big = os.urandom(BIG)
    (www / "big.bin").write_bytes(big)
    os.chmod(www / "up", 0o777)  # nginx may write as another user
    loc = _LOCATIONS.format(www=www)
    servers = [
        f"server {{ listen 127.0.0.1:{{port}} http2; {loc} }}",
        f"server {{ listen 127.0.0.1:{{port}} ssl http2; ssl_certificate {pki.server_cert}; "
        f"ssl_certificate_key {pki.server_key}; {loc} }}",
        # nginx 1.22 ends an HTTP/2 connection with GOAWAY after keepalive_requests streams
        # (http2_max_requests is obsolete there, and ignored).
        'server { listen 127.0.0.1:{port} http2; keepalive_requests 10; location / { return 200 "x"; } }',
    ]
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.set_alpn_protocols(["h2"])
    with Nginx(root / "nginx", servers) as ng:
        yield Site(ng, www, big, ctx)


@pytest.fixture(params=["h2c", "h2-tls"])
def target(request: pytest.FixtureRequest, site: Site) -> tuple[int, ssl.SSLContext | None]:
    """The port to reach and the TLS context (None: h2c with prior knowledge)."""
    return (site.nginx.ports[0], None) if request.param == "h2c" else (site.nginx.ports[1], site.tls)


def test_sequential_streams_share_one_connection(site: Site, target: tuple[int, ssl.SSLContext | None]) -> None:
    port, tls = target
    tag = f"seq-{'tls' if tls else 'h2c'}"

    async def main() -> list[Got]:
        reg: set[InFlight] = set()
        conn = await connect(port, registry=reg, tls=tls)
        got = [await fetch(conn, request("GET", f"/hello?{tag}-{i}")) for i in range(200)]
        assert reg == {conn}  # every stream left the registry when it ended
        assert not conn.closed
        assert len(conn._h2.streams) <= 20  # h2 forgets closed streams as they pile up (_Framer)
        conn.close()
        return got

    got = run(main)
    assert [s.sid for _, s in got] == list(range(1, 401, 2))  # one connection, stream after stream
    for code, s in got:
        assert code == 200
        assert s.body() == b"hello h2"
        headers = dict(s.headers)
        assert headers[b"x-test"] == b"yes" and headers[b"content-type"] == b"text/plain"
        assert headers[b"content-length"] == b"8"
        assert all(not name.startswith(b":") for name, _ in s.headers)
        assert s.bytes_in > len(b"hello h2") and 0 < s.t_first <= s.t_done
        assert s.keep_alive and not s.unprocessed and s.encoding is None and not s.has_cookies
    assert len(site.served(port, f"HTTP/2.0 200 GET /hello?{tag}-")) == 200


def test_concurrent_streams_share_one_connection(site: Site, target: tuple[int, ssl.SSLContext | None]) -> None:
    port, tls = target
    tag = f"conc-{'tls' if tls else 'h2c'}"

    async def main() -> list[int]:
        reg: set[InFlight] = set()
        conn = await connect(port, registry=reg, tls=tls)
        futures = []
        for i in range(100):
            assert conn.available()
            futures.append(conn.stream().send(request("GET", f"/hello?{tag}-{i}"), FAR))
        assert len(reg) == 101  # all 100 in flight at once, and the connection
        codes = list(await asyncio.gather(*futures))
        assert reg == {conn}
        conn.close()
        return codes

    assert run(main) == [200] * 100
    assert len(site.served(port, f"HTTP/2.0 200 GET /hello?{tag}-")) == 100


def test_download_larger_than_the_stream_window(site: Site, target: tuple[int, ssl.SSLContext | None]) -> None:
    port, tls = target
    assert BIG > STREAM_WINDOW  # so the download needs our WINDOW_UPDATEs

    async def main() -> tuple[Got, Got]:
        conn = await connect(port, tls=tls)
        got = await fetch(conn, request("GET", "/big.bin"))
        head = await fetch(conn, request("HEAD", "/big.bin"), head=True)
        conn.close()
        return got, head

    (code, s), (head_code, h) = run(main)
    assert code == 200
    body = s.body()
    assert len(body) == BIG and hashlib.sha256(body).digest() == hashlib.sha256(site.big).digest()
    assert s.bytes_in > BIG
    assert head_code == 200 and h.body() == b"" and dict(h.headers)[b"content-length"] == str(BIG).encode()


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_upload_larger_than_the_peer_window(site: Site, target: tuple[int, ssl.SSLContext | None]) -> None:
    port, tls = target
    kind = "tls" if tls else "h2c"
    data = os.urandom(UPLOAD)

    async def main() -> list[Got]:
        conn = await connect(port, tls=tls)
        whole = await fetch(conn, request("PUT", f"/up/{kind}-whole.bin", body=data))
        chunked = await fetch(conn, request("PUT", f"/up/{kind}-chunks.bin", length=UPLOAD),
                              body=_pieces(data, 100_000))
        unsized = await fetch(conn, request("PUT", f"/up/{kind}-unsized.bin"),
                              body=iter([data[:70_000], b"", data[70_000:]]))
        length = await fetch(conn, request("POST", "/length", body=data))
        conn.close()
        return [whole, chunked, unsized, length]

    (whole, _), (chunked, _), (unsized, _), (length, s) = run(main)
    assert whole == chunked == unsized == 201
    for name in ("whole", "chunks", "unsized"):
        stored = (site.www / "up" / f"{kind}-{name}.bin").read_bytes()
        assert len(stored) == UPLOAD and stored == data
        assert len(site.served(port, f"HTTP/2.0 201 PUT /up/{kind}-{name}.bin")) == 1
    assert length == 200 and s.body() == str(UPLOAD).encode()


def test_goaway_streams_past_the_last_id_are_unprocessed(site: Site) -> None:
    port = site.nginx.ports[2]

    async def main() -> tuple[list[Got], bool, bool]:
        conn = await connect(port)
        streams = [conn.stream() for _ in range(15)]
        codes = await asyncio.gather(*[s.send(request("GET", f"/goaway-{i}"), FAR) for i, s in enumerate(streams)])
        available = conn.available()
        for _ in range(200):  # the connection hangs up once its last stream has ended
            if conn.closed:
                break
            await asyncio.sleep(0.01)
        return list(zip(codes, streams)), available, conn.closed

    got, available, closed = run(main)
    processed = [s for code, s in got if not s.unprocessed]
    unprocessed = [(code, s) for code, s in got if s.unprocessed]
    assert all(code == 200 for code, s in got if not s.unprocessed)
    assert unprocessed and all(code == ERR_RESET for code, _ in unprocessed)
    # The ones nginx served are exactly the ones that came back processed, and below the others.
    served = sorted(line.split()[3] for line in site.served(port, "HTTP/2.0 200 GET /goaway-"))
    assert served == sorted(f"/goaway-{(s.sid - 1) // 2}" for s in processed)
    assert max(s.sid for s in processed) < min(s.sid for _, s in unprocessed)
    assert not available and closed


# --- a hostile HTTP/2 server ----------------------------------------------------------------------

OK_HEADERS = [(b":status", b"200"), (b"content-type", b"text/plain")]


@dataclass
class Seen:
    """What the hostile server saw: each request's fields, and the streams the client reset."""

    requests: dict[int, list[tuple[bytes, bytes]]] = field(default_factory=dict)
    resets: dict[int, int] = field(default_factory=dict)
    held: list[int] = field(default_factory=list)


class Hostile(asyncio.Protocol):
    """h2's server side; the request's path chooses the answer (see ``respond``)."""

    def __init__(self, seen: Seen, max_streams: int | None) -> None:
        self.seen = seen
        self.max_streams = max_streams
        # Cookies not joined: the test of what the client sent sees each field as it came.
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None,
                                               normalize_inbound_headers=False,
                                               validate_outbound_headers=False))  # /nostatus, /badstatus
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.h2.initiate_connection()
        if self.max_streams is not None:
            self.h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        self.flush()

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self.transport.close()  # type: ignore[union-attr]
            return
        for ev in events:
            if isinstance(ev, RequestReceived):
                self.seen.requests[ev.stream_id] = list(ev.headers)
                self.respond(ev.stream_id, dict(ev.headers)[b":path"].partition(b"?")[0])
            elif isinstance(ev, StreamReset):
                self.seen.resets[ev.stream_id] = ev.error_code
            elif isinstance(ev, DataReceived):
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.flush()

    def respond(self, sid: int, path: bytes) -> None:
        h2 = self.h2
        t = self.transport
        assert t is not None
        if path in (b"/ok", b"/echo"):
            h2.send_headers(sid, OK_HEADERS)
            h2.send_data(sid, b"ok", end_stream=True)
        elif path == b"/rst":
            h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
        elif path == b"/refused":
            h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
        elif path.startswith(b"/head/"):  # a header field of that many hex digits, and a body without end
            h2.send_headers(sid, OK_HEADERS + [(b"x-big", os.urandom(int(path[6:]) // 2).hex().encode())])
            h2.send_data(sid, b"big head")
        elif path == b"/bigbody":  # a body without end
            h2.send_headers(sid, OK_HEADERS)
            for _ in range(3):
                h2.send_data(sid, b"b" * 16384)
        elif path == b"/redirect":
            h2.send_headers(sid, [(b":status", b"302"), (b"location", b"/ok"), (b"set-cookie", b"a=1"),
                                  (b"content-encoding", b"gzip")], end_stream=True)
        elif path == b"/nostatus":  # a response head without :status
            h2.send_headers(sid, [(b"content-type", b"text/plain")], end_stream=True)
        elif path == b"/badstatus":
            h2.send_headers(sid, [(b":status", b"abc")], end_stream=True)
        elif path == b"/early":
            h2.send_headers(sid, [(b":status", b"103"), (b"link", b"</style.css>; rel=preload")])
            self.flush()
            h2.send_headers(sid, [(b":status", b"500"), (b"content-type", b"text/plain")])
            h2.send_data(sid, b"boom", end_stream=True)
        elif path == b"/drop":  # headers and part of the body, then the connection is gone
            h2.send_headers(sid, OK_HEADERS + [(b"content-length", b"100")])
            h2.send_data(sid, b"part")
            self.flush()
            t.abort()
        elif path == b"/garbage":
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        elif path == b"/later":
            asyncio.get_running_loop().call_later(0.05, self.answer, sid)
        elif path == b"/hold":
            self.seen.held.append(sid)
        elif path == b"/goaway":
            # GOAWAY naming the first held stream last, written past h2 (which would then refuse to
            # send anything more), then the answers to the held streams up to it.
            first = self.seen.held[0]
            frame = GoAwayFrame(0)
            frame.last_stream_id = first
            self.flush()
            t.write(frame.serialize())
            for held in self.seen.held:
                if held <= first:
                    self.answer(held)
        # /silent and anything else: no answer

    def answer(self, sid: int) -> None:
        self.h2.send_headers(sid, OK_HEADERS)
        self.h2.send_data(sid, b"ok", end_stream=True)
        self.flush()


async def hostile(seen: Seen, max_streams: int | None = None) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Hostile(seen, max_streams), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def hostile_run(body: Callable[[int, Seen], Awaitable[T]], max_streams: int | None = None) -> tuple[T, Seen]:
    """``body(port, seen)`` against a fresh hostile server, on uvloop."""
    seen = Seen()

    async def main() -> T:
        server, port = await hostile(seen, max_streams)
        try:
            return await body(port, seen)
        finally:
            server.close()

    return run(main, 60), seen


def test_request_is_converted_to_http2_fields() -> None:
    async def body(port: int, seen: Seen) -> int:
        conn = await connect(port)
        wire = request("GET", "/echo?q=1", host="example.test:8443", headers={
            "Connection": "keep-alive", "Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive",
            "Upgrade": "h2c", "TE": "trailers", "X-Custom": "  spaced value ", "Authorization": "Bearer abc",
            "Cookie": "a=1",
        })
        code, _ = await fetch(conn, wire)
        conn.close()
        return code

    code, seen = hostile_run(body)
    assert code == 200
    fields = seen.requests[1]
    assert fields == [
        (b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"example.test:8443"), (b":path", b"/echo?q=1"),
        (b"user-agent", b"loadgen-test"), (b"accept", b"*/*"), (b"te", b"trailers"), (b"x-custom", b"spaced value"),
        (b"authorization", b"Bearer abc"), (b"cookie", b"a=1"),
    ]
    sent = {f[0]: f for f in fields}
    assert isinstance(sent[b"authorization"], NeverIndexedHeaderTuple)  # kept out of HPACK's table
    assert isinstance(sent[b"cookie"], NeverIndexedHeaderTuple)  # a short cookie, too
    assert not isinstance(sent[b"x-custom"], NeverIndexedHeaderTuple)


def test_bytes_in_counts_the_header_block_and_data() -> None:
    async def body(port: int, seen: Seen) -> Http2Stream:
        conn = await connect(port)
        _, s = await fetch(conn, request("GET", "/ok"))
        conn.close()
        return s

    s, _ = hostile_run(body)
    # The first header block on a connection is what a fresh HPACK encoder makes of it.
    assert s.bytes_in == len(Encoder().encode(OK_HEADERS)) + len(b"ok")
    assert s.body() == b"ok" and s.headers == [(b"content-type", b"text/plain")]


def test_redirect_location_cookies_and_encoding_are_noted() -> None:
    async def body(port: int, seen: Seen) -> tuple[Got, Got]:
        conn = await connect(port)
        return await fetch(conn, request("GET", "/redirect")), await fetch(conn, request("GET", "/ok"))

    ((code, s), (ok, o)), _ = hostile_run(body)
    assert code == 302 and s.location == b"/ok" and s.has_cookies and s.encoding == b"gzip" and s.body() == b""
    assert ok == 200 and o.location is None and not o.has_cookies and o.encoding is None


def test_reset_stream_fails_only_that_stream() -> None:
    async def body(port: int, seen: Seen) -> tuple[Got, Got, Got, bool]:
        conn = await connect(port)
        rst, ok, refused = await asyncio.gather(fetch(conn, request("GET", "/rst")), fetch(conn, request("GET", "/ok")),
                                                fetch(conn, request("GET", "/refused")))
        return rst, ok, refused, conn.available()

    (rst, ok, refused, available), _ = hostile_run(body)
    assert rst[0] == ERR_RESET and not rst[1].unprocessed
    assert ok[0] == 200 and ok[1].body() == b"ok"
    assert refused[0] == ERR_RESET and refused[1].unprocessed  # the server says it did not act on it
    assert available


def test_header_block_past_the_limit_is_too_large_and_the_connection_lives() -> None:
    limits = Limits(max_head_bytes=2000)

    async def body(port: int, seen: Seen) -> tuple[int, int, bool, int]:
        conn = await connect(port, limits=limits)
        # ~2.8 kB of header block once Huffman-coded: past the limit, but well under the
        # 8 kB a block may decode to before it counts as an HPACK bomb.
        big, s = await fetch(conn, request("GET", "/head/4000"))
        after, _ = await fetch(conn, request("GET", "/ok"))
        return big, after, conn.closed, s.bytes_in

    (big, after, closed, bytes_in), seen = hostile_run(body)
    assert big == ERR_TOO_LARGE and bytes_in > 2000
    assert seen.resets == {1: ErrorCodes.CANCEL}
    assert after == 200 and not closed


def test_hpack_bomb_drops_the_connection() -> None:
    limits = Limits(max_head_bytes=2000)

    async def body(port: int, seen: Seen) -> tuple[int, int, bool]:
        conn = await connect(port, limits=limits)
        waiting = asyncio.ensure_future(fetch(conn, request("GET", "/silent")))
        await asyncio.sleep(0)
        bomb, _ = await fetch(conn, request("GET", "/head/12000"))  # decodes past 4 x 2000 bytes
        other, _ = await waiting
        return bomb, other, conn.closed

    (bomb, other, closed), _ = hostile_run(body)
    assert bomb == ERR_TOO_LARGE and other == ERR_RESET and closed


def test_body_past_the_limit_is_too_large_and_the_connection_lives() -> None:
    limits = Limits(max_body_bytes=20_000)

    async def body(port: int, seen: Seen) -> tuple[int, int, Http2Stream]:
        conn = await connect(port, limits=limits)
        big, s = await fetch(conn, request("GET", "/bigbody"))
        after, ok = await fetch(conn, request("GET", "/ok"))
        assert ok.body() == b"ok"
        return big, after, s

    (big, after, s), seen = hostile_run(body)
    assert big == ERR_TOO_LARGE and seen.resets[1] == ErrorCodes.CANCEL
    assert s.bytes_in > 20_000 and 0 < s.t_first <= s.t_done
    assert after == 200


def test_timeout_sweep_resets_the_stream_and_the_connection_lives() -> None:
    async def body(port: int, seen: Seen) -> tuple[int, int, set[InFlight], Http2Connection]:
        reg: set[InFlight] = set()
        conn = await connect(port, registry=reg)
        s = conn.stream()
        fut = s.send(request("GET", "/silent"), perf_counter_ns() + 20_000_000)
        while not fut.done():  # the session's sweep, every 10 ms here
            await asyncio.sleep(0.01)
            sweep(reg)
        after, _ = await fetch(conn, request("GET", "/ok"))
        return fut.result(), after, set(reg), conn

    (code, after, left, conn), seen = hostile_run(body)
    assert code == ERR_TIMEOUT
    assert seen.resets == {1: ErrorCodes.CANCEL}
    assert after == 200 and left == {conn}


def test_cancelled_request_resets_its_stream() -> None:
    async def body(port: int, seen: Seen) -> int:
        conn = await connect(port)
        s = conn.stream()

        async def user() -> int:
            try:
                return await s.send(request("GET", "/silent"), FAR)
            except asyncio.CancelledError:
                s.close()  # what the client does when its task is cancelled
                raise

        task = asyncio.ensure_future(user())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ok, _ = await fetch(conn, request("GET", "/ok"))
        return ok

    ok, seen = hostile_run(body)
    assert ok == 200 and seen.resets == {1: ErrorCodes.CANCEL}


def test_connection_dropped_mid_stream_is_reset() -> None:
    async def body(port: int, seen: Seen) -> tuple[int, bool, set[InFlight]]:
        reg: set[InFlight] = set()
        conn = await connect(port, registry=reg)
        code, _ = await fetch(conn, request("GET", "/drop"))
        return code, conn.closed, reg

    (code, closed, reg), _ = hostile_run(body)
    assert code == ERR_RESET and closed and reg == set()


def test_close_ends_streams_in_flight() -> None:
    async def body(port: int, seen: Seen) -> tuple[list[int], bool]:
        conn = await connect(port)
        futures = [conn.stream().send(request("GET", "/silent"), FAR) for _ in range(3)]
        await asyncio.sleep(0.05)
        conn.close()
        codes = list(await asyncio.gather(*futures))
        late = conn.stream()
        refused = await late.send(request("GET", "/ok"), FAR)
        assert refused == ERR_RESET and late.unprocessed  # never sent: a new connection may take it
        return codes, conn.available()

    (codes, available), _ = hostile_run(body)
    assert codes == [ERR_RESET] * 3 and not available


def test_garbage_is_a_protocol_error() -> None:
    async def body(port: int, seen: Seen) -> tuple[int, int, bool]:
        conn = await connect(port)
        waiting = asyncio.ensure_future(fetch(conn, request("GET", "/silent")))
        await asyncio.sleep(0)
        code, _ = await fetch(conn, request("GET", "/garbage"))
        other, _ = await waiting
        return code, other, conn.closed

    (code, other, closed), _ = hostile_run(body)
    assert code == ERR_PROTOCOL and other == ERR_PROTOCOL and closed


def test_interim_response_is_skipped() -> None:
    async def body(port: int, seen: Seen) -> Got:
        conn = await connect(port)
        return await fetch(conn, request("GET", "/early"))

    (code, s), _ = hostile_run(body)
    assert code == 500
    assert s.headers == [(b"content-type", b"text/plain")] and s.body() == b"boom"


@pytest.mark.parametrize("path", ["/nostatus", "/badstatus"])
def test_a_head_without_a_status_fails_its_stream_as_protocol(path: str) -> None:
    # h2's inbound field validation is off (20 us a response): the status is checked here.
    async def body(port: int, seen: Seen) -> Got:
        conn = await connect(port)
        bad = await fetch(conn, request("GET", path))
        return bad, await fetch(conn, request("GET", "/ok"))

    ((code, _), (after, _)), _ = hostile_run(body)
    assert code == ERR_PROTOCOL
    assert after == 200


def test_goaway_lets_streams_up_to_the_last_id_finish() -> None:
    async def body(port: int, seen: Seen) -> tuple[list[tuple[int, bool]], bool]:
        conn = await connect(port)
        streams = [conn.stream() for _ in range(4)]
        futures = [s.send(request("GET", "/hold"), FAR) for s in streams]
        while len(seen.held) < 4:
            await asyncio.sleep(0.01)
        last = conn.stream()
        futures.append(last.send(request("GET", "/goaway"), FAR))
        streams.append(last)
        codes = await asyncio.gather(*futures)
        return [(c, s.unprocessed) for c, s in zip(codes, streams)], conn.available()

    (got, available), _ = hostile_run(body)
    # Stream 1 is answered after the GOAWAY (h2 alone would call that a protocol error).
    assert got == [(200, False)] + [(ERR_RESET, True)] * 4
    assert not available


def test_available_follows_the_server_stream_limit() -> None:
    async def body(port: int, seen: Seen) -> tuple[list[bool], list[int]]:
        conn = await connect(port)
        await fetch(conn, request("GET", "/ok"))  # the server's SETTINGS have arrived
        states = [conn.available()]
        futures = [conn.stream().send(request("GET", "/later"), FAR)]
        states.append(conn.available())
        futures.append(conn.stream().send(request("GET", "/later"), FAR))
        states.append(conn.available())
        codes = list(await asyncio.gather(*futures))
        states.append(conn.available())
        return states, codes

    (states, codes), _ = hostile_run(body, max_streams=2)
    assert states == [True, True, False, True] and codes == [200, 200]


def test_a_stream_past_the_server_limit_is_never_sent() -> None:
    async def body(port: int, seen: Seen) -> tuple[list[int], bool, list[int]]:
        conn = await connect(port)
        await fetch(conn, request("GET", "/ok"))  # the server's SETTINGS (one stream at a time) have arrived
        first, second = conn.stream(), conn.stream()
        futures = [first.send(request("GET", "/later"), FAR), second.send(request("GET", "/later"), FAR)]
        return list(await asyncio.gather(*futures)), second.unprocessed, sorted(seen.requests)

    (codes, unprocessed, sids), _ = hostile_run(body, max_streams=1)
    assert codes == [200, ERR_RESET] and unprocessed and sids == [1, 3]


def test_a_failing_body_iterable_is_an_invalid_request_and_the_connection_lives() -> None:
    def broken() -> Iterator[bytes]:
        yield b"first"
        raise RuntimeError("the scenario's generator broke")

    async def body(port: int, seen: Seen) -> tuple[int, int]:
        conn = await connect(port)
        bad, _ = await fetch(conn, request("POST", "/silent", length=100), body=broken())
        ok, _ = await fetch(conn, request("GET", "/ok"))
        return bad, ok

    (bad, ok), seen = hostile_run(body)
    assert (bad, ok) == (ERR_INVALID_REQUEST, 200) and seen.resets == {1: ErrorCodes.CANCEL}


def test_body_that_cannot_be_read_is_an_invalid_request() -> None:
    def unreadable() -> Iterator[bytes]:  # what http/body.py raises for a file that changed under it
        yield b"first"
        raise ValueError("the file is shorter than its declared length")

    async def body(port: int, seen: Seen) -> tuple[int, Http2Stream, int]:
        conn = await connect(port)
        code, s = await fetch(conn, request("POST", "/silent", length=100), body=unreadable())
        ok, _ = await fetch(conn, request("GET", "/ok"))
        return code, s, ok

    (code, s, ok), seen = hostile_run(body)
    assert code == ERR_INVALID_REQUEST and s.sending is None and seen.resets == {1: ErrorCodes.CANCEL}
    assert ok == 200  # the connection serves on


# --- HPACK caches: exactly what hpack gives -------------------------------------------------------

_NAMES = [b"a", b"x-b", b"date", b"content-type"]
_VALUES = [b"", b"1", b"22", b"text/plain", b"v" * 40]
_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def _integer(value: int, prefix_bits: int, flags: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with ``flags`` in the first byte's high bits."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([flags | value])
    out = [flags | top]
    value -= top
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    return bytes(out + [value])


def _string(raw: bytes, huffman: bool) -> bytes:
    data = _HUFFMAN.encode(raw) if huffman else raw
    return _integer(len(data), 7, 0x80 if huffman else 0) + data


_KINDS = {"incremental": (6, 0x40), "without": (4, 0x00), "never": (4, 0x10)}
_NAME_INDEXES = [0, 0, 2, 31, 62, 63]  # 0: a literal name; 62 and up: the dynamic table, maybe past its end
_SIZES = [0, 60, 100, 200, 4096, 5000]  # 5000: past the largest size allowed


def _indexed(index: int) -> bytes:
    return _integer(index, 7, 0x80)


def _literal(kind: str, index: int, name: bytes, value: bytes, huffman: bool) -> bytes:
    return _integer(index, *_KINDS[kind]) + (b"" if index else _string(name, huffman)) + _string(value, huffman)


def _size_update(size: int) -> bytes:
    return _integer(size, 5, 0x20)


# A header block (RFC 7541 §6): maybe a size update, then fields; indices past the table's end are errors.
_block = st.builds(
    lambda head, body: b"".join(head + body),
    st.lists(st.builds(_size_update, st.sampled_from(_SIZES)), max_size=1),
    st.lists(st.one_of(
        st.builds(_indexed, st.integers(1, 66)),
        st.builds(_literal, st.sampled_from(list(_KINDS)), st.sampled_from(_NAME_INDEXES),
                  st.sampled_from(_NAMES), st.sampled_from(_VALUES), st.booleans()),
    ), max_size=5),
)


def _random_block(rnd: random.Random) -> bytes:
    parts = [_size_update(rnd.choice(_SIZES))] if rnd.random() < 0.05 else []
    for _ in range(rnd.randint(0, 5)):
        if rnd.random() < 0.4:
            parts.append(_indexed(rnd.randint(1, 66)))
        else:  # mostly not indexed, as nginx sends them: blocks that leave the table as it was
            kind = "incremental" if rnd.random() < 0.1 else rnd.choice(["without", "never"])
            parts.append(_literal(kind, rnd.choice(_NAME_INDEXES), rnd.choice(_NAMES), rnd.choice(_VALUES),
                                  rnd.random() < 0.5))
    return b"".join(parts)


_decoder_op = st.one_of(
    st.tuples(st.just("new"), _block),
    st.tuples(st.just("again"), st.integers(0, 3)),  # a block seen lately, decoded again
    st.tuples(st.just("again"), st.integers(0, 3)),
    st.tuples(st.just("again"), st.integers(0, 1000)),
    st.tuples(st.just("list limit"), st.sampled_from([40, 100, 65536])),
    st.tuples(st.just("table limit"), st.sampled_from([100, 4096])),
)


def _decoded(decoder: Decoder, block: bytes) -> tuple[str, object]:
    try:
        return "ok", [(type(h), tuple(h)) for h in decoder.decode(block, raw=True)]
    except Exception as exc:  # the same error from both, whatever it is
        return "error", type(exc)


def _table(coder: Decoder | Encoder) -> tuple[object, ...]:
    t = coder.header_table
    return list(t.dynamic_entries), t.maxsize


def _replay_decoders(ops: list[tuple[str, object]]) -> int:
    """The ops on hpack's Decoder and on ours side by side, asserting they never differ; our hits."""
    plain, cached = Decoder(), _CachingDecoder()
    seen: list[bytes] = []
    for op, arg in ops:
        if op == "list limit":
            plain.max_header_list_size = cached.max_header_list_size = arg  # type: ignore[assignment]
            continue
        if op == "table limit":
            plain.max_allowed_table_size = cached.max_allowed_table_size = arg  # type: ignore[assignment]
            continue
        if op == "new":
            seen.append(arg)  # type: ignore[arg-type]
            block = arg
        elif seen:
            block = seen[-1 - arg % len(seen)]  # type: ignore[operator]  # counted back from the newest
        else:
            continue
        assert _decoded(cached, block) == _decoded(plain, block)  # type: ignore[arg-type]
        assert _table(cached) == _table(plain)
    return cached.hits


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_decoder_op, max_size=40))
def test_caching_decoder_decodes_as_hpack_does(ops: list[tuple[str, object]]) -> None:
    _replay_decoders(ops)


def _field(cls: type, name: bytes, value: bytes) -> tuple[bytes, bytes]:
    return (name, value) if cls is tuple else cls(name, value)


_FIELD_CLASSES = [tuple, HeaderTuple, NeverIndexedHeaderTuple]
_fields = st.lists(st.builds(_field, st.sampled_from(_FIELD_CLASSES), st.sampled_from(_NAMES),
                             st.sampled_from(_VALUES)), max_size=5)
_encoder_op = st.one_of(
    st.tuples(st.just("encode"), st.integers(0, 1000), st.booleans()),  # a list from the pool, Huffman or not
    st.tuples(st.just("encode"), st.integers(0, 1000), st.just(True)),
    st.tuples(st.just("size"), st.sampled_from([0, 60, 100, 200, 4096]), st.just(True)),
)


def _replay_encoders(pool: list[list[tuple[bytes, bytes]]], ops: list[tuple[str, int, bool]]) -> int:
    """The ops on hpack's Encoder and on ours side by side, asserting they never differ; our hits."""
    plain, cached = Encoder(), _CachingEncoder()
    for op, arg, huffman in ops:
        if op == "size":
            plain.header_table_size = cached.header_table_size = arg
            continue
        fields = pool[arg % len(pool)]
        # A new list of new tuples each time, as h2 hands them over.
        block = cached.encode([_field(type(f), *f) for f in fields], huffman)
        assert block == plain.encode(list(fields), huffman)
        assert _table(cached) == _table(plain)
        assert (cached.header_table.resized, cached.table_size_changes) == (
            plain.header_table.resized, plain.table_size_changes)
    return cached.hits


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_fields, min_size=1, max_size=5), st.lists(_encoder_op, max_size=40))
def test_caching_encoder_encodes_as_hpack_does(pool: list[list[tuple[bytes, bytes]]],
                                               ops: list[tuple[str, int, bool]]) -> None:
    _replay_encoders(pool, ops)


def test_caches_answer_long_random_sequences_exactly() -> None:
    # Long seeded runs, where the caches answer often and the table turns over (hypothesis's are short).
    rnd = random.Random(1234)
    decoder_ops: list[tuple[str, object]] = []
    for _ in range(5000):
        r = rnd.random()
        if r < 0.3:
            decoder_ops.append(("new", _random_block(rnd)))
        elif r < 0.98:
            decoder_ops.append(("again", rnd.randrange(4) if rnd.random() < 0.9 else rnd.randrange(1 << 30)))
        else:
            decoder_ops.append(rnd.choice([("list limit", rnd.choice([40, 100, 65536])),
                                           ("table limit", rnd.choice([100, 4096]))]))
    assert _replay_decoders(decoder_ops) > 500
    pool = [[_field(rnd.choice(_FIELD_CLASSES), rnd.choice(_NAMES), rnd.choice(_VALUES))
             for _ in range(rnd.randint(0, 5))] for _ in range(6)]
    encoder_ops = [("size", rnd.choice([60, 100, 200, 4096]), True) if rnd.random() < 0.02
                   else ("encode", rnd.randrange(6), rnd.random() < 0.9) for _ in range(5000)]
    assert _replay_encoders(pool, encoder_ops) > 500


def test_never_indexed_is_not_answered_with_the_plain_fields_block() -> None:
    # Equal as tuples, not as HPACK: a NeverIndexedHeaderTuple keeps its field out of the table.
    plain, cached = Encoder(), _CachingEncoder()
    for cls in (tuple, tuple, tuple, NeverIndexedHeaderTuple, tuple):
        fields = [(b":method", b"GET"), _field(cls, b"authorization", b"secret")]
        assert cached.encode(fields) == plain.encode(fields)
    assert cached.hits == 2


def test_repeated_requests_and_responses_are_not_encoded_or_decoded_again(site: Site) -> None:
    # nginx repeats its response blocks byte for byte but for `date`, and adds nothing to the table:
    # its first block on a connection sets the table's size to 0, after which every block leaves it be.
    async def main() -> tuple[list[Http2Stream], _CachingEncoder, _CachingDecoder]:
        conn = await connect(site.nginx.ports[0])
        got = [(await fetch(conn, request("GET", "/hello?same")))[1] for _ in range(20)]
        conn.close()
        return got, conn._h2.encoder, conn._h2.decoder

    streams, encoder, decoder = run(main)
    assert encoder.hits == 18  # the first block adds the fields to the table, the second finds them all there
    assert decoder.header_table.maxsize == 0
    later = streams[1:]
    assert decoder.hits == len(later) - len({tuple(s.headers) for s in later})  # once per new `date`


# --- cost per request -----------------------------------------------------------------------------


def bench(requests: int = 20_000, rounds: int = 5) -> None:
    """Client CPU and wall time per GET over h2c against nginx, 1 and 50 streams, beside HTTP/1.1; then cProfile."""
    import cProfile
    import pstats
    import tempfile
    import time

    from loadgen.http.connection import Connection

    wire = request("GET", "/", host="127.0.0.1:8080")

    async def h2_batch(conn: Http2Connection, streams: int, n: int) -> None:
        async def user() -> None:
            for _ in range(n // streams):
                s = conn.stream()
                assert await s.send(wire, FAR) == 200
                s.body()
        await asyncio.gather(*[user() for _ in range(streams)])

    async def h1_batch(conns: list[Connection], n: int) -> None:
        async def user(c: Connection) -> None:
            for _ in range(n // len(conns)):
                assert await c.send(wire, FAR) == 200
                c.body()
        await asyncio.gather(*[user(c) for c in conns])

    async def main(port2: int, port1: int) -> None:
        loop = asyncio.get_running_loop()
        h1 = [(await loop.create_connection(lambda: Connection(set(), DEFAULT_LIMITS), "127.0.0.1", port1))[1]
              for _ in range(50)]
        h2 = await connect(port2)
        chunk = 500
        variants: dict[str, Callable[[], Awaitable[None]]] = {
            "HTTP/1.1, 1 connection": lambda: h1_batch(h1[:1], chunk),
            "h2c, 1 stream": lambda: h2_batch(h2, 1, chunk),
            "HTTP/1.1, 50 connections": lambda: h1_batch(h1, chunk),
            "h2c, 50 streams": lambda: h2_batch(h2, 50, chunk),
        }
        cpu = dict.fromkeys(variants, 0.0)
        wall = dict.fromkeys(variants, 0.0)
        # Interleaved in small batches, so a busy machine's drift falls on every variant alike.
        for r in range(requests // chunk + 1):
            for name, fn in variants.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                await fn()
                if r:  # the first batch warms up
                    wall[name] += time.perf_counter() - t0
                    cpu[name] += time.thread_time() - c0
        n = requests // chunk * chunk
        for name in variants:
            print(f"{name:26s} client CPU {cpu[name] / n * 1e6:6.1f} us/request, "
                  f"wall {wall[name] / n * 1e6:6.1f} us/request")
        sent = 2 * (requests // chunk + 1) * chunk
        print(f"HPACK blocks not answered from memory: {sent - h2._h2.encoder.hits} of {sent} requests, "
              f"{sent - h2._h2.decoder.hits} of {sent} responses")
        real = h2.transport
        assert real is not None
        h2.transport = _Writes(real)  # so that the profile shows the socket writes on their own
        for streams in (1, 50):
            # CPU time, not wall time: on a shared machine a write that wakes nginx often loses the CPU.
            prof = cProfile.Profile(time.thread_time)
            prof.enable()
            await h2_batch(h2, streams, 5000)
            prof.disable()
            shares: dict[str, float] = {}
            stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
            for (path, _, name), (_, _, tottime, _, _) in stats.items():
                part = next((p for p in ("/h2/", "/hpack/", "/hyperframe/", "http2.py", "logging") if p in path), None)
                names = {"http2.py": "ours (http2.py)", "logging": "hpack's logging", None: "asyncio, uvloop, C calls"}
                key = names.get(part, (part or "").strip("/"))
                if name == "write" and path.endswith("test_http2.py"):
                    key = "socket writes"
                shares[key] = shares.get(key, 0.0) + tottime
            total = sum(shares.values())
            print(f"cProfile (CPU), {streams} stream(s): " + ", ".join(
                f"{k} {v / total * 100:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])))
        h2.transport = real
        h2.close()
        for c in h1:
            c.close()

    with tempfile.TemporaryDirectory() as tmp:
        with Nginx(Path(tmp), [
            'server { listen 127.0.0.1:{port} http2; access_log off; location = / { return 200 "hello"; } }',
            'server { listen 127.0.0.1:{port}; access_log off; location = / { return 200 "hello"; } }',
        ]) as ng:
            uvloop.run(main(ng.ports[0], ng.ports[1]))


class _Writes:
    """A transport whose ``write`` is a Python call, so cProfile sees it (uvloop's own is not)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


if __name__ == "__main__":
    bench(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
