"""The request side of the HTTP client against hostile targets (issue 10).

Every request sent is recorded exactly once (cut off by the end of the run,
retried after a stale keep-alive, stuck in a connect), nothing malformed ever
reaches the wire, and credentials in a URL are sent as Basic auth and never
shown. Counts are compared exactly with what the server saw.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from clients import run_client
from hostile import HostileServer, Request, ok_response
from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.errors import UsageError
from loadgen.http.client import Client, FixedRequest, Origin, Session
from loadgen.engine.recorder import Recorder
from loadgen.scenario import Scenario, UserTasks, User

pytestmark = pytest.mark.timeout(120)


def _scenario(user_cls: type[User]) -> Scenario:
    return Scenario(__file__, (UserTasks(user_cls, (user_cls.go,), ("go",)),), (1,))


def _mixed_user() -> type[User]:
    """A user whose requests go 1 in 5 to /stall (never answered), the rest to /ok."""
    counter = itertools.count()

    class Mixed(User):
        async def go(self) -> None:
            if next(counter) % 5 == 4:
                await self.client.get("/stall", name="/stall")
            else:
                await self.client.get("/ok", name="/ok")

    return Mixed


def _totals(result):
    return result.recorder.totals


# -- 1. requests cut off by the end of the run ----------------------------------


@pytest.mark.parametrize("model", ["closed", "open"])
def test_requests_in_flight_at_the_end_are_recorded_as_cutoff(model):
    with HostileServer() as srv:
        extra = {"users": 5, "spawn_rate": 100} if model == "closed" else {"rate": 25}
        config = RunConfig(host=srv.url, model=model, run_time_s=2.0, graceful_stop_s=1.0, **extra)
        t0 = time.monotonic()
        result = Engine(config, scenario=_scenario(_mixed_user()), handle_signals=False).run()
        elapsed = time.monotonic() - t0
        tot = _totals(result)
        seen = srv.counts["/ok"] + srv.counts["/stall"]
        assert srv.counts["/stall"] >= 1
        # Every request the server saw is recorded, once, as a status or an error kind.
        assert tot.overall.requests == seen
        assert tot.endpoints["GET /ok"].status_codes == {200: srv.counts["/ok"]}
        stall = tot.endpoints["GET /stall"]
        assert stall.requests == stall.errors == srv.counts["/stall"]
        assert stall.errors_by_kind == {"cutoff": srv.counts["/stall"]}
        # Each waited at least the graceful stop (it started before the schedule ended).
        assert stall.latency.total_count == stall.requests
        assert stall.latency.get_min_value() >= 0.95e6  # µs
        if model == "open":
            assert tot.iterations + tot.dropped_iterations == 50
        assert elapsed < 2.0 + 1.0 + 10


def test_stalls_past_a_short_timeout_are_timeouts_then_cutoffs():
    with HostileServer() as srv:
        config = RunConfig(host=srv.url, model="closed", users=3, spawn_rate=100, run_time_s=2.0,
                           graceful_stop_s=1.0, timeout_s=0.5)
        result = Engine(config, scenario=_scenario(_mixed_user()), handle_signals=False).run()
        tot = _totals(result)
        assert tot.overall.requests == srv.counts["/ok"] + srv.counts["/stall"]
        stall = tot.endpoints["GET /stall"]
        kinds = stall.errors_by_kind
        assert set(kinds) <= {"timeout", "cutoff"} and kinds.get("timeout", 0) >= 1
        assert sum(kinds.values()) == stall.requests == srv.counts["/stall"]
        assert stall.latency.get_min_value() >= 0.45e6


@pytest.mark.parametrize("model", ["closed", "open"])
def test_adhoc_requests_cut_off_are_recorded(model):
    with HostileServer() as srv:
        extra = {"users": 3, "spawn_rate": 100} if model == "closed" else {"rate": 10}
        config = RunConfig(model=model, run_time_s=2.0, graceful_stop_s=1.0, **extra)
        result = Engine(config, adhoc=AdHocRequest(srv.url + "/stall"), handle_signals=False).run()
        tot = _totals(result)
        assert tot.overall.requests == srv.counts["/stall"] >= 3
        assert tot.overall.errors_by_kind == {"cutoff": tot.overall.requests}
        assert tot.overall.latency.get_min_value() >= 0.95e6
        if model == "open":
            # Intended arrivals = recorded requests + dropped iterations.
            assert tot.iterations + tot.dropped_iterations == 20
            assert tot.overall.requests + tot.dropped_iterations == 20


# -- 2. the stale keep-alive retry: never twice, never lost -----------------------


_run = run_client


def _answer_then_close(conn: socket.socket, req: Request) -> bool:
    """Answer as if the connection stays open (no Connection: close), then close it."""
    conn.sendall(ok_response())
    return False


def test_a_connection_closed_after_answering_loses_no_request():
    with HostileServer({"/bye": _answer_then_close}) as srv:

        async def go(c: Client):
            return [await c.get("/bye") for _ in range(30)], [await c.post("/bye", data=b"x") for _ in range(30)]

        (gets, posts), rec, sess = _run(go, srv.url)
        ep = rec.snapshot()
        got, posted = ep.endpoints["GET /bye"], ep.endpoints["POST /bye"]
        # A GET may be sent again when the close raced the write (the server never read it).
        assert got.requests == 30 and got.status_codes == {200: 30}
        # A POST is never sent twice: if the close raced its write it is recorded as the reset it got.
        assert posted.requests == 30
        assert posted.status_codes.get(200, 0) + posted.errors_by_kind.get("reset", 0) == 30
        assert srv.counts["/bye"] == 30 + posted.status_codes.get(200, 0)


def _first_then_swallow():
    """First request on a connection: answered, kept alive. Second: read, then closed unanswered."""
    served: dict[int, int] = {}

    def behaviour(conn: socket.socket, req: Request) -> bool:
        n = served[id(conn)] = served.get(id(conn), 0) + 1
        if n == 1:
            conn.sendall(ok_response())
            return True
        return False

    return behaviour


def test_a_request_the_server_may_have_processed_is_never_silently_resent():
    with HostileServer({"/x": _first_then_swallow()}) as srv:

        async def go(c: Client):
            a = await c.post("/x", data=b"1")
            b = await c.post("/x", data=b"2")  # read by the server, which then closes
            return a, b

        (a, b), rec, sess = _run(go, srv.url)
        assert a.status == 200 and b.error == "reset"
        ep = rec.snapshot().endpoints["POST /x"]
        assert ep.requests == 2 == srv.counts["/x"]  # before: the POST was sent twice, recorded once
        assert sess.retried == 0

    with HostileServer({"/x": _first_then_swallow()}) as srv:

        async def go2(c: Client):
            return await c.get("/x"), await c.get("/x")

        (a, b), rec, sess = _run(go2, srv.url)
        # A GET that failed on a reused connection before any response byte is retried once
        # on a fresh connection, and the retry is counted: recorded + retried == seen.
        assert a.status == 200 and b.status == 200
        assert rec.snapshot().endpoints["GET /x"].requests == 2
        assert sess.retried == 1 and srv.counts["/x"] == 3


# -- 3. run-time values that cannot go on the wire -------------------------------


class _Capture:
    """A raw server that keeps every byte it receives and answers each request head with 200."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.heads = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                with self._lock:
                    self.data += chunk
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    n = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            n = int(line.split(b":")[1])
                    buf = buf[n:]
                    with self._lock:
                        self.heads += 1
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def capture() -> Iterator[_Capture]:
    c = _Capture()
    yield c
    c.close()


async def _bad_requests(c: Client) -> list:
    out = []
    inj = "v\r\nX-Injected: 1"
    out.append(await c.get("/a", headers={"X-Row": inj}))  # per request: the dynamic path
    out.append(await c.get("/a", headers={"X-Nul": "a\0b"}))
    out.append(await c.get("/a", headers={"Bad Name": "v"}))
    out.append(await c.get("/a", headers={"X-Split:": "v"}))
    out.append(await c.get("/a", headers={"X-Name": "Łódź"}))
    out.append(await c.post("/a", json={"k": 1}, headers={"X-Row": "a\nX-Injected: 2"}))
    c.headers["X-Session"] = inj  # the user's headers: the cached block
    out.append(await c.get("/a"))
    out.append(await c.get("/a", name="/a-again"))
    c.headers["X-Session"] = "ok"
    c.headers["X-Name"] = "名前"
    out.append(await c.get("/a"))
    del c.headers["X-Name"]
    out.append(await c.request("GET /a HTTP/1.1\r\nX-Injected: 3\r\nX:", "/a"))
    out.append(await c.request("GE T", "/a"))
    out.append(await c.get("/a b"))
    out.append(await c.get("/a\r\nX-Injected: 4"))
    out.append(await c.get(c.base_url + "/a\r\nX-Injected: 5"))
    out.append(await c.get(c.base_url + "/a b"))
    out.append(await c.get("/a\x00"))
    good = await c.get("/a")  # the client still works
    return out + [good]


def test_values_that_cannot_go_on_the_wire_fail_that_request_only(capture):
    rs, rec, sess = _run(_bad_requests, capture.url)
    bad, good = rs[:-1], rs[-1]
    assert good.status == 200
    for r in bad:
        assert (r.status, r.error, r.ok) == (0, "invalid_request", False), r
    assert b"X-Injected" not in capture.data and b"\0" not in capture.data
    assert capture.heads == 1  # only the good request was sent
    snap = rec.snapshot()
    assert snap.overall.requests == len(rs)
    assert snap.overall.errors_by_kind == {"invalid_request": len(bad)}
    assert snap.overall.latency.total_count == 1  # an unsent request has no latency
    for key in snap.endpoints:
        assert "\r" not in key and "\n" not in key and "\0" not in key
    msgs = " | ".join(sess.request_errors)
    for what in ("'X-Row'", "'X-Nul'", "'Bad Name'", "'X-Split:'", "'X-Name'", "'X-Session'", "method", "URL"):
        assert what in msgs, (what, msgs)
    assert sum(sess.request_errors.values()) == len(bad)
    assert "X-Injected: 1" not in msgs  # messages say what is wrong, not the value (it may be a secret)


def test_request_errors_are_bounded(capture):
    async def go(c: Client):
        for i in range(50):
            await c.get("/a", headers={f"Bad {i}": "v"})

    _, rec, sess = _run(go, capture.url)
    assert len(sess.request_errors) <= 21
    assert sum(sess.request_errors.values()) == 50
    assert capture.heads == 0


@pytest.mark.parametrize(
    "url, method, headers, what",
    [
        ("/a", "GET", {"X-A": "1\r\nX-Injected: 1"}, "'X-A'"),
        ("/a", "GET", {"X-A": "é€"}, "'X-A'"),
        ("/a", "GET", {"X A": "1"}, "'X A'"),
        ("/a", "GE T", {}, "method"),
        ("/a b", "GET", {}, "URL"),
        ("/a\tb", "GET", {}, "URL"),
    ],
)
def test_an_adhoc_request_that_cannot_be_sent_is_a_usage_error(url, method, headers, what):
    with pytest.raises(UsageError, match="cannot be sent") as exc:
        FixedRequest(Recorder(), "http://127.0.0.1:9" + url, method, headers)
    assert what in str(exc.value) and "\n" not in str(exc.value) and "X-Injected" not in str(exc.value)


def test_cli_bad_adhoc_header_is_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", "--url", "http://127.0.0.1:9/a", "--header", "X-A: é€",
         "--run-time", "1s", "--db", "none", "--quiet"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")},
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "X-A" in proc.stderr


# -- 4. credentials in URLs ---------------------------------------------------------

USER, PASSWORD = "us@er", "p:ss w"
SECRET_URL_PART = "us%40er:p%3Ass%20w@"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _needs_auth(conn: socket.socket, req: Request) -> bool:
    got = req.headers.get("authorization")
    if got == BASIC:
        conn.sendall(ok_response(b"basic"))
    elif got:
        conn.sendall(ok_response(got.encode()))
    else:
        conn.sendall(ok_response(b"who?", "401 Unauthorized"))
    return True


def _with_creds(url: str) -> str:
    return url.replace("http://", "http://" + SECRET_URL_PART)


def _leaks(*texts: str) -> bool:
    return any(s in t for t in texts for s in ("p%3Ass", "p:ss", "us%40er", "us@er", "ss w"))


def test_url_credentials_are_sent_as_basic_auth_and_never_shown():
    with HostileServer({"/auth": _needs_auth}) as srv:
        creds = _with_creds(srv.url)
        o = Origin(creds)
        assert not _leaks(o.key, o.host_header)

        async def go(c: Client):
            base = await c.get("/auth")
            absolute = await c.get(creds + "/auth?x=1", name=None)
            own = await c.get("/auth", headers={"authorization": "Bearer mine"})
            c.headers["Authorization"] = "Bearer user-level"
            user_level = await c.get("/auth")
            return base, absolute, own, user_level, c.base_url

        (base, absolute, own, user_level, base_url), rec, _ = _run(go, creds)
        assert (base.status, base.text) == (200, "basic")
        assert (absolute.status, absolute.text) == (200, "basic")
        assert own.text == "Bearer mine" and user_level.text == "Bearer user-level"
        assert not _leaks(base_url, base.url, absolute.url, repr(absolute), *rec.snapshot().endpoints)
        assert absolute.url.startswith("http://127.0.0.1:")

        # An absolute URL with credentials from a client without a base URL.
        async def go2(c: Client):
            return await c.get(creds + "/auth")

        r, rec, _ = _run(go2, None)
        assert r.text == "basic" and not _leaks(r.url, *rec.snapshot().endpoints)

        # Ad-hoc mode (--url with credentials), through the engine.
        config = RunConfig(model="closed", users=1, run_time_s=0.5, graceful_stop_s=1.0)
        result = Engine(config, adhoc=AdHocRequest(creds + "/auth"), handle_signals=False).run()
        tot = _totals(result)
        assert tot.overall.requests == srv.counts["/auth"] - 5 > 0
        assert tot.overall.status_codes == {200: tot.overall.requests}
        assert not _leaks(*tot.endpoints)


def test_url_credential_errors_do_not_show_the_password():
    with pytest.raises(UsageError) as exc:
        Origin("http://user:hunter2@127.0.0.1:99999/")
    assert "hunter2" not in str(exc.value)


# -- 5. connects ---------------------------------------------------------------------


class _NeverAccepts:
    """A listening socket whose accept backlog is full: connects to it hang."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.fill = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(self.sock.getsockname())
            except BlockingIOError:
                pass
            self.fill.append(s)
        time.sleep(0.2)

    def close(self) -> None:
        for s in [*self.fill, self.sock]:
            s.close()


@pytest.fixture
def never_accepts() -> Iterator[_NeverAccepts]:
    t = _NeverAccepts()
    yield t
    t.close()


def test_connects_cut_off_by_the_end_are_recorded(never_accepts):
    config = RunConfig(
        host=never_accepts.url, model="closed", users=2, spawn_rate=100, run_time_s=1.0,
        graceful_stop_s=1.0, connect_timeout_s=60.0,
    )
    t0 = time.monotonic()
    result = Engine(config, scenario=_scenario(_mixed_user()), handle_signals=False).run()
    assert time.monotonic() - t0 < 1.0 + 1.0 + 10
    tot = _totals(result)
    assert tot.overall.requests == 2
    assert tot.overall.errors_by_kind == {"cutoff": 2}
    assert tot.overall.latency.get_min_value() >= 1.5e6  # waited from ~0 s to the cut at ~2 s


def test_connect_timeout_is_a_connect_error_with_its_wait(never_accepts):
    async def go(c: Client):
        return await c.get("/")

    r, rec, sess = _run(go, never_accepts.url, connect_timeout_s=0.5)
    assert r.error == "connect"
    ep = rec.snapshot().endpoints["GET /"]
    assert ep.errors_by_kind == {"connect": 1}
    assert ep.latency.get_max_value() >= 0.45e6
    assert not sess.connections


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_cancelled_connect_leaves_nothing_behind(never_accepts):
    async def main():
        rec = Recorder()
        sess = Session(rec, connect_timeout_s=60)
        sess.start()
        origin = Origin(never_accepts.url)
        await asyncio.sleep(0)
        before = _open_fds()
        for _ in range(20):
            t = asyncio.ensure_future(sess.connect(origin))
            await asyncio.sleep(0.01)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        await asyncio.sleep(0.1)
        after = _open_fds()
        left = set(sess.connections)
        sess.close()
        return before, after, left

    before, after, left = asyncio.run(main())
    assert not left and after <= before + 1


# -- 6. size limits reach every connection and response ---------------------------


def _small_gzip(conn: socket.socket, req: Request) -> bool:
    import gzip

    conn.sendall(ok_response(gzip.compress(b"\0" * 10_000), extra="Content-Encoding: gzip\r\n"))
    return True


def test_session_limits_reach_connections_and_responses():
    from loadgen.http.limits import Limits
    from loadgen.http.response import ResponseTooLarge

    limits = Limits(max_head_bytes=4096, max_body_bytes=100_000, max_decoded_bytes=1000)
    with HostileServer({"/small-gzip": _small_gzip}) as srv:

        async def go(c: Client):
            body = await c.get("/endless-body")
            head = await c.get("/endless-headers")
            gz = await c.get("/small-gzip")
            with pytest.raises(ResponseTooLarge):
                gz.content
            return body, head, gz

        (body, head, gz), rec, _ = _run(go, srv.url, limits=limits)
        assert body.error == head.error == "too_large"
        assert gz.status == 200 and not gz.ok
        snap = rec.snapshot()
        assert snap.endpoints["GET /endless-body"].errors_by_kind == {"too_large": 1}
        assert snap.endpoints["GET /endless-body"].bytes_received < 2_000_000  # the session's limit, not 64 MiB
        assert snap.endpoints["GET /endless-headers"].errors_by_kind == {"too_large": 1}
        assert snap.endpoints["GET /small-gzip"].errors_by_kind == {"too_large": 1}


def test_headers_on_the_wire_replace_rather_than_repeat(capture):
    """Per-request headers and json= replace the user's or default headers of the same name."""

    async def go(c: Client):
        c.headers["X-User"] = "u"
        await c.get("/1", headers={"Accept": "text/html"})
        c.headers["Content-Type"] = "text/plain"
        await c.post("/2", json={"a": 1})
        await c.post("/3", json={"a": 1}, headers={"Content-Type": "application/vnd.x+json"})
        del c.headers["Content-Type"]
        await c.post("/4", data={"k": "v"}, headers={"X-Req": "r"})
        await c.get("/5", headers={"Authorization": "Bearer z"})

    _run(go, _with_creds(capture.url))
    by_path = {m.group(1): m.group(0) for m in re.finditer(rb"(?:GET|POST) (/\d) HTTP/1\.1\r\n.*?\r\n\r\n",
                                                             bytes(capture.data), re.S)}
    assert len(by_path) == 5

    def values(path: bytes, name: bytes) -> list[bytes]:
        return [ln.split(b": ", 1)[1] for ln in by_path[path].split(b"\r\n")[1:] if ln.split(b":")[0] == name]

    assert values(b"/1", b"Accept") == [b"text/html"] and values(b"/1", b"X-User") == [b"u"]
    assert values(b"/2", b"Content-Type") == [b"application/json"]
    assert values(b"/3", b"Content-Type") == [b"application/vnd.x+json"]
    assert values(b"/4", b"Content-Type") == [b"application/x-www-form-urlencoded"]
    assert values(b"/4", b"X-Req") == [b"r"] and values(b"/4", b"Content-Length") == [b"3"]
    assert values(b"/5", b"Authorization") == [b"Bearer z"]
    assert values(b"/1", b"Authorization") == [BASIC.encode()]
    assert all(len(values(p, b"Host")) == 1 for p in by_path)
