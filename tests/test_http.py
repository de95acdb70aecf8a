"""The fast HTTP client against a real aiohttp server over loopback."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
import zlib
from collections.abc import Iterator

import pytest
from aiohttp import web

from aiohttp_thread import ThreadedApp
from clients import run_client
from loadgen.http.tls import TlsOptions
from loadgen.http.client import Client


def _app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"method": request.method, "path": request.path_qs, "headers": dict(request.headers), "body": body.decode()}
        )

    async def parts(request: web.Request) -> web.Response:
        seen = []
        reader = await request.multipart()
        async for part in reader:
            data = await part.read()
            seen.append([part.name, part.filename, part.headers.get("Content-Type", "text/plain"), len(data)])
        return web.json_response(seen)

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(5):
            await resp.write(f"part{i};".encode())
        await resp.write_eof()
        return resp

    async def gz(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(b"hello gzip" * 100), headers={"Content-Encoding": "gzip"})

    async def deflate(request: web.Request) -> web.Response:
        return web.Response(body=zlib.compress(b"hello deflate"), headers={"Content-Encoding": "deflate"})

    async def set_cookie(request: web.Request) -> web.Response:
        resp = web.Response(text="set")
        resp.set_cookie("session", "abc123")
        resp.set_cookie("theme", "dark")
        return resp

    async def sleep(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "1")))
        return web.Response(text="late")

    async def close(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="x")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_post("/parts", parts)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzip", gz)
    app.router.add_get("/deflate", deflate)
    app.router.add_get("/cookie", set_cookie)
    app.router.add_get("/sleep", sleep)
    app.router.add_get("/close", close)
    app.router.add_get("/status/{code}", status)
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedApp]:
    with ThreadedApp(_app) as s:
        yield s


def _run(coro_fn, base_url: str, **session_kw):
    return run_client(coro_fn, base_url, **session_kw)[:2]


def test_json_body_headers_params_and_grouping(server):
    async def go(c: Client):
        c.headers["Authorization"] = "Bearer t0k"
        r = await c.post("/echo", json={"a": 1}, params={"q": "x y"}, name="/echo")
        return r

    r, rec = _run(go, f"http://127.0.0.1:{server.port}")
    assert r.status == 200 and r.ok
    doc = r.json()
    assert doc["method"] == "POST" and doc["path"] == "/echo?q=x+y"
    assert doc["headers"]["Authorization"] == "Bearer t0k"
    assert doc["headers"]["Content-Type"] == "application/json"
    assert doc["body"] == '{"a":1}'
    assert r.headers["content-type"].startswith("application/json")
    snap = rec.snapshot()
    assert list(snap.endpoints) == ["POST /echo"]
    ep = snap.endpoints["POST /echo"]
    assert ep.requests == 1 and ep.errors == 0 and ep.bytes_sent > 0 and ep.bytes_received > len(r.content)


def test_chunked_gzip_deflate(server):
    async def go(c: Client):
        return await c.get("/chunked"), await c.get("/gzip"), await c.get("/deflate")

    (ch, gz, df), _ = _run(go, f"http://127.0.0.1:{server.port}")
    assert ch.text == "part0;part1;part2;part3;part4;"
    assert gz.content == b"hello gzip" * 100
    assert df.text == "hello deflate"


def test_cookies_are_kept_per_user(server):
    async def go(c: Client):
        await c.get("/cookie")
        return await c.get("/echo")

    r, _ = _run(go, f"http://127.0.0.1:{server.port}")
    cookie = r.json()["headers"]["Cookie"]
    assert "session=abc123" in cookie and "theme=dark" in cookie


def test_keep_alive_reuses_one_connection_and_close_is_honoured(server):
    async def go(c: Client):
        for _ in range(20):
            await c.get("/echo")
        before = len(c._idle[c.base_url])
        r = await c.get("/close")
        return before, len(c._idle[c.base_url]), r

    (before, after, r), rec = _run(go, f"http://127.0.0.1:{server.port}")
    assert before == 1 and after == 0 and r.text == "bye"


def test_http_errors_and_checks_are_counted_not_raised(server):
    async def go(c: Client):
        a = await c.get("/status/404", name="/status/[code]")
        b = await c.get("/status/503", name="/status/[code]")
        ok = await c.get("/echo")
        assert ok.check(status=200, json={"method": "GET", "headers.Host": ...}) is True
        assert ok.check(status=200, json={"method": "POST"}, name="is post") is False
        return a, b

    (a, b), rec = _run(go, f"http://127.0.0.1:{server.port}")
    assert (a.status, b.status, a.ok) == (404, 503, False)
    snap = rec.snapshot()
    st = snap.endpoints["GET /status/[code]"]
    assert st.errors_by_kind == {"http_4xx": 1, "http_5xx": 1}
    echo = snap.endpoints["GET /echo"]
    assert echo.requests == 1 and echo.errors == 1 and echo.errors_by_kind == {"check": 1}


def test_timeout_is_counted_as_timeout(server):
    async def go(c: Client):
        return await c.get("/sleep?s=3", name="/sleep")

    r, rec = _run(go, f"http://127.0.0.1:{server.port}", timeout_s=0.3)
    assert r.error == "timeout" and r.status == 0
    snap = rec.snapshot()
    ep = snap.endpoints["GET /sleep"]
    assert ep.errors_by_kind == {"timeout": 1}
    assert ep.latency.total_count == 1 and ep.latency.max_value >= 250_000  # µs: the wait is measured


def test_connection_refused_is_a_connect_error():
    async def go(c: Client):
        return await c.get("/")

    r, rec = _run(go, "http://127.0.0.1:9")
    assert r.error == "connect"
    assert rec.snapshot().endpoints["GET /"].errors_by_kind == {"connect": 1}


def test_a_multipart_upload_reaches_the_server_part_by_part(server, tmp_path):
    f = tmp_path / "report.csv"
    f.write_bytes(b"a,b\n" * 50_000)  # 200 kB: past the small-body limit, so streamed

    async def go(c: Client):
        with f.open("rb") as fh:
            return await c.post("/parts", data={"kind": "csv"},
                                files={"doc": fh, "logo": ("logo.png", b"\x89PNG", "image/png")})

    r, rec = _run(go, f"http://127.0.0.1:{server.port}")
    assert r.status == 200, r.text
    assert r.json() == [["kind", None, "text/plain", 3], ["doc", "report.csv", "text/csv", 200_000],
                        ["logo", "logo.png", "image/png", 4]]
    ep = rec.snapshot().endpoints["POST /parts"]
    assert ep.requests == 1 and ep.bytes_sent > 200_000


def test_head_request_does_not_wait_for_a_body(server):
    async def go(c: Client):
        h = await c.head("/gzip")
        g = await c.get("/deflate")  # the connection is still in a sane state
        return h, g

    (h, g), _ = _run(go, f"http://127.0.0.1:{server.port}", timeout_s=5)
    assert h.status == 200 and h.content == b""
    assert g.text == "hello deflate"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    with ThreadedApp(_app, ctx) as s:
        async def go(c: Client):
            return await c.get("/echo")

        r, _ = _run(go, f"https://127.0.0.1:{s.port}", tls=TlsOptions(insecure=True))
        assert r.status == 200 and r.json()["method"] == "GET"
        # with verification on, a self-signed certificate is a tls error, not a crash
        r2, _ = _run(go, f"https://127.0.0.1:{s.port}")
        assert r2.error == "tls"


def test_expected_error_statuses_are_recorded_but_not_errors(server):
    async def go(c: Client):
        a = await c.get("/status/401", name="/s", expect=401)
        b = await c.get("/status/404", name="/s", expect=(401, 403))
        return a, b

    (a, b), rec = _run(go, f"http://127.0.0.1:{server.port}")
    assert a.ok and not b.ok
    ep = rec.snapshot().endpoints["GET /s"]
    assert ep.status_codes == {401: 1, 404: 1}
    assert ep.errors == 1 and ep.errors_by_kind == {"http_4xx": 1}
