"""Redirects, followed by the client as requests follows them, against real aiohttp servers over loopback.

Written before the client follows redirects (issue 12): every test here fails
until it does. The servers log every request they get (method, target,
headers, raw body, the client's port), so each rule is checked by what
really went over the wire, and the recorder by what one call left in it: one
row, under the call's own name and method, with the final status.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from aiohttp_thread import ThreadedApp
from clients import rows as _rows
from clients import run_bounded as _run
from loadgen.engine import histogram as hdr
from loadgen.engine.recorder import EndpointInterval, Recorder
from loadgen.http.client import Client
from loadgen.http.response import Response
from servers_tls import make_pki

pytestmark = pytest.mark.timeout(90)

HOP_SLEEP_S = 0.055  # each /slow hop waits this long before answering


# -- the servers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as a server received it."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # names in lower case
    body: bytes
    host: str
    peer_port: int  # the client's port: one value per connection


def _app(seen: list[Seen]) -> web.Application:
    @web.middleware
    async def log(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
        body = await request.read()  # cached by aiohttp: handlers may read it again
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append(Seen(request.method, request.path_qs, {k.lower(): v for k, v in request.headers.items()},
                         body, request.host, peer[1] if peer else 0))
        return await handler(request)

    def moved(code: int, location: str | None) -> web.Response:
        headers = {} if location is None else {"Location": location}
        return web.Response(status=code, headers=headers, text=None if code == 304 else "moved")

    async def redir(request: web.Request) -> web.Response:
        # /redir/CODE?to=LOCATION: answer CODE with that Location (none without ?to=).
        return moved(int(request.match_info["code"]), request.query.get("to"))

    async def target(request: web.Request) -> web.Response:
        return web.json_response({"method": request.method, "target": request.path_qs})

    async def chain(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return moved(302, f"/chain/{n - 1}") if n > 0 else web.Response(text="end")

    async def loop_self(request: web.Request) -> web.Response:
        return moved(302, "/loop/self")

    async def loop_a(request: web.Request) -> web.Response:
        return moved(302, "/loop/b")

    async def loop_b(request: web.Request) -> web.Response:
        # Back to A as an absolute URL: a loop is found on resolved URLs, not on Location strings.
        return moved(302, str(request.url.with_path("/loop/a").with_query(None)))

    async def post_then_get(request: web.Request) -> web.Response:
        return moved(303, "/pm") if request.method == "POST" else web.Response(text="got")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(HOP_SLEEP_S)
        n = int(request.match_info["n"])
        return moved(302, f"/slow/{n - 1}") if n > 0 else web.Response(text="slow end")

    async def cookie_1(request: web.Request) -> web.Response:
        resp = moved(302, "/ck/2")
        resp.set_cookie("first", "1")
        return resp

    async def cookie_2(request: web.Request) -> web.Response:
        resp = moved(302, "/ck/echo")
        resp.set_cookie("second", "2")
        return resp

    async def cookie_echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Cookie", ""))

    async def relative(request: web.Request) -> web.Response:
        # /rel/...?to=LOCATION redirects there; without ?to= it is the end of the chain.
        to = request.query.get("to")
        return moved(302, to) if to is not None else web.json_response({"target": request.path_qs})

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status")

    app = web.Application(middlewares=[log], client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/redir/{code}", redir)
    app.router.add_route("*", "/target", target)
    app.router.add_route("*", "/chain/{n}", chain)
    app.router.add_route("*", "/loop/self", loop_self)
    app.router.add_route("*", "/loop/a", loop_a)
    app.router.add_route("*", "/loop/b", loop_b)
    app.router.add_route("*", "/pm", post_then_get)
    app.router.add_route("*", "/slow/{n}", slow)
    app.router.add_get("/ck/1", cookie_1)
    app.router.add_get("/ck/2", cookie_2)
    app.router.add_get("/ck/echo", cookie_echo)
    app.router.add_route("*", "/rel/{tail:.*}", relative)
    app.router.add_route("*", "/status/{code}", status)
    return app


class _Server(ThreadedApp):
    """The app above on 127.0.0.1 (TLS when given a context); what it was sent goes to ``seen``."""

    def __init__(self, ssl_ctx: ssl.SSLContext | None = None, ca_cert: Path | None = None) -> None:
        self.seen: list[Seen] = []
        self.ca_cert = ca_cert  # the CA a client must trust (TLS only)
        super().__init__(lambda: _app(self.seen), ssl_ctx)

    def paths(self) -> list[str]:
        return [s.target for s in self.seen]


@pytest.fixture(scope="module")
def _server_a() -> Iterator[_Server]:
    with _Server() as s:
        yield s


@pytest.fixture(scope="module")
def _server_b() -> Iterator[_Server]:
    with _Server() as s:
        yield s


@pytest.fixture(scope="module")
def _server_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    with _Server(ctx, pki.ca_cert) as s:
        yield s


@pytest.fixture
def a(_server_a: _Server) -> _Server:
    """The main server, its log emptied for this test."""
    _server_a.seen.clear()
    return _server_a


@pytest.fixture
def b(_server_b: _Server) -> _Server:
    """A second origin (another port), its log emptied for this test."""
    _server_b.seen.clear()
    return _server_b


@pytest.fixture
def tls(_server_tls: _Server) -> _Server:
    """The same app over TLS, its log emptied for this test."""
    _server_tls.seen.clear()
    return _server_tls


# -- helpers ------------------------------------------------------------------------------


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _one_row(rec: Recorder, key: str) -> EndpointInterval:
    """The only row recorded, which must be ``key`` (no row for an intermediate URL)."""
    rows = _rows(rec)
    assert list(rows) == [key]
    return rows[key]


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body split by its boundary (RFC 7578): name -> (filename, content)."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    assert boundary, content_type
    delim = b"\r\n--" + boundary.group(1).encode()
    segments = (b"\r\n" + body).split(delim)
    assert segments[0] == b"" and segments[-1].startswith(b"--"), "not one well-formed multipart body"
    parts: dict[str, tuple[str | None, bytes]] = {}
    for seg in segments[1:-1]:
        head, sep, content = seg.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        assert sep, "a part without a blank line after its headers"
        disposition = head.decode("latin-1")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        assert name, disposition
        parts[name.group(1)] = (filename.group(1) if filename else None, content)
    return parts


# -- each status x method: what the next hop sends ------------------------------------------

_CODES = (301, 302, 303, 307, 308)
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_WITH_BODY = ("POST", "PUT", "PATCH")
_DOC = {"order": 17, "items": ["a", "b"]}


def _next_method(code: int, method: str) -> str:
    """The method of the hop after a ``code`` answer to ``method`` (as requests and browsers do)."""
    if code == 303:
        return "HEAD" if method == "HEAD" else "GET"
    if code in (301, 302) and method == "POST":
        return "GET"
    return method


@pytest.mark.parametrize("method", _METHODS)
@pytest.mark.parametrize("code", _CODES)
def test_each_status_and_method_sends_the_next_hop_as_the_rules_say(a: _Server, code: int, method: str) -> None:
    body = json.dumps(_DOC, separators=(",", ":")).encode()

    async def go(c: Client) -> Response:
        kw: dict[str, Any] = {"json": _DOC} if method in _WITH_BODY else {}
        return await c.request(method, f"/redir/{code}?to=/target", **kw)

    r, rec = _run(go, a.url())
    assert r.status == 200 and r.error is None and r.ok
    assert _path(r.url) == "/target"
    assert [(h.status, _path(h.url), h.headers["Location"]) for h in r.history] == [
        (code, f"/redir/{code}?to=/target", "/target")
    ]
    first, second = a.seen
    assert (first.method, first.target) == (method, f"/redir/{code}?to=/target")
    assert first.body == (body if method in _WITH_BODY else b"")
    expected = _next_method(code, method)
    assert (second.method, second.target) == (expected, "/target")
    if method in _WITH_BODY and code in (307, 308):
        # 307/308: the same method, body and Content-Type again.
        assert second.body == body
        assert second.headers.get("content-type") == "application/json"
    elif method in _WITH_BODY:
        # Any other redirect sends no body (a PUT on a 302 stays a PUT, bodiless, as in requests),
        # and so no Content-Type.
        assert second.body == b""
        assert "content-type" not in second.headers
        assert second.headers.get("content-length", "0") == "0"
    # One call, one row: the original method and name, the final status.
    row = _one_row(rec, f"{method} /redir/{code}")
    assert row.requests == 1 and row.errors == 0 and row.status_codes == {200: 1}


def test_a_named_call_is_one_row_under_its_name_and_first_method(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.post("/redir/303?to=/target", json={"user": "u"}, name="login")

    r, rec = _run(go, a.url())
    assert r.status == 200 and [s.method for s in a.seen] == ["POST", "GET"]
    row = _one_row(rec, "POST login")
    assert row.requests == 1 and row.status_codes == {200: 1}


def test_a_request_without_redirect_has_an_empty_history(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.get("/target")

    r, _ = _run(go, a.url())
    assert r.status == 200 and list(r.history) == [] and _path(r.url) == "/target"


# -- the bodies a 307/308 sends again --------------------------------------------------------


@pytest.mark.parametrize("code", [307, 308])
@pytest.mark.parametrize("kind", ["json", "bytes", "form"])
def test_307_and_308_send_the_same_body_again(a: _Server, code: int, kind: str) -> None:
    given: dict[str, Any] = {
        "json": {"json": {"n": 1, "s": "é"}},
        "bytes": {"data": bytes(range(256)) * 40, "headers": {"Content-Type": "application/octet-stream"}},
        "form": {"data": {"a": "1", "b": ["x", "y z"]}},
    }[kind]

    async def go(c: Client) -> Response:
        return await c.post(f"/redir/{code}?to=/target", **given)

    r, rec = _run(go, a.url())
    assert r.status == 200 and r.json() == {"method": "POST", "target": "/target"}
    first, second = a.seen
    assert first.body and second.body == first.body
    assert second.method == "POST"
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["content-length"] == str(len(first.body))
    assert _one_row(rec, f"POST /redir/{code}").status_codes == {200: 1}


@pytest.mark.parametrize("code", [307, 308])
def test_307_and_308_stream_a_file_upload_again(a: _Server, tmp_path: Path, code: int) -> None:
    # Larger than a few 64 KiB chunks, so the upload is streamed, and the replay must rewind the file.
    content = os.urandom(300 * 1024 + 7)
    path = tmp_path / "payload.bin"
    path.write_bytes(content)

    async def go(c: Client) -> Response:
        with path.open("rb") as fh:
            return await c.post(
                f"/redir/{code}?to=/target",
                data={"note": "hi"},
                files={"upload": ("payload.bin", fh, "application/octet-stream")},
            )

    r, rec = _run(go, a.url())
    assert r.status == 200 and r.error is None
    first, second = a.seen
    assert (first.method, second.method, second.target) == ("POST", "POST", "/target")
    assert second.body == first.body
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["content-type"].startswith("multipart/form-data")
    for hop in (first, second):
        assert hop.headers["content-length"] == str(len(hop.body))
        parts = _multipart(hop.body, hop.headers["content-type"])
        assert parts["note"] == (None, b"hi")
        assert parts["upload"] == ("payload.bin", content)
    assert _one_row(rec, f"POST /redir/{code}").requests == 1


# -- what a redirect may carry to the next hop ---------------------------------------------------


def test_cookies_set_by_any_hop_go_to_the_next_hops_of_that_user_only(a: _Server) -> None:
    async def go(c: Client) -> tuple[Response, Response, Response]:
        r = await c.get("/ck/1")
        again = await c.get("/ck/echo")
        other = Client(c._session, a.url())  # a second user of the same session: its own jar
        try:
            return r, again, await other.get("/ck/echo")
        finally:
            other.close()

    (r, again, other), rec = _run(go, a.url())
    assert r.status == 200 and [h.status for h in r.history] == [302, 302]
    hop1, hop2, final, later, other_user = a.seen
    assert "cookie" not in hop1.headers
    assert hop2.headers["cookie"] == "first=1"
    assert sorted(final.headers["cookie"].split("; ")) == ["first=1", "second=2"]
    assert sorted(r.text.split("; ")) == ["first=1", "second=2"]
    assert sorted(later.headers["cookie"].split("; ")) == ["first=1", "second=2"]
    assert "cookie" not in other_user.headers and other.text == ""
    assert set(_rows(rec)) == {"GET /ck/1", "GET /ck/echo"}


_AUTH_SOURCES = ("headers", "client", "auth")
_AUTH_SENT = {"headers": "Bearer from-headers", "client": "Bearer from-client",
              "auth": "Basic " + base64.b64encode(b"user:pw").decode()}


async def _authorized_get(c: Client, url: str, source: str) -> Response:
    """A GET carrying an Authorization header set the way ``source`` names."""
    if source == "headers":
        return await c.get(url, headers={"Authorization": _AUTH_SENT["headers"]})
    if source == "client":
        c.headers["Authorization"] = _AUTH_SENT["client"]
        return await c.get(url)
    return await c.get(url, auth=("user", "pw"))


@pytest.mark.parametrize("source", _AUTH_SOURCES)
def test_authorization_is_kept_on_the_same_host(a: _Server, source: str) -> None:
    async def go(c: Client) -> Response:
        return await _authorized_get(c, "/redir/302?to=/target", source)

    r, _ = _run(go, a.url())
    assert r.status == 200
    assert [s.headers.get("authorization") for s in a.seen] == [_AUTH_SENT[source]] * 2


@pytest.mark.parametrize("source", _AUTH_SOURCES)
def test_authorization_is_dropped_on_a_hop_to_another_host(a: _Server, source: str) -> None:
    # Same server, same port, another host name: only the host differs.
    elsewhere = a.url("/target", host="localhost")

    async def go(c: Client) -> Response:
        return await _authorized_get(c, f"/redir/302?to={elsewhere}", source)

    r, _ = _run(go, a.url())
    assert r.status == 200 and r.url == elsewhere
    first, second = a.seen
    assert first.headers.get("authorization") == _AUTH_SENT[source]
    assert second.host == f"localhost:{a.port}" and second.target == "/target"
    assert "authorization" not in second.headers


@pytest.mark.parametrize("source", _AUTH_SOURCES)
def test_authorization_is_dropped_from_https_to_http(a: _Server, tls: _Server, source: str) -> None:
    plain = a.url("/target")

    async def go(c: Client) -> Response:
        return await _authorized_get(c, f"/redir/302?to={plain}", source)

    from loadgen.http.tls import TlsOptions  # here: the TLS options arrive with the connector (issue 12)

    r, _ = _run(go, tls.url(), tls=TlsOptions(ca_bundle=str(tls.ca_cert)))
    assert r.status == 200 and r.url == plain
    assert [s.headers.get("authorization") for s in tls.seen] == [_AUTH_SENT[source]]
    assert [s.target for s in a.seen] == ["/target"] and "authorization" not in a.seen[0].headers


# -- where a Location leads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start,location,final",
    [
        ("/rel/a/b", "c", "/rel/a/c"),
        ("/rel/a/b/", "d", "/rel/a/b/d"),
        ("/rel/a/b", "../x", "/rel/x"),
        ("/rel/a/b", "/rel/top", "/rel/top"),
        ("/rel/q", "?done=1", "/rel/q?done=1"),
        ("/rel/a/b", "  e  ", "/rel/a/e"),  # surrounding blanks are not part of it
        ("/rel/a/b", "f#section", "/rel/a/f"),  # a fragment is never sent
    ],
)
def test_a_relative_location_is_resolved_against_the_current_url(
    a: _Server, start: str, location: str, final: str
) -> None:
    async def go(c: Client) -> Response:
        return await c.get(start, params={"to": location})

    r, rec = _run(go, a.url())
    assert r.status == 200 and r.json() == {"target": final}
    assert [urlsplit(t).path for t in a.paths()] == [start, urlsplit(final).path]
    assert a.paths()[1] == final
    assert _path(r.url) == final and r.url == a.url(final)
    assert _one_row(rec, f"GET {start}").status_codes == {200: 1}


@pytest.mark.parametrize("form", ["absolute", "scheme-relative"])
def test_a_redirect_to_another_origin_uses_a_connection_of_its_own(a: _Server, b: _Server, form: str) -> None:
    target = b.url("/target")
    location = target if form == "absolute" else target.removeprefix("http:")

    async def go(c: Client) -> list[Response]:
        return [await c.get(f"/redir/302?to={location}") for _ in range(2)]

    rs, rec = _run(go, a.url())
    assert all(r.status == 200 and r.url == target for r in rs)
    assert [h.url for h in rs[0].history] == [a.url(f"/redir/302?to={location}")]
    assert a.paths() == [f"/redir/302?to={location}"] * 2
    assert b.paths() == ["/target"] * 2 and {s.host for s in b.seen} == {f"127.0.0.1:{b.port}"}
    # Two origins, two kept-alive connections: each server saw both calls on one connection.
    assert len({s.peer_port for s in a.seen}) == 1 and len({s.peer_port for s in b.seen}) == 1
    row = _one_row(rec, "GET /redir/302")
    assert row.requests == 2 and row.status_codes == {200: 2}


# -- responses that end the chain ---------------------------------------------------------------------


def _assert_final_3xx(r: Response, rec: Recorder, server: _Server, key: str, code: int) -> None:
    """The 3xx itself is the call's response: not followed, not an error, recorded once."""
    assert r.status == code and r.error is None and r.ok and list(r.history) == []
    assert len(server.seen) == 1
    row = _one_row(rec, key)
    assert row.requests == 1 and row.errors == 0 and row.status_codes == {code: 1}


@pytest.mark.parametrize("code", _CODES)
def test_a_3xx_without_location_is_the_final_response(a: _Server, code: int) -> None:
    async def go(c: Client) -> Response:
        return await c.get(f"/redir/{code}")

    r, rec = _run(go, a.url())
    _assert_final_3xx(r, rec, a, f"GET /redir/{code}", code)


@pytest.mark.parametrize("code", [300, 304])
def test_statuses_outside_the_followed_five_are_final_even_with_a_location(a: _Server, code: int) -> None:
    async def go(c: Client) -> Response:
        return await c.get(f"/redir/{code}?to=/target")

    r, rec = _run(go, a.url())
    _assert_final_3xx(r, rec, a, f"GET /redir/{code}", code)


@pytest.mark.parametrize(
    "location",
    [
        "ftp://127.0.0.1/file",
        "javascript:alert(1)",
        "mailto:someone@example.com",
        "https://:8443/x",  # no host
        "http://[::1/x",  # not a URL
        "http://127.0.0.1:99999/x",  # no such port
    ],
)
def test_a_location_that_is_not_an_http_url_is_the_final_response(a: _Server, location: str) -> None:
    async def go(c: Client) -> Response:
        return await c.get("/redir/302", params={"to": location})

    r, rec = _run(go, a.url())
    _assert_final_3xx(r, rec, a, "GET /redir/302", 302)
    assert r.headers["Location"] == location


def test_allow_redirects_false_returns_the_3xx_itself(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.post("/redir/307?to=/target", json={"k": 1}, allow_redirects=False)

    r, rec = _run(go, a.url())
    _assert_final_3xx(r, rec, a, "POST /redir/307", 307)
    assert r.headers["Location"] == "/target" and _path(r.url) == "/redir/307?to=/target"


def test_max_redirects_0_on_the_session_never_follows(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.get("/redir/302?to=/target")

    r, rec = _run(go, a.url(), max_redirects=0)
    _assert_final_3xx(r, rec, a, "GET /redir/302", 302)


# -- loops and the limit ---------------------------------------------------------------------------------


def _assert_failed_once(r: Response, rec: Recorder, key: str, kind: str) -> None:
    assert r.status == 0 and r.error == kind and not r.ok
    row = _one_row(rec, key)
    assert row.requests == 1 and row.errors == 1
    assert row.errors_by_kind == {kind: 1} and row.status_codes == {}


def test_a_redirect_to_itself_is_a_loop(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.get("/loop/self")

    r, rec = _run(go, a.url())
    _assert_failed_once(r, rec, "GET /loop/self", "redirect_loop")
    assert a.paths() == ["/loop/self"]  # found on the Location, never sent again


def test_a_to_b_to_a_is_a_loop(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.get("/loop/a")

    r, rec = _run(go, a.url())
    _assert_failed_once(r, rec, "GET /loop/a", "redirect_loop")
    assert a.paths() == ["/loop/a", "/loop/b"]


def test_a_loop_after_a_303_is_found_under_the_new_method(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.post("/redir/303?to=/loop/self", data=b"form")

    r, rec = _run(go, a.url())
    _assert_failed_once(r, rec, "POST /redir/303", "redirect_loop")
    # The GET to /loop/self is visited once; its Location back to itself is the loop.
    assert [(s.method, s.target) for s in a.seen] == [("POST", "/redir/303?to=/loop/self"), ("GET", "/loop/self")]


def test_the_same_url_with_another_method_is_not_a_loop(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.post("/pm", data=b"form")

    r, rec = _run(go, a.url())
    assert r.status == 200 and r.text == "got" and [h.status for h in r.history] == [303]
    assert [(s.method, s.target) for s in a.seen] == [("POST", "/pm"), ("GET", "/pm")]
    assert _one_row(rec, "POST /pm").status_codes == {200: 1}


def _chain(a: _Server, lengths: tuple[int, ...], **session_kw: Any) -> tuple[list[Response], Recorder]:
    """Follow /chain/N (N redirects then a 200) for each N, one call each."""
    async def go(c: Client) -> list[Response]:
        return [await c.get(f"/chain/{n}") for n in lengths]

    return _run(go, a.url(), **session_kw)


def test_the_default_limit_is_10_redirects(a: _Server) -> None:
    (ok, too_many), rec = _chain(a, (10, 11))
    assert ok.status == 200 and ok.text == "end" and len(ok.history) == 10
    assert [_path(h.url) for h in ok.history] == [f"/chain/{n}" for n in range(10, 0, -1)]
    assert too_many.status == 0 and too_many.error == "too_many_redirects"
    # 11 + 1 requests for the first call, then 11 for the second: the 11th Location is not followed.
    assert a.paths() == [f"/chain/{n}" for n in range(10, -1, -1)] + [f"/chain/{n}" for n in range(11, 0, -1)]
    rows = _rows(rec)
    assert set(rows) == {"GET /chain/10", "GET /chain/11"}
    assert rows["GET /chain/10"].status_codes == {200: 1} and rows["GET /chain/10"].errors == 0
    assert rows["GET /chain/11"].errors_by_kind == {"too_many_redirects": 1} and rows["GET /chain/11"].requests == 1


def test_the_session_limit_allows_exactly_n(a: _Server) -> None:
    (ok, too_many), rec = _chain(a, (3, 4), max_redirects=3)
    assert ok.status == 200 and len(ok.history) == 3
    assert too_many.status == 0 and too_many.error == "too_many_redirects"
    assert len(a.seen) == 4 + 4
    rows = _rows(rec)
    assert rows["GET /chain/3"].status_codes == {200: 1}
    assert rows["GET /chain/4"].errors == 1 and rows["GET /chain/4"].errors_by_kind == {"too_many_redirects": 1}


def test_the_call_limit_overrides_the_sessions(a: _Server) -> None:
    async def go(c: Client) -> list[Response]:
        return [
            await c.get("/chain/2", max_redirects=2),
            await c.get("/chain/3", max_redirects=2),
            await c.get("/chain/5", max_redirects=5),  # above the session's 3
        ]

    (two, three, five), rec = _run(go, a.url(), max_redirects=3)
    assert two.status == 200 and len(two.history) == 2
    assert three.status == 0 and three.error == "too_many_redirects"
    assert five.status == 200 and len(five.history) == 5
    assert _rows(rec)["GET /chain/3"].errors_by_kind == {"too_many_redirects": 1}


# -- timing, expect= and checks: the whole call ---------------------------------------------------------


def test_latency_covers_every_hop(a: _Server) -> None:
    async def go(c: Client) -> Response:
        return await c.get("/slow/2")

    r, rec = _run(go, a.url())
    assert r.status == 200 and len(r.history) == 2
    floor_ms = 3 * HOP_SLEEP_S * 1000 * 0.99  # three hops each slept HOP_SLEEP_S; a lower bound only
    assert r.elapsed_ms >= floor_ms
    row = _one_row(rec, "GET /slow/2")
    assert row.latency.total_count == 1 and hdr.summarize_ms(row.latency)["min"] >= floor_ms


def test_expect_and_check_apply_to_the_final_response(a: _Server) -> None:
    async def go(c: Client) -> list[Response]:
        expected = await c.get("/redir/302?to=/status/404", name="expected", expect=404)
        plain = await c.get("/redir/302?to=/status/404", name="plain")
        good = await c.get("/redir/302?to=/target", name="good")
        assert good.check(status=200, contains='"/target"')
        bad = await c.get("/redir/302?to=/target", name="bad")
        assert not bad.check(status=302)
        return [expected, plain, good, bad]

    (expected, plain, good, bad), rec = _run(go, a.url())
    assert expected.status == 404 and expected.ok and [h.status for h in expected.history] == [302]
    assert plain.status == 404 and not plain.ok
    assert good.ok and not bad.ok
    rows = _rows(rec)
    assert set(rows) == {"GET expected", "GET plain", "GET good", "GET bad"}
    assert rows["GET expected"].status_codes == {404: 1} and rows["GET expected"].errors == 0
    assert rows["GET plain"].errors_by_kind == {"http_4xx": 1}
    assert rows["GET good"].errors == 0 and rows["GET good"].status_codes == {200: 1}
    assert rows["GET bad"].errors_by_kind == {"check": 1} and rows["GET bad"].status_codes == {200: 1}


# -- the command line: ad-hoc --url and scenarios ------------------------------------------------------

_RATE, _RUN_TIME = 5, "1s"  # an open model of 5 arrivals a second for a second: 5 requests


def _loadgen(tmp_path: Path, *args: str) -> dict[str, Any]:
    """``loadgen run ARGS`` (quiet, nothing stored); its --summary-json document, with its exit code as ``rc``."""
    out = tmp_path / "summary.json"
    p = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", *args, "--rate", str(_RATE), "--run-time", _RUN_TIME,
         "-q", "--db", "none", "--summary-json", str(out)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    assert out.exists(), p.stderr
    return {**json.loads(out.read_text()), "rc": p.returncode}


def test_adhoc_follows_redirects_and_records_each_request_once(a: _Server, tmp_path: Path) -> None:
    s = _loadgen(tmp_path, "--url", a.url("/slow/1"))
    assert s["rc"] == 0 and s["requests"] == _RATE and s["errors"] == 0
    assert s["status_codes"] == {"200": _RATE}
    assert list(s["endpoints"]) == ["GET /slow/1"]
    assert a.paths().count("/slow/1") == a.paths().count("/slow/0") == _RATE
    assert s["latency_ms"]["min"] >= 2 * HOP_SLEEP_S * 1000 * 0.99  # both hops, a lower bound only


def test_adhoc_max_redirects_0_records_the_3xx(a: _Server, tmp_path: Path) -> None:
    s = _loadgen(tmp_path, "--url", a.url("/redir/302?to=/target"), "--max-redirects", "0")
    assert s["rc"] == 0 and s["requests"] == _RATE and s["status_codes"] == {"302": _RATE}
    assert "/target" not in a.paths()


def test_adhoc_past_the_limit_is_too_many_redirects(a: _Server, tmp_path: Path) -> None:
    s = _loadgen(tmp_path, "--url", a.url("/chain/2"), "--max-redirects", "1")
    assert s["requests"] == s["errors"] == _RATE
    assert s["errors_by_kind"] == {"too_many_redirects": _RATE} and s["status_codes"] == {}
    assert list(s["endpoints"]) == ["GET /chain/2"]
    assert a.paths().count("/chain/0") == 0 and a.paths().count("/chain/1") == _RATE


@pytest.mark.parametrize("code,method,body", [(307, "POST", b"adhoc-body"), (303, "GET", b"")])
def test_adhoc_post_is_redirected_by_the_rules(a: _Server, tmp_path: Path, code: int, method: str, body: bytes) -> None:
    s = _loadgen(tmp_path, "--url", a.url(f"/redir/{code}?to=/target"), "--method", "POST",
                 "-H", "Content-Type: text/plain", "--body", "adhoc-body")
    assert s["rc"] == 0 and s["requests"] == _RATE and s["status_codes"] == {"200": _RATE}
    assert list(s["endpoints"]) == [f"POST /redir/{code}"]
    finals = [x for x in a.seen if x.target == "/target"]
    assert len(finals) == _RATE
    assert {(x.method, x.body) for x in finals} == {(method, body)}


_SCENARIO = """\
from loadgen import User, task


class Redirected(User):
    @task
    async def go(self) -> None:
        await self.client.get("/chain/2", name="chain")
"""


@pytest.mark.parametrize(
    "flag,codes,kinds",
    [
        ((), {"200": _RATE}, {}),
        (("--max-redirects", "2"), {"200": _RATE}, {}),
        (("--max-redirects", "1"), {}, {"too_many_redirects": _RATE}),
        (("--max-redirects", "0"), {"302": _RATE}, {}),
    ],
)
def test_scenario_runs_take_max_redirects(
    a: _Server, tmp_path: Path, flag: tuple[str, ...], codes: dict[str, int], kinds: dict[str, int]
) -> None:
    scenario = tmp_path / "redirected.py"
    scenario.write_text(_SCENARIO)
    s = _loadgen(tmp_path, str(scenario), "--host", a.url(), *flag)
    assert s["requests"] == _RATE and list(s["endpoints"]) == ["GET chain"]
    assert s["status_codes"] == codes and s["errors_by_kind"] == kinds
