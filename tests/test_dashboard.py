"""The live dashboard: frames from real recorders agree with /metrics; the feed; the paths and their
headers; the SSE stream against stop(); and the page in headless Chromium during a real run."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadgen.config import RunConfig
from loadgen.engine import histogram as hdr
from loadgen.engine.recorder import ERR_CONNECT, ERR_TIMEOUT, IntervalSnapshot, Recorder
from loadgen.errors import EXIT_OK
from loadgen.observe.dashboard import Dashboard
from loadgen.observe.dashboard.feed import Feed
from loadgen.observe.dashboard.frames import EndpointRow, Frame, Point, RunInfo, Status
from loadgen.observe.exporter import MetricsExporter

pytestmark = pytest.mark.timeout(120)

INFO = RunInfo(run_id="run-1", scenario="shop.py", host="http://127.0.0.1:9", model="open", app_version="1.0",
               test_type="load", planned_s=10.0)
S = 1_000_000_000  # ns


# -- a run as sinks see it, over a real recorder -------------------------------------------


@dataclass
class Run:
    """A RunView over a real Recorder, for intervals made here (loadgen.sinks.RunView)."""

    recorder: Recorder = field(default_factory=Recorder)
    model: str = "open"
    config: RunConfig = field(default_factory=lambda: RunConfig(model="open", rate=10))
    scenario: None = None
    adhoc: None = None
    warnings: list[str] = field(default_factory=list)
    stopping: bool = False
    stop_reason: str | None = None

    def stop(self, reason: str | None = None) -> None:
        self.stopping = True
        self.stop_reason = self.stop_reason or reason


class Clock:
    """Feeds a recorder rows and cuts its intervals at exact seconds."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.t0 = time.perf_counter_ns()
        self.now = self.t0
        rec.start(self.t0)

    def rows(self, name: str, latencies_ms: list[float], code: int = 200, method: str = "GET") -> None:
        ep = self.rec.endpoint(method, name)
        for ms in latencies_ms:
            start = self.now
            ep.buf.extend([start, start, start + int(ms * 5e5), start + int(ms * 1e6), code, 100, 250])

    def interval(self, seconds: float = 1.0, *, users: int = 4, inflight: int = 2, target: float | None = 10.0,
                 iterations: int = 0) -> IntervalSnapshot:
        self.rec.iterations += iterations
        self.now += int(seconds * S)
        snap = self.rec.snapshot(self.now)
        snap.users, snap.inflight, snap.target_rate = users, inflight, target  # as the engine's _emit sets them
        return snap


def one_second(clock: Clock, i: int) -> IntervalSnapshot:
    """An interval with a bit of everything: successes, 4xx, 5xx, transport errors, a failed check."""
    clock.rows("/a", [1.0 + i, 2.0, 3.5, 40.0])
    clock.rows("/b", [5.0, 6.0], code=404)
    clock.rows("/b", [7.0], code=503)
    clock.rows("/c", [9.0], code=ERR_TIMEOUT, method="POST")
    clock.rows("/c", [0.5], code=ERR_CONNECT, method="POST")
    clock.rec.endpoint("GET", "/a").record_check("ok", False, count_error=True)
    return clock.interval(iterations=8 + i)


def parse(text: bytes) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(metrics: dict[str, list[Any]], name: str) -> float:
    return sum(s.value for s in metrics.get(name, []))


def errors_by_kind(metrics: dict[str, list[Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in metrics.get("loadgen_errors_total", []):
        out[s.labels["kind"]] = out.get(s.labels["kind"], 0) + int(s.value)
    return out


def exporter_with_dashboard(**kw: Any) -> tuple[MetricsExporter, Dashboard]:
    exporter = MetricsExporter(run_id="run-1", memory=False, **kw)
    return exporter, Dashboard(INFO).attach(exporter)


# -- frames ----------------------------------------------------------------------------------


def test_each_frame_equals_metrics_at_the_same_interval_and_the_table_the_summary() -> None:
    exporter, dash = exporter_with_dashboard()
    run = Run()
    clock = Clock(run.recorder)
    for i in range(3):
        snap = one_second(clock, i)
        exporter(snap, run)
        frame = dash.frames.latest
        m = parse(exporter.render())
        assert frame.interval == value(m, "loadgen_intervals_total") == i + 1
        assert frame.elapsed_s == pytest.approx(value(m, "loadgen_run_elapsed_seconds"), abs=1e-3)
        assert frame.requests == value(m, "loadgen_requests_total") == 9 * (i + 1)
        assert frame.errors_by_kind == errors_by_kind(m)
        assert frame.errors_by_kind == {"check": i + 1, "connect": i + 1, "http_4xx": 2 * (i + 1),
                                        "http_5xx": i + 1, "timeout": i + 1}
        assert frame.errors == sum(frame.errors_by_kind.values())
        assert frame.iterations == value(m, "loadgen_iterations_total")
        assert (frame.users, frame.inflight) == (value(m, "loadgen_active_users"),
                                                 value(m, "loadgen_inflight_iterations")) == (4, 2)
        assert frame.target_rate == value(m, "loadgen_target_arrival_rate") == 10.0
        assert frame.achieved_rate == pytest.approx(value(m, "loadgen_achieved_arrival_rate"), abs=0.01)
        classes: dict[str, int] = {}
        for s in m["loadgen_requests_total"]:
            classes[s.labels["status_class"]] = classes.get(s.labels["status_class"], 0) + int(s.value)
        assert frame.status_classes == classes
        point = frame.point
        assert point is not None and point.errors == snap.overall.errors_by_kind
        assert [point.p50, point.p95, point.p99] == [hdr.percentile_ms(snap.overall.latency, p) for p in (50, 95, 99)]
        assert point.rps == 9.0 and frame.status == "running"
    rows = {(r.method, r.name): r for r in dash.frames.latest.endpoints}
    for key, tot in run.recorder.totals.endpoints.items():  # what the summary reports per endpoint
        row = rows[(tot.method, tot.name)]
        assert (row.requests, row.errors) == (tot.requests, tot.errors)
        assert [row.p50, row.p95, row.p99, row.max] == [hdr.summarize_ms(tot.latency)[k] for k in
                                                         ("p50", "p95", "p99", "max")], key
    assert [r.name for r in dash.frames.latest.endpoints][0] == "/a"  # most requests first


def test_a_short_last_interval_keeps_the_rates_and_draws_no_rate_point() -> None:
    exporter, dash = exporter_with_dashboard()
    run = Run()
    clock = Clock(run.recorder)
    clock.rows("/a", [1.0] * 20)
    exporter(clock.interval(iterations=20), run)
    clock.rows("/a", [1.0] * 3)
    exporter(clock.interval(0.1, iterations=3), run)  # the last sliver of a run: 30/s would mislead
    frame = dash.frames.latest
    assert frame.point is not None and frame.point.rps is None and frame.point.cpu is None
    assert frame.rps == 20.0 and frame.achieved_rate == 20.0
    assert frame.achieved_rate == value(parse(exporter.render()), "loadgen_achieved_arrival_rate")
    assert frame.requests == 23


def test_the_final_frame_says_finished_and_why() -> None:
    exporter, dash = exporter_with_dashboard()
    run = Run()
    clock = Clock(run.recorder)
    clock.rows("/a", [1.0])
    exporter(clock.interval(), run)
    assert orjson.loads(dash.feed.latest)["status"] == "running"
    run.stop("abort-on-fail")
    exporter(clock.interval(), run)
    assert (dash.frames.latest.status, dash.frames.latest.stop_reason) == ("stopping", "abort-on-fail")
    exporter.finish()
    final = orjson.loads(dash.feed.latest)
    assert (final["status"], final["stop_reason"], final["requests"]) == ("finished", "abort-on-fail", 1)
    assert dash.feed.finished

    exporter, dash = exporter_with_dashboard()
    exporter.finish()  # a run that never had an interval still ends
    assert orjson.loads(dash.feed.latest)["status"] == "finished"


class _NoRecorder(Run):
    @property  # type: ignore[override]
    def recorder(self) -> Recorder:
        raise RuntimeError("broken run view")

    @recorder.setter
    def recorder(self, _: Recorder) -> None:
        pass


def test_a_frame_that_fails_is_one_warning_and_metrics_go_on() -> None:
    exporter, dash = exporter_with_dashboard(max_endpoints=10)
    run, good = _NoRecorder(), Run()
    clock = Clock(good.recorder)
    for _ in range(2):
        clock.rows("/a", [1.0])
        exporter(clock.interval(), run)
    assert value(parse(exporter.render()), "loadgen_requests_total") == 2  # /metrics has both intervals
    assert run.warnings == ["the live dashboard stopped updating: RuntimeError: broken run view"]
    assert orjson.loads(dash.feed.latest)["status"] == "starting"


# -- the feed --------------------------------------------------------------------------------


def frame_at(i: int, *, endpoints: int = 0, status: Status = "running") -> Frame:
    """A frame as the builder makes them, at second ``i``."""
    base = Dashboard(INFO).frames.latest
    rows = tuple(EndpointRow("GET", f"/endpoint/{n}/" + "x" * 60, n, 0, 1.0, 1.0, 2.0, 3.0, 4.0, n)
                 for n in range(endpoints))
    point = Point(float(i), 1.0, 1.0, None, 1.0, 2.0, 3.0, {}, 1, 0, 1.0, 0.0, None)
    return replace(base, interval=i, index=i - 1, elapsed_s=float(i), status=status, requests=i, point=point,
                   endpoints=rows)


def events(chunk: bytes) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a chunk of the stream."""
    out = []
    for block in chunk.split(b"\n\n"):
        name = re.search(rb"^event: (\S+)$", block, re.M)
        data = re.search(rb"^data: (.*)$", block, re.M)
        if name and data:
            out.append((name.group(1).decode(), json.loads(data.group(1))))
    return out


def test_the_history_is_bounded_and_a_new_page_starts_with_all_of_it() -> None:
    feed = Feed(frame_at(0), history=5)
    for i in range(1, 21):
        feed.publish(frame_at(i))
    assert feed.points == 5
    first = next(feed.stream(threading.Event()))
    got = events(first)
    assert [name for name, _ in got] == ["history", "frame"]
    assert [p["t"] for p in got[0][1]] == [16.0, 17.0, 18.0, 19.0, 20.0]
    assert got[1][1]["interval"] == 20


def test_every_page_gets_each_frame_and_a_page_behind_gets_what_it_missed() -> None:
    feed = Feed(frame_at(0))
    closing = threading.Event()
    pages = [feed.stream(closing) for _ in range(40)]
    for page in pages:
        next(page)  # the history
    feed.publish(frame_at(1))
    chunks = [next(page) for page in pages[1:]]
    assert all(c is chunks[0] for c in chunks)  # serialised once, shared by every page
    assert events(chunks[0]) == [("frame", orjson.loads(feed.latest))]
    feed.publish(frame_at(2))
    feed.publish(frame_at(3))
    behind = events(next(pages[0]))  # three frames on: the two points it missed, then the newest frame
    assert [name for name, _ in behind] == ["points", "frame"]
    assert [p["t"] for p in behind[0][1]] == [1.0, 2.0] and behind[1][1]["interval"] == 3
    feed.finish(replace(frame_at(3), status="finished"))
    tail = b"".join(pages[1])  # the rest of a page's stream: it ends after the final frame
    assert [name for name, _ in events(tail)] == ["points", "frame", "end"]
    closing.set()
    assert [name for name, _ in events(b"".join(pages[2]))][-1] == "end"


def test_a_stream_ends_when_the_port_closes() -> None:
    feed = Feed(frame_at(0))
    closing = threading.Event()
    page = feed.stream(closing, poll_s=0.05)
    next(page)
    threading.Timer(0.2, closing.set).start()
    assert events(b"".join(page)) == [("end", "closing")]


# -- the paths on the port -------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[MetricsExporter, Dashboard, Run, Clock]]:
    exporter, dash = exporter_with_dashboard()
    exporter.start(port=0, addr="127.0.0.1")
    run = Run()
    clock = Clock(run.recorder)
    try:
        yield exporter, dash, run, clock
    finally:
        exporter.stop()


def fetch(port: int, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent as written (no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_the_page_its_files_and_its_headers(served: tuple[MetricsExporter, Dashboard, Run, Clock]) -> None:
    exporter, dash, run, clock = served
    port = exporter.port
    status, headers, body = fetch(port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert b'src="dashboard/dashboard.js"' in body and b"http" not in body.replace(b'href="metrics"', b"")
    for name, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css"),
                        ("icon.svg", "image/svg+xml")):
        status, headers, body = fetch(port, f"/dashboard/{name}")
        assert status == 200 and headers["content-type"].startswith(ctype) and body, name
        assert headers["x-content-type-options"] == "nosniff"
    script = fetch(port, "/dashboard/dashboard.js")[2].decode()
    assert "innerHTML" not in script and "http://" not in script and "https://" not in script
    for path in ("/dashboard/../server.py", "/dashboard/%2e%2e/server.py", "/dashboard/..%2fserver.py",
                 "/dashboard/", "/dashboard", "/dashboard/index.html", "/dashboard/dashboard.js/x",
                 "/dashboard//etc/passwd", "/api/state/x", "/api/events/x", "/favicon.ico"):
        status, headers, _ = fetch(port, path)
        assert status == 404, path
    status, headers, _ = fetch(port, "/", "POST", b"{}")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert fetch(port, "/dashboard/dashboard.js", "DELETE")[0] == 405
    assert fetch(port, "/api/events", "POST", b"")[0] == 405
    status, headers, body = fetch(port, "/", "HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(fetch(port, "/")[2])
    status, headers, body = fetch(port, "/api/events", "HEAD")
    assert status == 200 and headers["content-type"] == "text/event-stream" and body == b""
    status, headers, body = fetch(port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    clock.rows("/a", [1.0, 2.0])
    exporter(clock.interval(), run)
    status, headers, body = fetch(port, "/api/state")
    assert status == 200 and headers["content-type"] == "application/json" and "no-store" in headers["cache-control"]
    assert orjson.loads(body) == orjson.loads(dash.feed.latest) and orjson.loads(body)["requests"] == 2


def test_every_file_the_page_loads_is_bundled_in_the_package() -> None:
    import fnmatch
    import tomllib

    from loadgen.observe.dashboard.handler import ASSETS

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "loadgen.observe.dashboard"]
    folder = root / "loadgen" / "observe" / "dashboard" / "assets"
    page = (folder / "index.html").read_text()
    loaded = set(re.findall(r'(?:src|href)="dashboard/([^"]+)"', page))
    assert loaded == set(ASSETS)  # the page loads each bundled file, and nothing else
    for name in ("index.html", *ASSETS):
        assert (folder / name).is_file(), name
        assert any(fnmatch.fnmatch(f"assets/{name}", g) for g in globs), f"{name} would be left out of the wheel"


class SsePage:
    """A page following /api/events over a plain socket."""

    def __init__(self, port: int, *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(15)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        self.buf = b""

    def until(self, pattern: bytes, timeout_s: float = 20.0) -> bytes:
        deadline = time.monotonic() + timeout_s
        while pattern not in self.buf:
            assert time.monotonic() < deadline, f"no {pattern!r} in the stream"
            chunk = self.sock.recv(65536)
            assert chunk, f"the stream ended before {pattern!r}"
            self.buf += chunk
        return self.buf

    def rest(self) -> bytes:
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return self.buf
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def test_the_stream_gives_history_frames_and_a_final_frame_then_ends(
        served: tuple[MetricsExporter, Dashboard, Run, Clock]) -> None:
    exporter, dash, run, clock = served
    clock.rows("/a", [1.0])
    exporter(clock.interval(), run)
    page = SsePage(exporter.port)
    try:
        head = page.until(b"id: 1\n")
        assert b"200 OK" in head.split(b"\r\n")[0] and b"Content-Type: text/event-stream" in head
        assert [name for name, _ in events(head.partition(b"\r\n\r\n")[2])] == ["history", "frame"]
        clock.rows("/a", [1.0, 1.0])
        exporter(clock.interval(), run)
        page.until(b"id: 2\n")
        exporter.finish()
        got = events(page.rest().partition(b"\r\n\r\n")[2])  # the server ends the stream: no waiting for stop()
    finally:
        page.close()
    assert got[-1] == ("end", "finished")
    assert got[-2][0] == "frame" and got[-2][1]["status"] == "finished" and got[-2][1]["requests"] == 3


def test_stop_returns_promptly_with_a_page_following(served: tuple[MetricsExporter, Dashboard, Run, Clock]) -> None:
    exporter, _, run, clock = served
    clock.rows("/a", [1.0])
    exporter(clock.interval(), run)
    page = SsePage(exporter.port)
    try:
        page.until(b"id: 1\n")
        stopper = threading.Thread(target=exporter.stop)
        stopper.start()
        stopper.join(timeout=8)  # the stream checks for closing five times a second; the handler times out at 10 s
        assert not stopper.is_alive(), "stop() waited for the page"
        assert events(page.rest())[-1] == ("end", "closing")
    finally:
        page.close()


def test_a_page_that_stops_reading_holds_neither_the_loop_nor_stop(
        served: tuple[MetricsExporter, Dashboard, Run, Clock]) -> None:
    exporter, dash, _, _ = served
    stuck = SsePage(exporter.port, rcvbuf=4096)
    reader = SsePage(exporter.port)
    try:
        stuck.until(b"id: 0\n")  # connected and served; from here on it reads nothing
        reader.until(b"id: 0\n")
        big = frame_at(1, endpoints=1500)  # ~150 KB a frame: the stuck page's buffers fill within a few
        slowest = 0.0
        for i in range(1, 121):
            t = time.monotonic()
            dash.feed.publish(replace(big, interval=i))  # what the part does on the loop
            slowest = max(slowest, time.monotonic() - t)
            if i % 10 == 0:
                reader.until(f"id: {i}\n".encode(), timeout_s=30)  # the other page keeps up
        assert slowest < 2.0, f"a publish waited {slowest:.2f}s"  # the loop never waits for a page
        stopper = threading.Thread(target=exporter.stop)
        stopper.start()
        stopper.join(timeout=8)  # the stuck page's socket is shut after a second, not after the 10 s timeout
        assert not stopper.is_alive(), "stop() waited for a page that does not read"
    finally:
        stuck.close()
        reader.close()


def test_too_many_pages_are_refused_not_queued(served: tuple[MetricsExporter, Dashboard, Run, Clock]) -> None:
    exporter, dash, _, _ = served
    from loadgen.observe.dashboard.handler import MAX_STREAMS

    pages: list[SsePage] = []
    try:
        for _ in range(MAX_STREAMS):  # one after the other: the listen backlog is short
            pages.append(SsePage(exporter.port))
            pages[-1].until(b"id: 0\n")
        status, headers, _ = fetch(exporter.port, "/api/events")
        assert status == 503 and headers["retry-after"] == "10"
        pages.pop().close()
        deadline = time.monotonic() + 20
        while fetch_head_status(exporter.port) != 200:  # the closed page's place is freed once noticed
            assert time.monotonic() < deadline
            dash.feed.publish(frame_at(1))  # a write to the closed socket is how its end is noticed
            time.sleep(0.2)
    finally:
        for page in pages:
            page.close()


def fetch_head_status(port: int) -> int:
    """GET /api/events: the status line only (a 200 stream is left at once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return int(s.recv(64).split(b" ")[1])


# -- the page in headless Chromium, during a real run -----------------------------------------


SCENARIO = """
from loadgen import User, task


class Shopper(User):
    @task(3)
    async def health(self):
        await self.client.get("/health")

    @task(1)
    async def missing(self):  # a name that would be markup if the page ever wrote it as such
        await self.client.get("/no-such-page", name=HOSTILE)


HOSTILE = '<img src="//evil.invalid/x" onerror="window.__pwned = 1">missing'
"""

HOSTILE = '<img src="//evil.invalid/x" onerror="window.__pwned = 1">missing'

READ_PAGE = """() => {
  const t = (id) => Number(document.getElementById(id).textContent.replace(/,/g, ""));
  return {interval: Number(document.body.dataset.interval), status: document.body.dataset.status,
          requests: t("v-requests"), errors: t("v-errors"), iterations: t("v-iterations"),
          users: t("v-users"), inflight: t("v-inflight"), drawn: window.__dashboard.drawn,
          statusText: document.getElementById("status").textContent, pwned: "__pwned" in window,
          header: ["h-scenario", "h-host", "h-model"].map((id) => document.getElementById(id).textContent),
          rows: [...document.querySelectorAll("#endpoints tr")].map(
            (tr) => [...tr.children].slice(0, 4).map((td) => td.textContent))};
}"""

INK = """() => {  // coloured, opaque pixels on the throughput chart: its lines (the grid and labels are grey)
  const c = document.getElementById("chart-throughput");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 200 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
  }
  return n;
}"""


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        pytest.skip("no chromium binary (Debian: apt-get install --no-install-recommends chromium)")
    return path


def wait_until(page: Any, condition: str, timeout_s: float = 60.0) -> None:
    """Poll a condition from here: page.wait_for_function evaluates strings in the page, which its
    policy (no eval) refuses, as it should."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({condition})"):
        assert time.monotonic() < deadline, f"the page never had {condition}"
        time.sleep(0.2)


def _scrape(base: str) -> dict[str, list[Any]]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        return parse(r.read())


def _start_run(tmp_path: Path, target: str, summary: Path) -> tuple[subprocess.Popen[str], str]:
    scenario = tmp_path / "shop.py"
    scenario.write_text(SCENARIO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "run", str(scenario), "--host", target, "--model", "open", "--rate", "40",
         "--run-time", "8s", "--metrics-port", "0", "--metrics-grace", "90s", "--db", "none",
         "--summary-json", str(summary)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"metrics at (http://\S+)/metrics", line)
        if found:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # the rest, so it never blocks
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("the run did not print its metrics address")


@pytest.mark.timeout(150)
def test_the_page_mid_run_shows_what_metrics_says_and_ends_with_the_summary(demo_target: Any, tmp_path: Path) -> None:
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    summary = tmp_path / "summary.json"
    proc, base = _start_run(tmp_path, demo_target.url, summary)
    requested: list[str] = []
    problems: list[str] = []
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1360, "height": 1000})
                page.on("request", lambda r: requested.append(r.url))
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto(base + "/")
                wait_until(page, "Object.keys(window.__dashboard.drawn).length === 6 && "
                                 "Object.values(window.__dashboard.drawn).every((n) => n >= 3)")
                assert page.evaluate(INK) > 20, "the throughput chart drew no line"

                for _ in range(20):  # the page and /metrics at the same interval (one may be a second on)
                    shown = page.evaluate(READ_PAGE)
                    m = _scrape(base)
                    if value(m, "loadgen_intervals_total") == shown["interval"] and shown["status"] == "running":
                        break
                    time.sleep(0.3)
                else:
                    pytest.fail("the page and /metrics never showed the same interval")
                assert shown["requests"] == value(m, "loadgen_requests_total") > 0
                assert shown["errors"] == value(m, "loadgen_errors_total") > 0  # the 404s
                assert shown["iterations"] == value(m, "loadgen_iterations_total")
                assert (shown["users"], shown["inflight"]) == (value(m, "loadgen_active_users"),
                                                               value(m, "loadgen_inflight_iterations"))

                wait_until(page, "document.body.dataset.status === 'finished'")
                final = page.evaluate(READ_PAGE)
                late = browser.new_page()  # a page opened while the port lingers: the final state, charts full
                late.goto(base + "/")
                wait_until(late, "document.body.dataset.status === 'finished' && "
                                 "window.__dashboard.drawn.throughput >= 6")
                late_view = late.evaluate(READ_PAGE)
            finally:
                browser.close()
        deadline = time.monotonic() + 30
        while not summary.exists():  # written right after the page said finished
            assert time.monotonic() < deadline and proc.poll() is None, "no summary file"
            time.sleep(0.2)
        time.sleep(0.5)
        doc = json.loads(summary.read_text())
        _scrape(base)  # a scrape after the end: the run stops lingering
        assert proc.wait(timeout=60) == EXIT_OK
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert final["statusText"].startswith("finished") and late_view["statusText"] == final["statusText"]
    assert final["header"] == ["shop.py", demo_target.url, "open"]
    assert (final["requests"], final["errors"], final["iterations"]) == (doc["requests"], doc["errors"],
                                                                         doc["iterations"])
    assert late_view["requests"] == doc["requests"]
    table = {f"{m} {n}": (int(r.replace(",", "")), int(e.replace(",", ""))) for m, n, r, e in final["rows"]}
    assert table == {k: (ep["requests"], ep["errors"]) for k, ep in doc["endpoints"].items()}
    origin = base + "/"
    elsewhere = [u for u in requested if not u.startswith(origin)]
    assert requested and not elsewhere, elsewhere
    assert not problems, problems  # no script errors, no policy violations
    assert f"GET {HOSTILE}" in table and not final["pwned"]  # shown as text, never run
