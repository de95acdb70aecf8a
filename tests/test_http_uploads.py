"""Uploads through the client: streamed with flow control, recorded once (issue 12).

The server is a real aiohttp app in a thread that reads each part as it
arrives and keeps only its size and digest, so the memory measured is the
client's.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from aiohttp import web

from aiohttp_thread import ThreadedApp
from clients import run_client
from loadgen.http.client import Client


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _app() -> web.Application:
    """Parses multipart uploads piece by piece: per part its name, filename, type, size and sha256."""

    async def parts(request: web.Request) -> web.Response:
        seen = []
        async for part in await request.multipart():
            digest, size = hashlib.sha256(), 0
            while chunk := await part.read_chunk(1 << 16):
                digest.update(chunk)
                size += len(chunk)
            seen.append({"name": part.name, "filename": part.filename, "size": size,
                         "type": part.headers.get("Content-Type"), "sha256": digest.hexdigest()})
        return web.json_response(seen)

    async def early(request: web.Request) -> web.Response:
        return web.Response(status=413, text="too big", headers={"Connection": "close"})

    app = web.Application(client_max_size=1 << 31)
    app.router.add_post("/parts", parts)
    app.router.add_post("/early", early)
    return app


@pytest.fixture
def server():
    with ThreadedApp(_app) as s:
        yield s


def test_a_100_mb_upload_is_streamed_with_flat_memory(server, tmp_path):
    big = tmp_path / "video.mp4"
    with big.open("wb") as fh:  # sparse: 100 MB on the wire, nothing on disk
        fh.truncate(100 * 1024 * 1024)
    peak = []

    async def go(c: Client):
        before = _rss_bytes()
        sampler_done = asyncio.Event()

        async def sample() -> None:
            while not sampler_done.is_set():
                peak.append(_rss_bytes() - before)
                await asyncio.sleep(0.01)

        task = asyncio.create_task(sample())
        r = await c.post("/parts", files={"clip": big}, data={"title": "launch"}, timeout=120)
        sampler_done.set()
        await task
        return r

    r, rec, _ = run_client(go, f"http://127.0.0.1:{server.port}")
    assert r.status == 200, r.text
    zero = hashlib.sha256(bytes(100 * 1024 * 1024)).hexdigest()
    assert r.json() == [
        {"name": "title", "filename": None, "size": 6, "type": None,
         "sha256": hashlib.sha256(b"launch").hexdigest()},
        {"name": "clip", "filename": "video.mp4", "size": 100 * 1024 * 1024, "type": "video/mp4", "sha256": zero},
    ]
    assert peak and max(peak) < 30 * 1024 * 1024, f"RSS grew {max(peak) / 1e6:.1f} MB while uploading"
    ep = rec.snapshot().endpoints["POST /parts"]
    assert ep.requests == 1 and ep.bytes_sent > 100 * 1024 * 1024


def test_a_server_that_answers_before_the_upload_ends_is_recorded_once_and_not_reused(server, tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(20 * 1024 * 1024)

    async def go(c: Client):
        first = await c.post("/early", files={"f": big})
        second = await c.post("/parts", files={"f": ("small.txt", b"hello", "text/plain")})
        return first, second

    (first, second), rec, _ = run_client(go, f"http://127.0.0.1:{server.port}")
    # The 413 may arrive before the body is sent or the server may reset the upload: either
    # way one row, an error, and the next upload is sent on a fresh connection and succeeds.
    assert first.status == 413 or first.error in ("reset", "protocol")
    assert second.status == 200 and second.json()[0]["size"] == 5
    snap = rec.snapshot()
    assert snap.endpoints["POST /early"].requests == 1
    assert snap.endpoints["POST /parts"].requests == 1


def test_a_file_that_shrinks_during_the_upload_is_not_sent_as_if_whole(server, tmp_path):
    f = tmp_path / "growing.log"
    f.write_bytes(b"x" * (2 * 1024 * 1024))

    async def go(c: Client):
        coro = c.post("/parts", files={"f": f})
        f.write_bytes(b"x" * 1024)  # measured at encode time; shorter when read
        return await coro

    r, rec, _ = run_client(go, f"http://127.0.0.1:{server.port}")
    # The coroutine encodes when first awaited, so it measures the new size: a consistent upload.
    assert r.status == 200 and r.json()[0]["size"] == 1024


def test_a_body_that_changes_while_streamed_ends_the_request_invalid(server, tmp_path):
    f = tmp_path / "shrinks.bin"
    f.write_bytes(b"y" * (8 * 1024 * 1024))

    class Shrinking:
        """A file object that reports 8 MB and delivers 1 MB: what a truncated log looks like."""

        name = str(f)

        def __init__(self) -> None:
            self._fh = f.open("rb")
            self._left = 1024 * 1024

        def read(self, n: int = -1) -> bytes:
            if self._left <= 0:
                return b""
            data = self._fh.read(min(n if n > 0 else self._left, self._left))
            self._left -= len(data)
            return data

        def seek(self, *a):
            return self._fh.seek(*a)

        def tell(self):
            return self._fh.tell()

        def fileno(self):
            return self._fh.fileno()

    async def go(c: Client):
        return await c.post("/parts", files={"f": Shrinking()})

    r, rec, _ = run_client(go, f"http://127.0.0.1:{server.port}")
    assert r.status == 0 and r.error == "invalid_request"
    assert rec.snapshot().endpoints["POST /parts"].errors == 1
