"""The response path against a hostile target: interim responses, framing, truncation, size limits.

Each test talks to :class:`hostile.HostileServer` over loopback through the
real client (scenario mode: :class:`Connection`; ad-hoc mode: ``send_fixed``
on a :class:`BareConnection`) and asserts exact counts: requests recorded ==
requests the server saw, each error of the kind documented in
``loadgen/http/connection.py``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time

import psutil
import pytest

from loadgen.http.client import Client, FixedRequest
from loadgen.http.limits import DEFAULT_LIMITS
from loadgen.http.response import ResponseError, ResponseTooLarge
from loadgen.engine.recorder import Recorder

sys.path.insert(0, os.path.dirname(__file__))
from clients import run_client  # noqa: E402
from hostile import HostileServer  # noqa: E402


@pytest.fixture(scope="module")
def srv():
    with HostileServer() as s:
        yield s


def _run(coro_fn, base_url: str, **session_kw):
    """``coro_fn(client, recorder)``; returns (its result, the recorder)."""
    return run_client(lambda client: coro_fn(client, client._recorder), base_url, **session_kw)[:2]


def _fixed(srv, path: str, n: int = 1, **session_kw):
    """Send ``n`` ad-hoc requests (bare connections) one after the other; their codes."""

    async def go(c: Client, rec: Recorder):
        req = FixedRequest(rec, srv.url + path)
        return [await c.send_fixed(req) for _ in range(n)]

    return _run(go, srv.url, **session_kw)


_SNAPS: dict[int, tuple[Recorder, dict]] = {}


def _ep(rec: Recorder, key: str):
    """An endpoint of the recorder's first snapshot (a snapshot starts a new interval, so take one)."""
    got = _SNAPS.get(id(rec))
    if got is None or got[0] is not rec:
        got = _SNAPS[id(rec)] = (rec, rec.snapshot().endpoints)
    return got[1][key]


def _counts_before(srv, *paths: str) -> dict[str, int]:
    return {p: srv.counts[p] for p in paths}


# -- symptom 2: interim responses ---------------------------------------------------


def test_interim_responses_are_skipped_and_the_final_status_recorded(srv):
    async def go(c: Client, rec: Recorder):
        return await c.get("/interim-500")

    r, rec = _run(go, srv.url, timeout_s=10)
    assert r.status == 500 and r.text == "broken"
    assert "link" not in r.headers  # the 103's headers are dropped
    ep = _ep(rec, "GET /interim-500")
    assert ep.requests == 1 and ep.status_codes == {500: 1}
    assert ep.errors == 1 and ep.errors_by_kind == {"http_5xx": 1}


def test_interim_responses_are_skipped_by_bare_connections_too(srv):
    codes, rec = _fixed(srv, "/interim-500", 3, timeout_s=10)
    assert codes == [500, 500, 500]
    assert _ep(rec, "GET /interim-500").status_codes == {500: 3}


def test_endless_interim_responses_are_too_large_not_a_hang(srv):
    async def go(c: Client, rec: Recorder):
        return await c.get("/endless-continue")

    t0 = time.monotonic()
    r, rec = _run(go, srv.url, timeout_s=30)
    assert r.error == "too_large"
    assert _ep(rec, "GET /endless-continue").errors_by_kind == {"too_large": 1}
    assert time.monotonic() - t0 < 25  # ended by the head limit, not by the timeout


# -- symptom 4: keep-alive framing --------------------------------------------------


def test_two_responses_in_one_read_are_never_merged(srv):
    before = _counts_before(srv, "/two-responses", "/ok")

    async def go(c: Client, rec: Recorder):
        first = await c.get("/two-responses")
        oks = [await c.get("/ok") for _ in range(5)]
        return first, oks

    (first, oks), rec = _run(go, srv.url, timeout_s=10)
    assert first.status == 200 and first.content == b"first"
    assert first.headers.get_all("content-length") == ["5"]
    assert [r.content for r in oks] == [b"ok"] * 5
    assert all(r.elapsed_ms < 45 for r in oks)  # no response borrowed from the unsolicited bytes
    assert _ep(rec, "GET /two-responses").requests == 1 == srv.counts["/two-responses"] - before["/two-responses"]
    ok = _ep(rec, "GET /ok")
    assert ok.requests == 5 == srv.counts["/ok"] - before["/ok"] and ok.errors == 0


def test_bytes_on_an_idle_connection_poison_it(srv):
    before = _counts_before(srv, "/late-extra", "/ok")

    async def go(c: Client, rec: Recorder):
        first = await c.get("/late-extra")
        await asyncio.sleep(0.3)  # the unsolicited response arrives while nothing waits
        oks = [await c.get("/ok") for _ in range(5)]
        return first, oks

    (first, oks), rec = _run(go, srv.url, timeout_s=10)
    assert first.content == b"first"
    assert first.headers.get_all("content-length") == ["5"]  # nothing appended after the fact
    assert [r.content for r in oks] == [b"ok"] * 5
    assert all(r.elapsed_ms < 45 for r in oks)
    assert _ep(rec, "GET /late-extra").requests == 1 == srv.counts["/late-extra"] - before["/late-extra"]
    ok = _ep(rec, "GET /ok")
    assert ok.requests == 5 == srv.counts["/ok"] - before["/ok"] and ok.errors == 0
    assert sum(_ep(rec, k).requests for k in _SNAPS[id(rec)][1]) == 6  # nothing recorded for stray bytes


def test_a_body_after_a_no_content_response_poisons_the_connection(srv):
    async def go(c: Client, rec: Recorder):
        a = await c.get("/no-content-with-body")
        b = await c.get("/ok")
        return a, b

    (a, b), rec = _run(go, srv.url, timeout_s=10)
    assert a.status == 204 and a.content == b""
    assert b.status == 200 and b.content == b"ok"
    assert _ep(rec, "GET /ok").errors == 0


# -- symptom 5: truncated bodies ----------------------------------------------------


@pytest.mark.parametrize("bare", [False, True], ids=["connection", "bare"])
@pytest.mark.parametrize("path", ["/short-body-close", "/chunked-cut"])
def test_a_truncated_body_is_a_reset_even_with_connection_close(srv, path, bare):
    before = srv.counts[path]
    if bare:
        codes, rec = _fixed(srv, path, 3, timeout_s=10)
    else:
        async def go(c: Client, rec: Recorder):
            return [await c.get(path) for _ in range(3)]

        rs, rec = _run(go, srv.url, timeout_s=10)
        assert [r.error for r in rs] == ["reset"] * 3 and all(r.status == 0 for r in rs)
    ep = _ep(rec, "GET " + path)
    assert ep.requests == 3 == srv.counts[path] - before
    assert ep.errors_by_kind == {"reset": 3} and ep.status_codes == {}


@pytest.mark.parametrize("bare", [False, True], ids=["connection", "bare"])
def test_a_body_delimited_by_the_close_is_complete(srv, bare):
    if bare:
        codes, rec = _fixed(srv, "/close-delimited", 3, timeout_s=10)
        assert codes == [200] * 3
    else:
        async def go(c: Client, rec: Recorder):
            return [await c.get("/close-delimited") for _ in range(3)]

        rs, rec = _run(go, srv.url, timeout_s=10)
        assert [r.content for r in rs] == [b"until the end"] * 3
    ep = _ep(rec, "GET /close-delimited")
    assert ep.requests == 3 and ep.errors == 0 and ep.status_codes == {200: 3}


# -- symptom 8: size limits ---------------------------------------------------------


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


class _PeakRss:
    """The process's highest RSS while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        import threading

        self.base = _rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        p = psutil.Process()
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, p.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


@pytest.mark.parametrize("bare", [False, True], ids=["connection", "bare"])
@pytest.mark.parametrize("path", ["/endless-headers", "/endless-body", "/huge-length"])
def test_an_endless_response_is_too_large_and_memory_stays_bounded(srv, path, bare):
    before = srv.counts[path]
    t0 = time.monotonic()
    with _PeakRss() as mem:
        if bare:
            codes, rec = _fixed(srv, path, 2, timeout_s=60)
            assert codes == [-6, -6]
        else:
            async def go(c: Client, rec: Recorder):
                return [await c.get(path) for _ in range(2)]

            rs, rec = _run(go, srv.url, timeout_s=60)
            assert [r.error for r in rs] == ["too_large"] * 2
    assert time.monotonic() - t0 < 50  # cut off at the limit, not at the 60 s timeout
    ep = _ep(rec, "GET " + path)
    assert ep.requests == 2 == srv.counts[path] - before
    assert ep.errors_by_kind == {"too_large": 2}
    assert mem.growth_mb < 300, f"RSS grew by {mem.growth_mb:.0f} MB"


def test_a_gzip_bomb_is_too_large_when_read_and_counted_once(srv):
    async def go(c: Client, rec: Recorder):
        r = await c.get("/gzip-bomb")
        raised = []
        for read in (lambda: r.content, lambda: r.text, r.json):
            try:
                read()
            except ResponseTooLarge as e:
                raised.append(e)
        return r, raised

    with _PeakRss() as mem:
        (r, raised), rec = _run(go, srv.url, timeout_s=60)
    assert r.status == 200 and len(raised) == 3
    assert isinstance(raised[0], ValueError) and "--max-decoded-size" in str(raised[0])
    assert not r.ok
    ep = _ep(rec, "GET /gzip-bomb")
    assert ep.requests == 1 and ep.errors == 1 and ep.errors_by_kind == {"too_large": 1}
    # the server's own gzip.compress of 256 MiB runs in this process too; the client adds at most the limit
    assert mem.growth_mb < 300 + 256, f"RSS grew by {mem.growth_mb:.0f} MB"
    assert DEFAULT_LIMITS.max_decoded_bytes < 256 << 20


def test_a_body_that_is_not_the_gzip_it_claims_is_a_protocol_error_not_a_traceback(srv):
    async def go(c: Client, rec: Recorder):
        r = await c.get("/bad-gzip")
        with pytest.raises(ResponseError) as e1:
            r.text
        with pytest.raises(ValueError):  # json() callers that catch ValueError keep working
            r.json()
        checked = r.check(contains="x")
        return r, str(e1.value), checked

    (r, msg, checked), rec = _run(go, srv.url, timeout_s=10)
    assert "gzip" in msg and not checked and not r.ok
    ep = _ep(rec, "GET /bad-gzip")
    assert ep.requests == 1 and ep.errors == 1 and ep.errors_by_kind == {"protocol": 1}


# -- garbage and other hostile framing ----------------------------------------------


@pytest.mark.parametrize("bare", [False, True], ids=["connection", "bare"])
@pytest.mark.parametrize(
    "path",
    ["/garbage", "/length-and-chunked", "/negative-length", "/header-without-colon", "/switching-protocols"],
)
def test_invalid_responses_are_protocol_errors(srv, path, bare):
    before = srv.counts[path]
    if bare:
        codes, rec = _fixed(srv, path, 2, timeout_s=10)
        assert codes == [-4, -4]
    else:
        async def go(c: Client, rec: Recorder):
            return [await c.get(path) for _ in range(2)]

        rs, rec = _run(go, srv.url, timeout_s=10)
        assert [r.error for r in rs] == ["protocol"] * 2
    ep = _ep(rec, "GET " + path)
    assert ep.requests == 2 == srv.counts[path] - before
    assert ep.errors_by_kind == {"protocol": 2}


def test_a_status_line_without_a_reason_is_fine(srv):
    codes, rec = _fixed(srv, "/no-reason", 3, timeout_s=10)
    assert codes == [200] * 3
    assert _ep(rec, "GET /no-reason").errors == 0
