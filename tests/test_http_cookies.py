"""Per-user cookies by RFC 6265 (loadgen.http.cookies) against a real server.

An aiohttp server on 127.0.0.1 (and one with TLS) answers any path with the
``Set-Cookie`` values a test asks for, and with the cookies it received. The
tests fetch those responses over a raw socket (the header bytes as sent, read
as Latin-1 like loadgen's client does), hand the ``Set-Cookie`` values to the
jar, and check which cookies the jar sends for which URL, and what the server
makes of the header. Expiry runs on a fake clock: ``time.time`` is replaced
(http.cookiejar and the jar both read it), nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from email.utils import formatdate
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiohttp_thread import ThreadedApp, ThreadedStreamServer
from loadgen.errors import UsageError
from loadgen.http.cookies import CookieJar, _Request, cookie_header
from servers_tls import Pki, make_pki

pytestmark = pytest.mark.timeout(120)


async def _set_cookies(request: web.Request) -> web.Response:
    """Every path sets the cookies in its ``c`` query values and answers with the cookies it got."""
    resp = web.json_response({"cookies": dict(request.cookies), "header": request.headers.get("Cookie")})
    for value in request.query.getall("c", []):
        resp.headers.add("Set-Cookie", value)
    return resp


def _cookie_app() -> web.Application:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", _set_cookies)
    return app


async def _set_cookies_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """``_set_cookies`` written byte for byte: aiohttp refuses control characters in a header,
    and some servers do send them."""
    head = await reader.readuntil(b"\r\n\r\n")
    target = head.split(b" ", 2)[1].decode("latin-1")
    values = parse_qs(urlsplit(target).query, keep_blank_values=True).get("c", [])
    body = b'{"cookies": {}}'
    fields = "".join(f"Set-Cookie: {v}\r\n" for v in values).encode("latin-1")
    writer.write(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (fields, len(body), body))
    await writer.drain()
    writer.close()


def fetch(url: str, set_cookies: Sequence[str] = (), cookie: str | None = None,
          ssl_context: ssl.SSLContext | None = None) -> tuple[list[str], dict[str, str]]:
    """GET ``url`` asking the server to set ``set_cookies``: (its Set-Cookie values, the cookies it got)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + ("?" + urlencode([("c", v) for v in set_cookies]) if set_cookies else "")
    head = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    if cookie is not None:
        head += f"Cookie: {cookie}\r\n"
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    if ssl_context is not None:
        sock = ssl_context.wrap_socket(sock, server_hostname=parts.hostname)
    with sock:
        sock.sendall((head + "\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200"), lines[0]
    values = [line.partition(":")[2].strip() for line in lines[1:] if line.lower().startswith("set-cookie:")]
    return values, json.loads(body)["cookies"]


def names(header: str | None) -> list[str]:
    """Cookie names in a Cookie header, in order."""
    return [] if header is None else [pair.partition("=")[0] for pair in header.split("; ")]


class Clock:
    """A fake ``time.time``: starts a quarter second past a whole second, moves only when told."""

    def __init__(self) -> None:
        self.now = float(int(time.time())) + 0.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedApp]:
    with ThreadedApp(_cookie_app, access_log=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def raw_server() -> Iterator[ThreadedStreamServer]:
    with ThreadedStreamServer(_set_cookies_raw) as srv:
        yield srv


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[ThreadedApp]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    with ThreadedApp(_cookie_app, ctx, access_log=False) as srv:
        yield srv


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


def test_empty_jar_is_false_and_sends_nothing(server: ThreadedApp) -> None:
    jar = CookieJar()
    assert not jar and len(jar) == 0
    assert jar.header_for(f"http://127.0.0.1:{server.port}/") is None
    values, _ = fetch(f"http://127.0.0.1:{server.port}/")
    jar.store(f"http://127.0.0.1:{server.port}/", values)
    assert values == [] and not jar


def test_path_matching_and_default_path(server: ThreadedApp) -> None:
    base = f"http://127.0.0.1:{server.port}"
    values, _ = fetch(f"{base}/api/login", ["dflt=1", "api=2; Path=/api", "apislash=3; Path=/api/", "root=4; Path=/"])
    assert len(values) == 4
    jar = CookieJar()
    jar.store(f"{base}/api/login", values)
    assert jar and len(jar) == 4
    # No Path: the default path is the request path up to its last "/" (RFC 6265 5.1.4): /api.
    assert sorted(names(jar.header_for(f"{base}/api"))) == ["api", "dflt", "root"]
    assert sorted(names(jar.header_for(f"{base}/api?x=/api/"))) == ["api", "dflt", "root"]
    assert names(jar.header_for(f"{base}/apiX")) == ["root"]
    assert names(jar.header_for(f"{base}/API/x")) == ["root"]  # paths are case-sensitive
    assert names(jar.header_for(f"{base}/")) == ["root"]
    header = jar.header_for(f"{base}/api/x")
    assert sorted(names(header)) == ["api", "apislash", "dflt", "root"]
    assert names(header)[0] == "apislash" and names(header)[-1] == "root"  # longest path first
    # The server reads the header as the cookies they are.
    _, got = fetch(f"{base}/api/x", cookie=header)
    assert got == {"dflt": "1", "api": "2", "apislash": "3", "root": "4"}


def test_a_url_seen_before_gets_a_changed_jar(server: ThreadedApp) -> None:
    """The header cache is dropped whenever a response changes the jar."""
    base = f"http://127.0.0.1:{server.port}"
    jar = CookieJar()
    jar.store(f"{base}/", fetch(f"{base}/", ["a=1"])[0])
    for path in ("/items/1", "/items/2", "/items/1"):
        assert jar.header_for(base + path) == "a=1"
    jar.store(f"{base}/", fetch(f"{base}/", ["a=2", "i=3; Path=/items/2"])[0])
    assert jar.header_for(f"{base}/items/1") == "a=2"
    assert jar.header_for(f"{base}/items/2") == "i=3; a=2"
    assert jar.header_for(f"{base}/items/2/x") == "i=3; a=2"
    assert jar.header_for(f"{base}/items/22") == "a=2"


def test_max_age_zero_and_past_expires_delete(server: ThreadedApp) -> None:
    base = f"http://127.0.0.1:{server.port}"
    jar = CookieJar()
    jar.store(f"{base}/", fetch(f"{base}/", ["m=1", "e=2", "keep=3"])[0])
    assert sorted(names(jar.header_for(base + "/"))) == ["e", "keep", "m"]
    gone = ["m=; Max-Age=0", "e=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
    jar.store(f"{base}/", fetch(f"{base}/", gone)[0])
    assert jar.header_for(base + "/") == "keep=3"
    assert jar.as_dict() == {"keep": "3"}
    # A deletion names domain and path: one for another path leaves the cookie alone.
    jar.store(f"{base}/", fetch(f"{base}/", ["keep=; Max-Age=0; Path=/other"])[0])
    assert jar.header_for(base + "/") == "keep=3"
    jar.store(f"{base}/", fetch(f"{base}/", ["keep=; Max-Age=-1"])[0])
    assert not jar and jar.header_for(base + "/") is None


def test_max_age_and_expires_run_out(server: ThreadedApp, clock: Clock) -> None:
    base = f"http://127.0.0.1:{server.port}"
    soon = formatdate(clock.now + 100, usegmt=True)
    values, _ = fetch(f"{base}/", [
        "short=1; Max-Age=1", f"dated=2; Expires={soon}", "session=3",
        "wins=4; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=1000",  # Max-Age has precedence
    ])
    jar = CookieJar()
    jar.store(f"{base}/", values)
    assert sorted(names(jar.header_for(base + "/"))) == ["dated", "session", "short", "wins"]
    clock.now += 0.5  # still inside the second Max-Age=1 gives
    assert "short" in names(jar.header_for(base + "/"))
    clock.now += 0.5
    assert sorted(names(jar.header_for(base + "/"))) == ["dated", "session", "wins"]
    assert jar.get("short") is None and len(jar) == 3
    clock.now += 100
    assert sorted(names(jar.header_for(base + "/"))) == ["session", "wins"]
    clock.now += 1000
    assert jar.header_for(base + "/") == "session=3"


def test_the_last_cookie_running_out_empties_the_jar(server: ThreadedApp, clock: Clock) -> None:
    base = f"http://127.0.0.1:{server.port}"
    jar = CookieJar()
    jar.store(f"{base}/", fetch(f"{base}/", ["t=1; Max-Age=5"])[0])
    assert jar and jar.header_for(base + "/") == "t=1"
    clock.now += 5
    assert not jar and jar.as_dict() == {} and jar.header_for(base + "/") is None


def test_host_only_and_domain_cookies_on_loopback(server: ThreadedApp) -> None:
    loc, ip = f"http://localhost:{server.port}", f"http://127.0.0.1:{server.port}"
    jar = CookieJar()
    jar.store(loc + "/", fetch(loc + "/", ["l=1", "ld=2; Domain=localhost"])[0])
    jar.store(ip + "/", fetch(ip + "/", ["i=3", "id=4; Domain=127.0.0.1", "foreign=5; Domain=localhost"])[0])
    # A cookie for localhost is not sent to 127.0.0.1, nor the other way round.
    assert sorted(names(jar.header_for(loc + "/"))) == ["l", "ld"]
    assert sorted(names(jar.header_for(ip + "/"))) == ["i", "id"]
    # Cookies are not kept apart by port (RFC 6265 8.5).
    assert sorted(names(jar.header_for("http://localhost:1/x"))) == ["l", "ld"]
    _, got = fetch(loc + "/", cookie=jar.header_for(loc + "/"))
    assert got == {"l": "1", "ld": "2"}
    assert jar.get("ld", domain="localhost") == "2" and jar.get("l", domain="localhost", path="/") == "1"
    assert jar.get("l", domain="127.0.0.1") is None


def test_an_ip_host_takes_a_domain_that_is_itself_only(server: ThreadedApp) -> None:
    ip = f"http://127.0.0.1:{server.port}"
    values, _ = fetch(ip + "/", ["ok=1; Domain=127.0.0.1", "tail=2; Domain=.0.0.1", "name=3; Domain=example.com"])
    jar = CookieJar()
    jar.store(ip + "/", values)
    assert jar.header_for(ip + "/") == "ok=1"
    assert jar.header_for("http://10.0.0.1/") is None and len(jar) == 1


def test_host_only_cookies_stay_on_their_host(server: ThreadedApp) -> None:
    """Host names the resolver does not know: the server's values, stored as a response from them."""
    values, _ = fetch(f"http://127.0.0.1:{server.port}/", [
        "host=1", "dom=2; Domain=example.test", "dotted=3; Domain=.example.test",
        "sub=4; Domain=deep.app.example.test", "other=5; Domain=example.org", "tld=6; Domain=test",
    ])
    jar = CookieJar()
    jar.store("https://app.example.test/", values)
    assert sorted(names(jar.header_for("https://app.example.test/"))) == ["dom", "dotted", "host"]
    assert sorted(names(jar.header_for("https://x.app.example.test/"))) == ["dom", "dotted"]
    assert sorted(names(jar.header_for("https://example.test/"))) == ["dom", "dotted"]
    assert jar.header_for("https://badexample.test/") is None
    assert jar.header_for("https://example.org/") is None and len(jar) == 3


def test_secure_cookies_go_over_https_only(server: ThreadedApp, tls_server: ThreadedApp, pki: Pki) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    tls = f"https://127.0.0.1:{tls_server.port}"
    sent = ["s=1; Secure", "h=2; HttpOnly", "p=3; Secure; HttpOnly; SameSite=Strict"]
    values, _ = fetch(tls + "/", sent, ssl_context=ctx)
    jar = CookieJar()
    jar.store(tls + "/", values)
    header = jar.header_for(tls + "/")
    assert sorted(names(header)) == ["h", "p", "s"]  # HttpOnly changes nothing for a client
    _, got = fetch(tls + "/", cookie=header, ssl_context=ctx)
    assert got == {"s": "1", "h": "2", "p": "3"}
    # The same host over plain http: the Secure ones stay home.
    assert jar.header_for(f"http://127.0.0.1:{server.port}/") == "h=2"
    assert jar.header_for(f"http://127.0.0.1:{tls_server.port}/") == "h=2"


def test_malformed_set_cookie_values_are_ignored(server: ThreadedApp, raw_server: ThreadedStreamServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    bad = [
        "", "=", ";", "=novalue", "; Path=/", "bad1=x; Max-Age=soon", "bad2=x; Domain=", "bad3=x; Port=\"x\"",
        "bad4\x01=x", "bad5=x\x7f", "bad6=a\x00b", "bad7=x; Domain=.", "bad8=x; Version=abc",
        "noeq", "odd=\"unclosed", "lax=1; Expires=not a date", "many=1;;;; ;",
        "x" * 2000 + "=1", "long=" + "v" * 3000, "\xe9t\xe9=caf\xe9",
    ]
    values, _ = fetch(f"http://127.0.0.1:{raw_server.port}/", [*bad, "good=1"])
    assert values == [*bad, "good=1"]
    jar = CookieJar()
    jar.store(base + "/", values)  # must not raise
    header = jar.header_for(base + "/")
    assert header is not None and "good=1" in header.split("; ")
    # A control character in a name or value drops the cookie (RFC 6265bis 5.6).
    assert not {"bad4\x01", "bad5", "bad6"} & set(names(header))
    assert not any(ch in header for ch in "\x00\x01\x7f\r\n")
    # What remains can be sent: Latin-1, one line, and the server parses the good cookie from it.
    header.encode("latin-1")
    _, got = fetch(base + "/", cookie=header)
    assert got.get("good") == "1"
    assert jar.get("lax") == "1"  # an Expires that is no date is ignored, the cookie kept (RFC 6265 5.2.1)


def test_many_cookies(server: ThreadedApp) -> None:
    base = f"http://127.0.0.1:{server.port}"
    jar = CookieJar()
    for batch in range(5):
        values, _ = fetch(base + "/", [f"c{batch}_{i}={i}; Path=/p{i % 3}" for i in range(60)])
        jar.store(base + "/", values)
    assert len(jar) == 300 and len(jar.as_dict()) == 300
    for p in range(3):
        sent = names(jar.header_for(f"{base}/p{p}/x"))
        assert len(sent) == 100 and all(int(n.split("_")[1]) % 3 == p for n in sent)
    assert jar.header_for(f"{base}/") is None
    _, got = fetch(f"{base}/p1/x", cookie=jar.header_for(f"{base}/p1/x"))
    assert len(got) == 100 and got["c4_58"] == "58"


def test_scenario_set_get_as_dict_clear(server: ThreadedApp) -> None:
    loc, ip = f"http://localhost:{server.port}", f"http://127.0.0.1:{server.port}"
    jar = CookieJar()
    jar.set("token", "abc", domain="127.0.0.1")
    jar.set("lang", "en", domain="localhost", path="/app")
    jar.set("t", "1", domain="Example.TEST")
    assert jar.header_for(ip + "/any") == "token=abc"
    assert jar.header_for(loc + "/") is None and jar.header_for(loc + "/app/x") == "lang=en"
    assert jar.header_for("http://api.example.test/") == "t=1"  # a domain cookie: subdomains too
    _, got = fetch(ip + "/", cookie=jar.header_for(ip + "/"))
    assert got == {"token": "abc"}
    # A server's cookie of the same name on a longer path: get and as_dict give the one sent first.
    jar.store(ip + "/app/login", fetch(ip + "/app/login", ["token=srv; Path=/app"])[0])
    assert jar.header_for(ip + "/app/x") == "token=srv; token=abc"
    assert jar.get("token") == "srv" and jar.get("token", path="/") == "abc"
    assert jar.get("token", domain="127.0.0.1", path="/app") == "srv" and jar.get("token", domain="localhost") is None
    assert jar.as_dict() == {"token": "srv", "lang": "en", "t": "1"}
    jar.set("token", "new", domain="127.0.0.1")  # replaces the one with the same domain and path
    assert jar.get("token", path="/") == "new" and len(jar) == 4
    jar.clear()
    assert not jar and jar.as_dict() == {} and jar.header_for(ip + "/") is None


@pytest.mark.parametrize(("name", "value", "domain", "path"), [
    ("", "v", "h.test", "/"), ("a b", "v", "h.test", "/"), ("a=b", "v", "h.test", "/"), ("a;", "v", "h.test", "/"),
    ("a", "x;y", "h.test", "/"), ("a", "x\r\ny", "h.test", "/"), ("a", "v", "", "/"), ("a", "v", "h.test", "rel"),
])
def test_set_refuses_what_cannot_be_sent(name: str, value: str, domain: str, path: str) -> None:
    jar = CookieJar()
    with pytest.raises(UsageError):
        jar.set(name, value, domain=domain, path=path)
    assert not jar


def test_a_relative_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        CookieJar().header_for("/api")


def test_credentials_in_the_url_are_no_part_of_the_host(server: ThreadedApp) -> None:
    base = f"127.0.0.1:{server.port}"
    jar = CookieJar()
    jar.store(f"http://user:pw@{base}/", fetch(f"http://{base}/", ["a=1"])[0])
    assert jar.header_for(f"http://{base}/") == "a=1" and jar.header_for(f"http://u:p@{base}/") == "a=1"


def test_cookie_header_for_a_requests_own_cookies() -> None:
    assert cookie_header({"a": "1", "b": "two"}) == "a=1; b=two"
    assert cookie_header({}) == ""


_URLS = ["http://h.test/", "https://h.test/a/b", "http://x.h.test/a", "http://h.test/ab?q=1", "https://localhost:8/a/",
         "http://localhost/a/b/c", "http://127.0.0.1:9/a", "http://127.0.0.1/", "https://other.test/a/b"]
_SET = st.builds(
    lambda n, path, dom, age, sec: "; ".join(filter(None, [f"{n}=v", path, dom, age, sec])),
    st.sampled_from("abc"),
    st.sampled_from(["", "Path=/", "Path=/a", "Path=/a/", "Path=/a/b", "Path=/ab"]),
    st.sampled_from(["", "Domain=h.test", "Domain=localhost", "Domain=127.0.0.1"]),
    st.sampled_from(["", "Max-Age=0", "Max-Age=1", "Max-Age=3"]),
    st.sampled_from(["", "Secure"]),
)
_OPS = st.lists(st.one_of(
    st.tuples(st.just("store"), st.sampled_from(_URLS), st.lists(_SET, min_size=1, max_size=3)),
    st.tuples(st.just("get"), st.sampled_from(_URLS), st.just([])),
    st.tuples(st.just("tick"), st.just(""), st.just([])),
), max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OPS)
def test_the_header_cache_never_changes_an_answer(ops: list[tuple[str, str, list[str]]]) -> None:
    """Whatever the jar saw and however time moved, the cached header is http.cookiejar's own answer."""
    clock = Clock()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time", clock)
        jar = CookieJar()
        for op, url, values in ops:
            if op == "store":
                jar.store(url, values)
            elif op == "tick":
                clock.now += 1
            for u in _URLS:
                assert jar.header_for(u) == jar._uncached(_Request(u)), (op, u)
            assert bool(jar) == (len(jar) > 0)
