"""A hostile review of the control API and the live dashboard (issue 14): each test here failed
before the fix it names, against real parts (the metrics port over loopback, real runs)."""

from __future__ import annotations

import json
import math
import select
import socket
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from loadgen.config import Stage
from loadgen.engine.workload import count_until
from loadgen.errors import EXIT_OK
from loadgen.observe import connections, control
from loadgen.observe.dashboard import Dashboard
from loadgen.observe.dashboard.feed import Feed
from loadgen.observe.dashboard.frames import Point
from loadgen.observe.exporter import MetricsExporter

from test_control import Cli, post, wait_running
from test_dashboard import INFO, frame_at

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def port() -> Iterator[Callable[..., MetricsExporter]]:
    """A metrics port with the dashboard and the control API, as a run has it (no run yet)."""
    made: list[MetricsExporter] = []

    def start(addr: str = "127.0.0.1", token: str | None = None) -> MetricsExporter:
        ex = MetricsExporter(run_id="review", memory=False).start(port=0, addr=addr)
        Dashboard(INFO).attach(ex)
        control.attach(ex, token=token)
        made.append(ex)
        return ex

    yield start
    for ex in made:
        ex.stop()


def raw(port: int, request: bytes) -> bytes:
    """One request sent as these bytes; the whole answer (the port closes each connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end has closed (or reset) the connection, without waiting."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(1024) == b""
    except OSError:
        return True


# -- 1. a connection that never sends its request -------------------------------------------


def test_a_connection_that_sends_nothing_prints_no_traceback(port, monkeypatch, capfd):
    """A browser opens spare connections it may never use. When the handler's timeout ended one,
    socketserver printed a traceback on the run's terminal (across the live display)."""
    monkeypatch.setattr(connections.RequestHandler, "timeout", 0.3)
    ex = port()
    with socket.create_connection(("127.0.0.1", ex.port), timeout=30) as idle:
        deadline = time.monotonic() + 20
        while not closed_by_peer(idle):  # the port gives up on it after its timeout
            assert time.monotonic() < deadline, "the idle connection was never closed"
            time.sleep(0.05)
    time.sleep(0.2)  # whatever the handler's thread prints, it has printed
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err


# -- 2. stop() and clients that never finish their request ----------------------------------


def test_stop_does_not_wait_for_clients_that_never_finish_their_request(port):
    """stop() joins the request threads: it waited out the 10 s timeout for a connection that
    sent nothing, and for ever for one that trickles its head, so a run never ended."""
    ex = port()
    idle = socket.create_connection(("127.0.0.1", ex.port), timeout=30)
    half = socket.create_connection(("127.0.0.1", ex.port), timeout=30)
    half.sendall(b"POST /api/control/rate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 20\r\n\r\n{")  # its head, and never the rest of its body
    done = threading.Event()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", ex.port), timeout=30) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            while not done.wait(0.2):  # a byte of a header line at a time, for up to 30 s
                try:
                    s.sendall(b"X")
                except OSError:
                    return
                if time.monotonic() - started > 30:
                    return

    started = time.monotonic()
    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(0.5)  # every one of them is being read by a thread of the port
        stopper = threading.Thread(target=ex.stop, daemon=True)
        t = time.monotonic()
        stopper.start()
        stopper.join(timeout=8)
        assert not stopper.is_alive(), f"stop() still waiting after {time.monotonic() - t:.1f}s"
    finally:
        done.set()
        idle.close()
        half.close()
        trickler.join(35)


def test_a_client_trickling_its_request_is_cut_off_at_the_timeout(port, monkeypatch):
    """The timeout was per read: a byte every few seconds held a thread of the port for ever."""
    monkeypatch.setattr(connections.RequestHandler, "timeout", 1.0)
    ex = port()
    with socket.create_connection(("127.0.0.1", ex.port), timeout=30) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        started = time.monotonic()
        cut = False
        while time.monotonic() - started < 15:
            time.sleep(0.2)
            if closed_by_peer(s):
                cut = True
                break
            try:
                s.sendall(b"x")
            except OSError:
                cut = True
                break
        assert cut, "the port still reads a request begun 15 s ago, with a 1 s timeout"
        assert time.monotonic() - started < 10


# -- 3. the token ----------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "header"), [
    ("pässwörd", "Authorization: Bearer pässwörd".encode()),  # as curl sends it from a UTF-8 terminal
    ("s3cret\n", b"Authorization: Bearer s3cret"),  # a Kubernetes secret with its trailing newline
])
def test_a_token_is_matched_as_it_was_given(port, token, header):
    """A non-ASCII token was compared with the header's Latin-1 reading (as WSGI gives it) encoded
    as UTF-8, and a token with surrounding whitespace with the header's stripped value: neither
    could ever be sent right, so the run could not be controlled at all."""
    ex = port("0.0.0.0", token=token)
    answer = raw(ex.port, b"POST /api/control/stop HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\n" + header + b"\r\nContent-Length: 0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"409", answer  # through the checks: only no run to stop yet
    assert json.loads(body)["message"].startswith("the run has not started yet")
    wrong = raw(ex.port, b"POST /api/control/stop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Authorization: Bearer wrong\r\nContent-Length: 0\r\n\r\n")
    assert wrong.split(b" ")[1] == b"401"


# -- 4. bodies the port cannot read ----------------------------------------------------------


def test_a_chunked_body_is_refused_for_what_it_is(port):
    """A chunked body was read as no body: a valid {"rate": 5} got 'the body is not JSON'."""
    ex = port()
    answer = raw(ex.port, b"POST /api/control/rate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\nb\r\n{\"rate\": 5}\r\n0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"411", answer
    assert b"Content-Length" in body and b"not JSON" not in body


def test_a_body_too_large_gets_its_413_not_a_broken_pipe(port):
    """The port answered 413 and closed with the body unread: a client still sending it (urllib,
    requests) got a broken pipe or a reset instead of the answer."""
    ex = port()
    req = urllib.request.Request(f"http://127.0.0.1:{ex.port}/api/control/rate", data=b" " * 8_000_000,
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    assert exc.value.code == 413


# -- 5. the dashboard's history --------------------------------------------------------------


def test_an_hour_of_history_takes_what_its_points_need():
    """Each point kept was orjson's output, which holds a 4 KiB buffer whatever its length: an
    hour of 180-byte points took 15 MB."""
    point = Point(1.0, 4000.0, 4000.0, 4000.0, 100.2, 189.8, 198.1, {"http_5xx": 120, "timeout": 3}, 400, 12,
                  96.5, 3.2, 0.4)
    frames = [replace(frame_at(i), point=replace(point, t=float(i))) for i in range(1, 3601)]
    feed = Feed(frame_at(0))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for f in frames:
            feed.publish(f)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert feed.points == 3600
    assert grown < 3_000_000, f"an hour of history takes {grown / 1e6:.1f} MB"


# -- 6. workers: the shares of a changed rate ------------------------------------------------


@pytest.fixture
def demo(start_demo: Callable[..., Any]) -> Any:
    return start_demo()


def test_with_workers_the_shares_of_a_changed_rate_add_up_exactly(demo, tmp_path):
    """Each worker applied a change at its own clock when the message came, a fraction of a
    millisecond apart: at 100,000/s the arrivals were 32-135 short of the stages the run records."""
    summary = tmp_path / "s.json"
    run = Cli("--url", demo.url + "/health", "--rate", "20", "--run-time", "3s", "--workers", "2",
              "--max-inflight", "10", "--metrics-port", "0", "--metrics-grace", "0s", "--db", "none",
              "--summary-json", str(summary))
    try:
        base = run.port()
        wait_running(base)
        time.sleep(0.3)
        status, reply = post(base, "rate", {"rate": 100_000})
        code, err = run.wait()
    finally:
        run.kill()
    assert status == 202, reply
    assert code == EXIT_OK, err
    doc = json.loads(summary.read_text())
    stages = [Stage(**st) for st in doc["applied_stages"]]
    due = doc["iterations"] + doc["dropped_iterations"]  # every arrival is started or dropped, once
    assert doc["load_s"] == pytest.approx(3.0, abs=0.01)
    assert abs(due - math.ceil(count_until(stages, doc["load_s"]))) <= 1, (due, count_until(stages, doc["load_s"]))
