"""``loadgen har``: HAR 1.x recordings into scenarios that keep working.

Unit level on recordings written for these tests (tests/har/*.har), with golden
outputs (tests/har/*.golden.py; LOADGEN_REGEN_GOLDEN=1 rewrites them); the shop
recording's scenario runs against a stand-in that hands out fresh tokens, cookies
and ids and refuses the recorded ones; and the end-to-end test records a real
headless Chromium session against the demo target, lets its token expire, and
runs the converted scenario against the demo with no errors, its assets and the
third-party host never requested.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgen.errors import UsageError
from loadgen.har import HarOptions, convert_har
from loadgen.har.headers import clean_headers
from loadgen.har.names import segment_kind, template
from loadgen.scenario import load_scenario

HERE = Path(__file__).resolve().parent / "har"
REGEN = bool(os.environ.get("LOADGEN_REGEN_GOLDEN"))

pytestmark = pytest.mark.timeout(120)


# --- helpers -------------------------------------------------------------------------------


def _entry(url: str, status: int = 200, *, at: float = 0.0, method: str = "GET", page: str | None = None,
           headers: dict[str, str] | None = None, body: str | None = None, mime: str = "application/json",
           response: Any = None, resp_headers: dict[str, str] | None = None, rtype: str | None = None) -> dict[str, Any]:
    """One HAR 1.2 entry; ``response``: a JSON value for the response body."""
    e: dict[str, Any] = {
        "startedDateTime": f"2024-05-14T09:30:{at:06.3f}Z",
        "time": 10,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
                    "headers": [{"name": k, "value": v} for k, v in (headers or {}).items()],
                    "queryString": [], "headersSize": -1, "bodySize": -1},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
                     "headers": [{"name": k, "value": v} for k, v in (resp_headers or {}).items()],
                     "content": {"size": 0, "mimeType": "application/json" if response is not None else "",
                                 **({"text": json.dumps(response)} if response is not None else {})},
                     "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"send": 0, "wait": 10, "receive": 0},
    }
    if page:
        e["pageref"] = page
    if body is not None:
        e["request"]["postData"] = {"mimeType": mime, "text": body}
    if rtype:
        e["_resourceType"] = rtype
    return e


def _har(*entries: dict[str, Any], pages: list[dict[str, Any]] | None = None) -> str:
    log: dict[str, Any] = {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": list(entries)}
    if pages is not None:
        log["pages"] = pages
    return json.dumps({"log": log})


def _convert(text: str, **options: Any) -> str:
    return convert_har(text, "t.har", HarOptions(**options)).code


def _loadgen(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=timeout)


def _run(scenario: Path, host: str, summary: Path, run_time: str = "3s") -> dict[str, Any]:
    p = _loadgen("run", str(scenario), "--host", host, "--users", "2", "--run-time", run_time,
                 "-q", "--db", "none", "--summary-json", str(summary))
    assert summary.exists(), f"no summary: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return json.loads(summary.read_text())


def _names(doc: dict[str, Any]) -> set[str]:
    return {ep["name"] for ep in doc["endpoints"].values()}


class _Served:
    """An aiohttp app on its own loop in a thread, on ``host`` and a free port."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1") -> None:
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self.url = ""
        self._app, self._host = app, host
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the test server did not start"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self._host, 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://{self._host}:{runner.addresses[0][1]}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


# --- golden outputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shop", "pauses"])
def test_conversion_matches_its_golden_file(name: str) -> None:
    """shop.har: pages, assets, other hosts, a CSRF cookie, a login, JSON/header/cookie correlation, a redirect,
    a form, a 404, a 304, a websocket, a data: URL, a cache hit, a preflight, a broken entry. pauses.har (from a
    proxy, no pages): groups at pauses, think time, a custom method, a body of awkward characters."""
    got = convert_har((HERE / f"{name}.har").read_text(encoding="utf-8"), f"{name}.har", scenario=f"{name}.py")
    golden = HERE / f"{name}.golden.py"
    if REGEN:
        golden.write_text(got.code, encoding="utf-8")
    assert got.code == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["shop", "pauses"])
def test_a_converted_file_is_a_scenario_loadgen_loads(name: str, tmp_path: Path) -> None:
    target = tmp_path / f"{name}.py"
    shutil.copy(HERE / f"{name}.golden.py", target)
    scenario = load_scenario(target)
    (tasks,) = scenario.task_sets
    assert tasks.user_class.__name__ == "RecordedUser"


def test_the_shop_warnings_name_everything_left_out() -> None:
    warnings = convert_har((HERE / "shop.har").read_text(encoding="utf-8"), "shop.har").warnings
    text = "\n".join(warnings)
    assert "entry 21: no request URL; skipped" in text
    assert "websockets (not supported)" in text
    assert "data URLs (not HTTP)" in text
    assert "https://www.google-analytics.com (1)" in text and "https://fonts.example-cdn.net (1)" in text
    assert "3 static asset request(s) dropped" in text
    assert "CORS preflights" in text and "browser's cache" in text and "no response was recorded" in text


# --- the shop scenario against a stand-in that only accepts live values --------------------------------


def _shop_app(seen: Counter[str], refused: list[str]) -> web.Application:
    """The shop's API as the recording used it, handing out fresh values and refusing recorded ones."""
    tokens: dict[str, int] = {}
    orders: set[str] = set()
    invoices: dict[str, str] = {}
    files: set[str] = set()
    notes: set[int] = set()

    def refuse(request: web.Request, why: str) -> web.Response:
        refused.append(f"{request.method} {request.path_qs}: {why}")
        return web.json_response({"error": why}, status=400)

    def user_of(request: web.Request) -> int | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return tokens.get(token) if scheme == "Bearer" else None

    def csrf_ok(request: web.Request) -> bool:
        cookie = request.cookies.get("csrftoken")
        return bool(cookie) and request.headers.get("X-Csrf-Token") == cookie

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        seen[f"{request.method} {request.path}"] += 1
        return await handler(request)

    async def signin(request: web.Request) -> web.Response:
        r = web.Response(text="<html>sign in</html>", content_type="text/html")
        r.set_cookie("csrftoken", secrets.token_urlsafe(15), path="/")
        return r

    async def session(request: web.Request) -> web.Response:
        if not csrf_ok(request):
            return refuse(request, "csrf token is not the cookie's")
        body = await request.json()
        if body.get("email") != "ann@example.com":
            return refuse(request, "unknown user")
        token, user = secrets.token_urlsafe(24), 1000 + len(tokens)
        tokens[token] = user
        return web.json_response({"token": token, "user": {"id": user, "email": body["email"]}}, status=201)

    async def orders_page(request: web.Request) -> web.Response:
        return web.Response(text="<html>orders</html>", content_type="text/html")

    async def list_orders(request: web.Request) -> web.Response:
        user = user_of(request)
        if user is None or request.query.get("customer_id") != str(user):
            return refuse(request, "not this user's token or id")
        new = [str(uuid.uuid4()) for _ in range(2)]
        orders.update(new)
        return web.json_response({"items": [{"id": o, "total": 100} for o in new]})

    async def order(request: web.Request) -> web.Response:
        oid = request.match_info["oid"]
        if user_of(request) is None:
            return refuse(request, "no live token")
        if oid not in orders:
            return web.json_response({"error": "not found"}, status=404)
        invoice = secrets.token_hex(8)
        invoices[invoice] = f"inv-{secrets.randbelow(10**6)}.pdf"
        return web.json_response({"id": oid, "invoice": f"/invoices/{invoice}"})

    async def invoice(request: web.Request) -> web.Response:
        name = invoices.get(request.match_info["iid"])
        if name is None or user_of(request) is None:
            return refuse(request, "unknown invoice or no live token")
        files.add(name)
        raise web.HTTPFound(f"/files/{name}")

    async def file(request: web.Request) -> web.Response:
        if request.match_info["name"] not in files:
            return refuse(request, "a file no redirect pointed to")
        return web.Response(body=b"%PDF-1.4", content_type="application/pdf")

    async def add_note(request: web.Request) -> web.Response:
        form = await request.post()
        oid = request.match_info["oid"]
        if not csrf_ok(request) or user_of(request) is None or oid not in orders or form.get("order_id") != oid:
            return refuse(request, "stale csrf, token or order id")
        note = 5000 + len(notes)
        notes.add(note)
        return web.json_response({"note_id": note, "created": True}, status=201)

    async def delete_note(request: web.Request) -> web.Response:
        if not csrf_ok(request) or int(request.match_info["nid"]) not in notes:
            return refuse(request, "stale csrf or note id")
        return web.Response(status=204)

    async def profile(request: web.Request) -> web.Response:
        if user_of(request) is None:
            return refuse(request, "no live token")
        return web.json_response({"name": "Ann"})

    app = web.Application(middlewares=[count])
    app.router.add_routes([
        web.get("/signin", signin), web.post("/api/session", session), web.get("/orders", orders_page),
        web.get("/api/orders", list_orders), web.get("/api/orders/{oid}", order),
        web.get("/invoices/{iid}", invoice), web.get("/files/{name}", file),
        web.post("/api/orders/{oid}/notes", add_note), web.delete("/api/notes/{nid}", delete_note),
        web.get("/api/profile", profile),
    ])
    return app


def test_the_shop_scenario_runs_on_live_values_only(tmp_path: Path) -> None:
    """Every value the recording got from the server (CSRF cookie, bearer token, user id, order ids, an
    invoice link, a redirect's Location, a note id) is refused by the stand-in when replayed as recorded:
    the converted scenario runs with no errors, so each was read from the live response."""
    scenario = tmp_path / "shop.py"
    shutil.copy(HERE / "shop.golden.py", scenario)
    seen: Counter[str] = Counter()
    refused: list[str] = []
    server = _Served(_shop_app(seen, refused))
    try:
        doc = _run(scenario, server.url, tmp_path / "s.json", run_time="4s")
    finally:
        server.stop()
    assert not refused, refused[:5]
    assert doc["errors"] == 0, (doc["errors_by_kind"], doc["checks"], doc["exceptions"])
    assert {"/api/orders/[uuid]", "/api/orders/[uuid]/notes", "/api/notes/[id]", "/invoices/[hash]",
            "/files/[id]", "/api/profile"} <= _names(doc)
    assert seen["DELETE /api/notes/5000"] == 1  # the first note created, not the recorded 9001
    assert not any(k.startswith(("GET /static", "GET /collect")) for k in seen)


# --- filtering, grouping, think time ---------------------------------------------------------


def test_keep_flags_bring_assets_and_other_hosts_back() -> None:
    text = (HERE / "shop.har").read_text(encoding="utf-8")
    plain = _convert(text)
    assert "/static/site.css" not in plain and "google-analytics" not in plain
    assets = _convert(text, keep_assets=True)
    assert '"/static/site.css"' in assets and '"/static/app.3f9a1c2b.js"' in assets and "inter.woff2" not in assets
    both = _convert(text, keep_assets=True, keep_third_party=True)
    calls = {c["_url"]: c for c in _call_kwargs(both, "get")}
    assert calls["'https://fonts.example-cdn.net/inter.woff2'"]["name"] == "https://fonts.example-cdn.net/inter.woff2"
    assert calls["'https://www.google-analytics.com/collect?v=1&tid=UA-1'"]["name"] == (
        "https://www.google-analytics.com/collect")  # another host's path must not share our rows


def test_assets_are_told_by_type_then_mime_then_extension() -> None:
    host = "http://app.test"
    text = _har(
        _entry(f"{host}/", rtype="document"),
        _entry(f"{host}/api/config.js", rtype="fetch"),  # the browser's type wins over the extension
        _entry(f"{host}/bundle", rtype="script"),
        _entry(f"{host}/logo"),  # no type: the MIME type decides
        _entry(f"{host}/font.woff2"),  # no type, no MIME: the extension
    )
    doc = json.loads(text)
    doc["log"]["entries"][3]["response"]["content"]["mimeType"] = "image/png"
    code = _convert(json.dumps(doc))
    assert '"/api/config.js"' in code
    assert '"/bundle"' not in code and '"/logo"' not in code and "font.woff2" not in code


def test_a_subdomain_of_the_first_page_is_first_party() -> None:
    text = _har(_entry("https://www.shop.test/", rtype="document"), _entry("https://api.shop.test/v1/cart"),
                _entry("https://cdn.other.test/x"), _entry("https://shop.co.uk.test/y"))
    code = _convert(text)
    assert '"https://api.shop.test/v1/cart"' in code and "other.test" not in code


def test_grouping_by_page_and_by_pause() -> None:
    text = (HERE / "pauses.har").read_text(encoding="utf-8")
    default = _convert(text)  # no pages: by pause, 2 s
    assert default.count("await self.step_") == 3 and "await asyncio.sleep(4.0)" in default
    one = _convert(text, group="pause", pause_s=5)
    assert "async def replay" not in one and one.count("    @task") == 1
    result = convert_har(text, "t.har", HarOptions(group="page"))
    assert "no pages to group by; grouped at pauses instead" in result.warnings[-1]
    pages = _har(
        _entry("http://a.test/one", page="p1", at=0.0, rtype="document"),
        _entry("http://a.test/api/x", page="p1", at=9.0),  # a long pause, still the same page
        _entry("http://a.test/two", page="p2", at=10.0, rtype="document"),
        pages=[{"id": "p1", "title": "One"}, {"id": "p2", "title": "Two"}],
    )
    code = _convert(pages)
    assert "async def step_1_one" in code and "async def step_2_two" in code
    assert "await asyncio.sleep(9.0)" in code  # inside page one: think time
    assert code.index("await asyncio.sleep(9.0)") > code.index("async def step_1_one")


def test_think_time_skips_short_gaps_and_caps_long_ones() -> None:
    text = _har(_entry("http://a.test/1", at=0.0), _entry("http://a.test/2", at=0.3), _entry("http://a.test/3", at=1.5))
    code = _convert(text, group="pause", pause_s=600)
    assert code.count("asyncio.sleep") == 1 and "await asyncio.sleep(1.2)" in code
    doc = json.loads(_har(_entry("http://a.test/1"), _entry("http://a.test/2")))
    doc["log"]["entries"][1]["startedDateTime"] = "2024-05-14T10:30:00Z"
    result = convert_har(json.dumps(doc), "t.har", HarOptions(group="pause", pause_s=5000))
    assert "await asyncio.sleep(60.0)" in result.code and "replayed as 60 s" in result.warnings[-1]


# --- names, headers, bodies ------------------------------------------------------------------


@pytest.mark.parametrize(("segment", "kind"), [
    ("42", "[id]"), ("007", "[id]"), ("5b1f0c4e-8a7d-4c2b-9e3f-1a2b3c4d5e6f", "[uuid]"),
    ("7f3a9c21d4e5b6a8", "[hash]"), ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "[hash]"),
    ("deadbeef", None), ("facade", None), ("orders", None), ("v2", None), ("1a2b3c", None), ("", None),
])
def test_segment_kinds(segment: str, kind: str | None) -> None:
    assert segment_kind(segment) == kind


def test_name_templates() -> None:
    assert template("/api/users/42/orders/5b1f0c4e-8a7d-4c2b-9e3f-1a2b3c4d5e6f") == "/api/users/[id]/orders/[uuid]"
    assert template("/api/cart/c-8d2f61a0", frozenset({3})) == "/api/cart/[id]"
    assert template("/") == "/" and template("/static/app.js") == "/static/app.js"


def test_browser_noise_headers_are_dropped() -> None:
    recorded = (
        (":authority", "a.test"), (":path", "/x"), ("Host", "a.test"), ("User-Agent", "Mozilla"),
        ("Accept-Encoding", "gzip"), ("Accept-Language", "en"), ("Cookie", "sid=1"), ("Connection", "keep-alive"),
        ("sec-ch-ua", '"x"'), ("Sec-Fetch-Mode", "cors"), ("Origin", "http://a.test"), ("Referer", "http://a.test/"),
        ("Content-Length", "3"), ("If-None-Match", '"e"'), ("Cache-Control", "no-cache"), ("Accept", "*/*"),
        ("authorization", "Bearer abc"), ("x-csrf-token", "t0k3n"), ("X-Tenant", "acme"), ("Content-Type", "text/xml"),
        ("X-Tenant", "second"),
    )
    assert clean_headers(recorded, body_sets_type=False) == [
        ("Authorization", "Bearer abc"), ("X-Csrf-Token", "t0k3n"), ("X-Tenant", "acme"), ("Content-Type", "text/xml")]
    assert ("Content-Type", "text/xml") not in clean_headers(recorded, body_sets_type=True)
    assert clean_headers((("Accept", "application/json"),), body_sets_type=False) == [("Accept", "application/json")]
    assert clean_headers((("Accept", "text/html,*/*;q=0.8"),), body_sets_type=False) == []


def _call_kwargs(code: str, method: str) -> list[dict[str, Any]]:
    """The literal keyword arguments of each ``self.client.<method>(...)`` call in ``code``."""
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method:
            kw = {}
            for k in node.keywords:
                try:
                    kw[k.arg] = ast.literal_eval(k.value)
                except ValueError:
                    kw[k.arg] = ast.unparse(k.value)
            kw["_url"] = ast.unparse(node.args[0]) if node.args else None
            out.append(kw)
    return out


def test_bodies_are_kept_as_json_form_or_text_exactly() -> None:
    odd = 'He said "hi" {not a field} C:\\temp\\x\ttab\x00nul é ✓ 😀 \ud800'
    text = _har(
        _entry("http://a.test/json", method="POST", body=json.dumps({"a": [1, 2.5, None, True], "odd": odd})),
        _entry("http://a.test/form", method="POST", body="a=1&b=x+y&c=%7B%7D", mime="application/x-www-form-urlencoded"),
        _entry("http://a.test/twice", method="POST", body="a=1&a=2", mime="application/x-www-form-urlencoded"),
        _entry("http://a.test/text", method="PUT", body=odd, mime="text/plain; charset=utf-8",
               headers={"X-Odd": 'q"{x}"\\'}),
        _entry("http://a.test/broken-json", method="POST", body="{nope", mime="application/json"),
    )
    code = _convert(text)
    posts = _call_kwargs(code, "post")
    assert posts[0]["json"] == {"a": [1, 2.5, None, True], "odd": odd}
    assert posts[1]["data"] == {"a": "1", "b": "x y", "c": "{}"}
    assert posts[2]["data"] == "a=1&a=2" and posts[2]["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert posts[3]["data"] == "{nope" and posts[3]["headers"] == {"Content-Type": "application/json"}
    (put,) = _call_kwargs(code, "put")
    assert put["data"] == odd and put["headers"] == {"X-Odd": 'q"{x}"\\', "Content-Type": "text/plain; charset=utf-8"}


# --- correlation -------------------------------------------------------------------------------


def test_values_sent_before_they_were_produced_are_input_not_correlation() -> None:
    text = _har(
        _entry("http://a.test/api/login", method="POST", body=json.dumps({"user": "ann-2024-x", "password": "pw"}),
               response={"user": "ann-2024-x", "token": "tok-5f2b9c1d77", "admin": True, "id": 7, "count": 12345}),
        _entry("http://a.test/api/me?user=ann-2024-x&count=12345", headers={"Authorization": "Bearer tok-5f2b9c1d77"}),
        _entry("http://a.test/api/flags", method="POST", body=json.dumps({"admin": True, "n": 7})),
    )
    code = _convert(text)
    assert 'f"Bearer {self.token}"' in code and "tok-5f2b9c1d77" not in code
    assert "?user=ann-2024-x&count=12345" in code  # the user name was typed in; 12345 is no id's value
    assert '{"admin": True, "n": 7}' in code  # booleans and numbers under other keys are never read back
    assert "self.id" not in code and "user_id" not in code


def test_numbers_are_read_back_only_where_an_id_goes() -> None:
    text = _har(
        _entry("http://a.test/api/projects", method="POST", body="{}", response={"project": {"id": 314}, "size": 9000}),
        _entry("http://a.test/api/projects/314/tasks?project_id=314&page=314", method="POST",
               body=json.dumps({"projectId": 314, "size": 9000, "label": "314"})),
    )
    code = _convert(text)
    (_, second) = _call_kwargs(code, "post")
    assert second["_url"] == "f'/api/projects/{self.project_id}/tasks?project_id={self.project_id}&page=314'"
    assert second["json"] == "{'projectId': self.project_id, 'size': 9000, 'label': '314'}"
    assert second["name"] == "/api/projects/[id]/tasks"


def test_header_cookie_and_json_sources_and_their_preference() -> None:
    token = "Tk_9a8b7c6d5e4f3a2b"
    text = _har(
        _entry("http://a.test/", rtype="document", resp_headers={"X-Request-Token": token, "Set-Cookie": "xsrf=Ck81aa90zz; Path=/"}),
        _entry("http://a.test/api/session", method="POST", body="{}",
               response={"data": {"session": token}}, resp_headers={"X-Session": "S-0001-abcdef"}),
        _entry("http://a.test/api/a", headers={"X-Token": token, "X-Xsrf": "Ck81aa90zz", "X-Session": "S-0001-abcdef"}),
    )
    doc = json.loads(text)
    doc["log"]["entries"][0]["response"]["cookies"] = [{"name": "xsrf", "value": "Ck81aa90zz"}]
    code = _convert(json.dumps(doc))
    assert 'self.request_token = r.headers["X-Request-Token"]' in code  # the first response that had it
    assert 'self.xsrf = self.client.cookies.get("xsrf")' in code
    assert 'self.session = r.headers["X-Session"]' in code
    assert '"X-Token": self.request_token, "X-Xsrf": self.xsrf, "X-Session": self.session' in code


def test_a_login_in_the_first_group_goes_to_on_start() -> None:
    login = _entry("http://a.test/api/login", method="POST", body="{}", response={"access_token": "at-1234567890"})
    use = _entry("http://a.test/api/items", at=5.0, headers={"Authorization": "Bearer at-1234567890"})
    code = _convert(_har(_entry("http://a.test/", rtype="document"), login, use), group="pause")
    start = code.index("async def on_start")
    assert start < code.index('"/api/login"') < code.index("@task") < code.index('"/api/items"')
    assert 'self.access_token = r.json()["access_token"]' in code
    # Nothing but the login recorded: it stays the task (a scenario needs one).
    alone = _convert(_har(login), group="pause")
    assert "on_start" not in alone and "@task" in alone
    # A value that is no credential does not make a login.
    plain = _har(_entry("http://a.test/api/new", method="POST", body="{}", response={"job": "job-1234567890"}),
                 _entry("http://a.test/api/job/job-1234567890", at=5.0))
    assert "on_start" not in _convert(plain, group="pause")


# --- the command line ---------------------------------------------------------------------------


def test_the_command_writes_the_scenario_and_warns_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "shop.py"
    p = _loadgen("har", str(HERE / "shop.har"), "-o", str(out))
    assert p.returncode == 0, p.stderr
    written = out.read_text(encoding="utf-8")
    golden = (HERE / "shop.golden.py").read_text(encoding="utf-8")
    code = "from __future__ import annotations"
    assert written[written.index(code):] == golden[golden.index(code):]
    assert str(HERE / "shop.har") in written and f"loadgen run {out} --host https://shop.example.com" in written
    assert "loadgen: warning: 1 request(s) not replayed: websockets (not supported)" in p.stderr
    p = _loadgen("har", str(HERE / "pauses.har"), "--group", "pause", "--pause", "5s")
    assert p.returncode == 0 and p.stdout.startswith('"""Replays the session in') and "async def replay" not in p.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("not json at all", "is not a HAR file: it is not JSON"),
    ('{"log": {"version": "1.2"}}', "is not a HAR file: it has no log object with a list of entries"),
    ('[1, 2]', "is not a HAR file: it has no log object"),
    ('{"log": {"version": "2.0", "entries": []}}', "is HAR version '2.0'; loadgen reads HAR 1.x"),
    ('{"log": {"version": "1.2", "entries": []}}', "has no request left to replay (0 recorded)"),
    (_har(_entry("wss://a.test/live", 101, rtype="websocket")), "has no request left to replay (1 recorded)"),
])
def test_what_is_not_a_replayable_har_is_one_sentence_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "x.har"
    f.write_text(content)
    p = _loadgen("har", str(f))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith(f"loadgen: error: {f} ") and message in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_bad_arguments_are_exit_2(tmp_path: Path) -> None:
    p = _loadgen("har", str(tmp_path / "missing.har"))
    assert p.returncode == 2 and "cannot read" in p.stderr
    (tmp_path / "bin.har").write_bytes(b"\xff\xfe\x00")
    p = _loadgen("har", str(tmp_path / "bin.har"))
    assert p.returncode == 2 and "not UTF-8 text" in p.stderr
    p = _loadgen("har", str(HERE / "shop.har"), "--group", "tab")
    assert p.returncode == 2 and "--group must be page or pause" in p.stderr
    p = _loadgen("har", str(HERE / "shop.har"), "--pause", "soon")
    assert p.returncode == 2 and "--pause" in p.stderr


# --- output always parses -------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ['"""', "'''", "\\", "{x}", "\x00", "\r\n", "é✓😀", "tok-1234567890", "42"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_TEXT, segment=_TEXT, header=_TEXT, value=_TEXT, body=_JSON, response=_JSON, raw=_TEXT,
       method=st.sampled_from(["GET", "POST", "PROPFIND", "M-SEARCH"]))
def test_any_recording_gives_source_that_parses(title: str, segment: str, header: str, value: str, body: Any,
                                                response: Any, raw: str, method: str) -> None:
    from urllib.parse import quote

    url = f"http://a.test/api/{quote(segment)}/tok-1234567890?q={quote(value)}"
    text = _har(
        _entry("http://a.test/api/start", page="p", response=response),
        _entry(url, method=method, page="p", headers={header or "X": value}, body=json.dumps(body)),
        _entry("http://a.test/raw", method="POST", page="p", body=raw, mime="text/plain"),
        pages=[{"id": "p", "title": title}],
    )
    for group in ("page", "pause"):
        ast.parse(convert_har(text, f"{title}.har", HarOptions(group=group)).code)  # type: ignore[arg-type]


def test_convert_raises_usage_errors_not_tracebacks() -> None:
    with pytest.raises(UsageError, match="is not a HAR file"):
        convert_har('{"log": 3}', "x.har")


# --- end to end: a real Chromium session against the demo target ------------------------------


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        pytest.skip("no chromium binary (Debian: apt-get install --no-install-recommends chromium)")
    return path


def _third_party(hits: Counter[str]) -> web.Application:
    async def any_path(request: web.Request) -> web.Response:
        hits[request.path] += 1
        if request.path == "/widget.js":
            return web.Response(text="window.widget = true;", content_type="text/javascript")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    return app


def _record(chromium: str, page_url: str, har: Path) -> None:
    """A person's session on the demo page, recorded by Chromium into ``har``: log in, generate content
    (the page polls it), then list campaigns, with pauses between the clicks."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(record_har_path=str(har))
            page = context.new_page()
            page.goto(page_url)
            page.wait_for_selector("body[data-ready=yes]")
            page.click("#login")
            page.wait_for_selector("#login-status:has-text('logged in')")
            time.sleep(1.5)
            page.click("#generate")
            page.wait_for_selector("#content-status:has-text('done')", timeout=20_000)
            time.sleep(1.5)
            page.click("#campaigns")
            page.wait_for_selector("#campaigns-status:has-text('10 of')")
            context.close()  # writes the HAR
        finally:
            browser.close()


def _route_counts(demo_url: str) -> dict[str, float]:
    """Requests the demo answered, per route, from its /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{demo_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "demo_http_requests_total":
                counts[f"{s.labels['method']} {s.labels['route']}"] += s.value
    return dict(counts)


def _token_expired(demo_url: str, token: str) -> bool:
    req = urllib.request.Request(f"{demo_url}/api/auth/verify", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401


@pytest.mark.timeout(240)
def test_a_chromium_recording_replays_against_the_demo_after_its_token_expired(
    start_demo: Any, tmp_path: Path
) -> None:
    chromium = _chromium()
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    demo = start_demo(token_ttl_s=10.0)
    hits: Counter[str] = Counter()
    analytics = _Served(_third_party(hits), host="127.0.0.2")  # another host name: a third party
    try:
        har = tmp_path / "session.har"
        _record(chromium, f"{demo.url}/app?analytics={analytics.url}", har)
        assert hits["/widget.js"] == 1 and hits["/collect"] == 1  # the page did reach the third party
        recorded = json.loads(har.read_text())["log"]["entries"]
        login = next(e for e in recorded if e["request"]["url"].endswith("/api/auth/login"))
        token = json.loads(login["response"]["content"]["text"])["access_token"]
        assert any(h["value"] == f"Bearer {token}" for e in recorded for h in e["request"]["headers"])

        out = tmp_path / "session.py"
        p = _loadgen("har", str(har), "-o", str(out))  # one page: the login to on_start, the rest one task
        assert p.returncode == 0, p.stderr
        assert "requests to other hosts dropped: http://127.0.0.2:" in p.stderr
        code = out.read_text()
        assert token not in code and 'self.access_token = r.json()["access_token"]' in code
        assert 'name="/api/content/[hash]"' in code and "async def on_start" in code

        deadline = time.monotonic() + 30
        while not _token_expired(demo.url, token):  # the recorded token is dead before the replay starts
            assert time.monotonic() < deadline, "the recorded token did not expire"
            time.sleep(0.5)
        before, hits_before = _route_counts(demo.url), sum(hits.values())
        doc = _run(out, demo.url, tmp_path / "summary.json", run_time="3s")
        after = _route_counts(demo.url)
    finally:
        analytics.stop()

    assert doc["errors"] == 0 and not doc["exceptions"], (doc["errors_by_kind"], doc["checks"], doc["exceptions"])
    names = _names(doc)
    assert {"/api/auth/login", "/api/content", "/api/content/[hash]", "/app"} <= names
    assert not any(n.startswith("/app/") for n in names)
    for asset in ("/app/app.js", "/app/app.css", "/app/logo.svg"):
        assert after.get(f"GET {asset}", 0) == before.get(f"GET {asset}", 0), f"{asset} was requested"
    assert after["POST /api/content"] > before["POST /api/content"]  # with a live token: 202s, no 401
    assert sum(hits.values()) == hits_before, f"the third party was requested: {hits}"
