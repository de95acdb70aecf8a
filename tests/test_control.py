"""The control API on the metrics port (loadgen.observe.control): real runs against the demo
target over loopback, steered over real HTTP; who may control; bad and hostile calls."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loadgen.config import RunConfig, Stage
from loadgen.engine.engine import AdHocRequest, Engine, RunResult
from loadgen.engine.recorder import IntervalSnapshot
from loadgen.engine.steering import Refused
from loadgen.engine.workload import count_until
from loadgen.errors import EXIT_OK
from loadgen.observe import control
from loadgen.observe.exporter import MetricsExporter
from loadgen.sinks import RunView
from loadgen.summary import build_summary

from scenario_runs import load

JSON = {"Content-Type": "application/json"}
WAIT_S = 60.0  # generous: a slow, busy machine


def call(base: str, path: str, body: bytes | None = None, *, method: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request to the port: status, JSON body, headers (an error status is an answer too)."""
    req = urllib.request.Request(base + path, data=body, headers=headers or {},
                                 method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def post(base: str, action: str, doc: object | None = None, **headers: str) -> tuple[int, dict[str, Any]]:
    body = b"" if doc is None else json.dumps(doc).encode()
    status, reply, _ = call(base, f"/api/control/{action}", body, headers={**JSON, **headers})
    return status, reply


def wait_running(base: str) -> dict[str, Any]:
    """Poll GET /api/control until the run is under way (its first interval is out)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status, doc, _ = call(base, "/api/control")
        assert status == 200
        if doc["running"]:
            return doc
        time.sleep(0.1)
    raise AssertionError("the run did not start")


class Steered:
    """An in-process run whose /metrics port has the control API, and a thread that steers it."""

    def __init__(self, config: RunConfig, steer: Callable[[str], None], *, addr: str = "127.0.0.1",
                 token: str | None = None, **engine: Any) -> None:
        self.exporter = MetricsExporter(run_id="control-test", memory=False).start(port=0, addr=addr)
        control.attach(self.exporter, token=token)
        self.base = f"http://127.0.0.1:{self.exporter.port}"
        self.snaps: list[IntervalSnapshot] = []
        self.engine = Engine(config, sinks=[self.exporter, self._keep], handle_signals=False, **engine)
        self.errors: list[BaseException] = []
        self._steer = steer

    def _keep(self, snap: IntervalSnapshot, run: RunView) -> None:  # noqa: ARG002
        self.snaps.append(snap)

    def _steering(self) -> None:
        try:
            self._steer(self.base)
        except BaseException as exc:  # handed to the test's thread
            self.errors.append(exc)

    def run(self) -> RunResult:
        t = threading.Thread(target=self._steering, daemon=True)
        t.start()
        try:
            result = self.engine.run()
            self.exporter.finish()
            t.join(WAIT_S)
        finally:
            self.exporter.stop()
        if self.errors:
            raise self.errors[0]
        return result


@pytest.fixture
def demo(start_demo: Callable[..., Any]) -> Any:
    return start_demo()


# -- a rate change in the open model ----------------------------------------------------------


def test_a_rate_change_mid_run_changes_the_achieved_rate_and_the_run_records_it(demo):
    replies: list[tuple[int, dict[str, Any]]] = []

    def steer(base: str) -> None:
        wait_running(base)  # about 1 s in
        time.sleep(1.0)
        replies.append(post(base, "rate", {"rate": 80}, Authorization="Bearer s3cret"))
        status, doc, _ = call(base, "/api/control")
        replies.append((status, doc))

    # Bound to every address, with a token: the token is what lets the change through.
    run = Steered(RunConfig(model="open", rate=20, run_time_s=6.0, graceful_stop_s=2.0), steer,
                  addr="0.0.0.0", token="s3cret", adhoc=AdHocRequest(demo.url + "/health"))
    result = run.run()
    (status, reply), (_, state) = replies
    assert status == 200 and reply["ok"] and reply["rate"] == 80.0, reply
    at = reply["change"]["at_s"]
    assert 1.0 < at < 5.0 and reply["change"]["action"] == "rate" and reply["change"]["rate"] == 80.0
    assert state["changes"] == [reply["change"]] and state["rate"] == 80.0 and state["allowed"]

    # The achieved rate follows: whole intervals before the change against those after it.
    before = [s for s in run.snaps if s.end_s <= at and s.duration_s > 0.5]
    after = [s for s in run.snaps if s.start_s >= at + 0.2 and s.duration_s > 0.5]
    assert before and after
    rate_before = sum(s.iterations for s in before) / sum(s.duration_s for s in before)
    rate_after = sum(s.iterations for s in after) / sum(s.duration_s for s in after)
    assert rate_after > 2 * rate_before, (rate_before, rate_after)
    assert {s.target_rate for s in before} == {20.0} and {s.target_rate for s in after} == {80.0}

    doc = build_summary(result, scenario=None, host=demo.url)
    assert doc["control"] == [reply["change"]]
    stages = [Stage(**st) for st in doc["applied_stages"]]
    assert [st.target for st in stages] == [20, 20, 80, 80]
    assert sum(st.duration_s for st in stages) == pytest.approx(doc["load_s"])
    # The schedule that ran is exactly the applied stages: every arrival due was started or dropped.
    assert doc["iterations"] + doc["dropped_iterations"] == pytest.approx(count_until(stages, doc["load_s"]), abs=2)
    assert doc["target_rate"] is None  # no single target any more
    assert doc["stop_reason"] is None and not doc["interrupted"]


# -- a user count change in the closed model ------------------------------------------------


THINKING = """
from loadgen import User, constant, task

class Reader(User):
    wait_time = constant(0.2)

    @task
    async def health(self):
        await self.client.get("/health")
"""


def test_a_user_change_in_the_closed_model_moves_the_users(demo, tmp_path):
    replies: list[tuple[int, dict[str, Any]]] = []

    def steer(base: str) -> None:
        wait_running(base)
        replies.append(post(base, "rate", {"rate": 50}))  # the closed model has no rate
        replies.append(post(base, "users", {"users": 6}))

    run = Steered(RunConfig(model="closed", users=2, spawn_rate=100.0, run_time_s=4.0, graceful_stop_s=2.0,
                            host=demo.url), steer, scenario=load(tmp_path, THINKING))
    result = run.run()
    (wrong, refused), (status, reply) = replies
    assert wrong == 409 and "closed model's load is its users" in refused["message"]
    assert status == 200 and reply["change"]["users"] == 6, reply
    assert result.users_max == 6
    assert max(s.users for s in run.snaps) == 6 and run.snaps[0].users == 2
    doc = build_summary(result, scenario=None, host=demo.url)
    assert [c["action"] for c in doc["control"]] == ["users"]
    assert doc["applied_stages"][-1]["target"] == 6


# -- the CLI: the stored run shows when; a stop; workers -----------------------------------


class Cli:
    """``loadgen run ...`` in a subprocess; its output is read on threads (a full pipe would block it)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "loadgen", "run", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._found = threading.Event()
        self.base = ""
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_errors, daemon=True)]
        for t in self._readers:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"metrics at (http://\S+)/metrics", line)
            if m and not self.base:
                self.base = m.group(1)
                self._found.set()
        self._found.set()

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        self.errors.extend(self.proc.stderr)

    def port(self) -> str:
        assert self._found.wait(WAIT_S) and self.base, "".join(self.lines) or "the run printed nothing"
        return self.base

    def wait(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=WAIT_S * 2)
        for t in self._readers:
            t.join(WAIT_S)
        return code, "".join(self.errors)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def cli() -> Iterator[Callable[..., Cli]]:
    started: list[Cli] = []

    def start(*args: str) -> Cli:
        started.append(Cli(*args))
        return started[-1]

    yield start
    for c in started:
        c.kill()


def _loadgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=WAIT_S)


def test_the_stored_run_shows_when_its_rate_was_changed(demo, tmp_path, cli):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    summary = tmp_path / "s.json"
    run = cli("--url", demo.url + "/health", "--rate", "20", "--run-time", "5s", "--metrics-port", "0",
              "--metrics-grace", "0s", "--db", db, "--summary-json", str(summary))
    base = run.port()
    wait_running(base)
    status, reply = post(base, "rate", {"rate": 60})
    code, err = run.wait()
    assert status == 200, reply
    assert code == EXIT_OK, err
    run_id = json.loads(summary.read_text())["run_id"]
    p = _loadgen("runs", "export", run_id, "--db", db)
    assert p.returncode == 0, p.stderr
    stored = json.loads(p.stdout)
    assert stored["control"] == [reply["change"]]
    assert 0.5 < stored["control"][0]["at_s"] < 5.0
    assert [st["target"] for st in stored["applied_stages"]] == [20, 20, 60, 60]
    assert stored["applied_stages"][1]["duration_s"] == pytest.approx(reply["change"]["at_s"], abs=0.01)


def test_a_stop_from_the_api_ends_the_run_early_and_is_not_a_failure(demo, tmp_path, cli):
    summary = tmp_path / "s.json"
    # The port lingers after the run until /metrics is scraped: the calls after the stop find it.
    run = cli("--url", demo.url + "/health", "--rate", "20", "--run-time", "60s", "--metrics-port", "0",
              "--metrics-grace", "60s", "--db", "none", "--summary-json", str(summary))
    base = run.port()
    wait_running(base)
    status, reply = post(base, "stop")
    again, refused = post(base, "stop")
    late, too_late = post(base, "rate", {"rate": 5})
    while run.proc.poll() is None:  # scrape until the run, over, lets the port go
        try:
            urllib.request.urlopen(base + "/metrics", timeout=10).read()
        except OSError:
            break
        time.sleep(0.2)
    code, err = run.wait()
    assert status == 202 and reply["ok"] and reply["change"]["action"] == "stop", reply
    assert again == 409 and not refused["ok"] and late == 409 and not too_late["ok"]
    assert code == EXIT_OK, err  # a stop is a person's decision, not a failure (as Locust's stop button)
    doc = json.loads(summary.read_text())
    assert doc["stop_reason"] == "stopped from the control API" and doc["status"] == "completed"
    assert doc["load_s"] < 30 and doc["requests"] > 0
    assert [c["action"] for c in doc["control"]] == ["stop"] and "applied_stages" not in doc
    assert any("changed from the control API: stop at" in line for line in run.lines), "".join(run.lines)


def test_workers_each_take_their_share_of_a_rate_change_and_stop_together(demo, tmp_path, cli):
    summary = tmp_path / "s.json"
    run = cli("--url", demo.url + "/health", "--rate", "20", "--run-time", "30s", "--workers", "2",
              "--metrics-port", "0", "--metrics-grace", "0s", "--db", "none", "--summary-json", str(summary))
    base = run.port()
    wait_running(base)
    time.sleep(0.5)
    status, reply = post(base, "rate", {"rate": 80})
    time.sleep(2.0)
    stopped, stop = post(base, "stop")
    code, err = run.wait()
    assert status == 202 and reply["ok"] and "workers" in reply["message"], reply
    assert stopped == 202 and stop["ok"], stop
    assert code == EXIT_OK, err
    doc = json.loads(summary.read_text())
    assert doc["control"] == [reply["change"], stop["change"]]
    assert doc["stop_reason"] == "stopped from the control API" and doc["load_s"] < 20
    stages = [Stage(**st) for st in doc["applied_stages"]]
    assert [st.target for st in stages] == [20, 20, 80, 80]
    assert sum(st.duration_s for st in stages) == pytest.approx(doc["load_s"], abs=0.01)
    # Each worker applies the change as of the coordinator's time of it: the shares add up to the
    # stages recorded. At 20/s all along the run would have had a quarter of the arrivals after the change.
    due = doc["iterations"] + doc["dropped_iterations"]
    assert due == pytest.approx(count_until(stages, doc["load_s"]), abs=2)
    assert due > 20 * doc["load_s"] * 1.5


# -- who may control, and bad calls (a port with no run yet: every check comes first) --------


@pytest.fixture
def port() -> Iterator[Callable[..., str]]:
    made: list[MetricsExporter] = []

    def start(addr: str = "127.0.0.1", token: str | None = None) -> str:
        ex = MetricsExporter(run_id="policy", memory=False).start(port=0, addr=addr)
        control.attach(ex, token=token)
        made.append(ex)
        return f"http://127.0.0.1:{ex.port}"

    yield start
    for ex in made:
        ex.stop()


def test_without_a_token_control_is_refused_unless_the_port_is_on_loopback(port):
    base = port("0.0.0.0")
    status, doc, _ = call(base, "/api/control")
    assert status == 200 and doc["allowed"] is False and "--control-token" in doc["why"]
    status, reply = post(base, "stop")
    assert status == 403 and "--control-token" in reply["message"]
    local = port("127.0.0.1")
    status, doc, _ = call(local, "/api/control")
    assert doc["allowed"] is True and doc["running"] is False and doc["can"] == []
    assert post(local, "stop") == (409, {"ok": False, "message": "the run has not started yet; try again in a second"})


def test_with_a_token_a_control_call_must_carry_it(port):
    base = port("0.0.0.0", token="s3cret")
    status, doc, _ = call(base, "/api/control")
    assert status == 200 and doc["allowed"] and doc["token_required"]
    status, reply, headers = call(base, "/api/control/stop", b"{}", headers=JSON)
    assert status == 401 and "Bearer" in reply["message"] and headers["WWW-Authenticate"].startswith("Bearer")
    assert post(base, "stop", Authorization="Bearer wrong")[0] == 401
    assert post(base, "stop", Authorization="Basic s3cret")[0] == 401
    assert post(base, "stop", Authorization="Bearer s3cret")[0] == 409  # through: only no run yet


def test_a_call_another_site_could_make_is_refused(port):
    base = port()
    # A form POST (a "simple" request, no preflight) cannot say application/json.
    status, reply, _ = call(base, "/api/control/stop", b"", headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in reply["message"]
    status, reply, _ = call(base, "/api/control/stop", b"x=1",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    assert post(base, "stop", Origin="http://evil.example")[0] == 403
    assert post(base, "stop", Origin="null")[0] == 403
    assert post(base, "stop", Origin=base)[0] == 409  # this port's own page: through
    # DNS rebinding: another site's name resolved to 127.0.0.1; the request names that site.
    status, reply = post(base, "stop", Host="evil.example:80")
    assert status == 403 and "evil.example" in reply["message"]


@pytest.mark.parametrize(("path", "body", "sentence"), [
    ("rate", b'{"rate": "abc"}', "rate must be a number above 0 and at most 1,000,000 per second, not 'abc'"),
    ("rate", b'{"rate": "50"}', "not '50'"),
    ("rate", b'{"rate": -1}', "not -1"),
    ("rate", b'{"rate": 0}', "not 0"),
    ("rate", b'{"rate": 1e9}', "not 1000000000.0"),
    ("rate", b'{"rate": true}', "not True"),
    ("rate", b'{"rate": null}', "not None"),
    ("rate", b'{"rate": NaN}', "the body is not JSON"),
    ("rate", b'{"rate": 1e999}', "the body is not JSON"),
    ("rate", b'[50]', 'the body must be {"rate": NUMBER}'),
    ("rate", b'{"users": 5}', 'the body must be {"rate": NUMBER}'),
    ("rate", b"", "the body is not JSON"),
    ("users", b'{"users": 2.5}', "users must be a whole number from 1 to 1,000,000, not 2.5"),
    ("users", b'{"users": 0}', "not 0"),
    ("stop", b"{not json", "the body is not JSON"),
])
def test_a_bad_value_is_one_sentence_and_a_400(port, path, body, sentence):
    base = port()
    status, reply, _ = call(base, f"/api/control/{path}", body, headers=JSON)
    assert status == 400 and reply["ok"] is False and sentence in reply["message"], reply
    assert "\n" not in reply["message"] and "Traceback" not in reply["message"]


def test_wrong_methods_paths_and_sizes(port):
    base = port()
    status, reply, headers = call(base, "/api/control/rate", method="GET")
    assert status == 405 and headers["Allow"] == "POST"
    status, reply, headers = call(base, "/api/control", b"{}", headers=JSON)
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert call(base, "/api/control/pause", b"{}", headers=JSON)[0] == 404
    # 10 MB announced: refused before a byte of it is read.
    host, portno = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(portno)), timeout=30) as s:
        s.sendall(b"POST /api/control/rate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 10485760\r\n\r\n")
        head = s.recv(200)
    assert head.startswith(b"HTTP/1.0 413") or head.startswith(b"HTTP/1.1 413"), head


def test_a_shard_takes_no_control():
    # A shard runs its part of a run split across hosts: a change would reach that part alone.
    engine = Engine(RunConfig(model="open", rate=10, run_time_s=1.0), adhoc=AdHocRequest("http://127.0.0.1:9/"),
                    handle_signals=False, part=(0, 2))
    state = engine.steering.state()
    assert state.can == () and "shard" in (state.why or "")
    with pytest.raises(Refused, match="shard"):
        engine.steering.submit("stop", None).result(timeout=1)


def test_the_loopback_rule():
    for addr in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"):
        assert control.is_loopback(addr), addr
    for addr in ("0.0.0.0", "::", "", "10.0.0.1", "example.com", "localhost.example.com", "::ffff:10.0.0.1"):
        assert not control.is_loopback(addr), addr


def test_a_flood_of_calls_racing_the_run_s_end_never_hangs_or_breaks(demo):
    """Many callers at once, changing the rate until the run ends and after: every reply is
    200 or 409 with a sentence, the record holds what was applied, the run ends on time."""
    statuses: list[int] = []
    lock = threading.Lock()

    def caller(base: str, k: int) -> None:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            status, reply = post(base, "rate", {"rate": 10 + k})
            assert status in (200, 409) and reply["message"], reply
            with lock:
                statuses.append(status)

    def steer(base: str) -> None:
        wait_running(base)
        threads = [threading.Thread(target=caller, args=(base, k)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_S)

    run = Steered(RunConfig(model="open", rate=20, run_time_s=3.0, graceful_stop_s=1.0), steer,
                  adhoc=AdHocRequest(demo.url + "/health"))
    started = time.monotonic()
    result = run.run()
    assert time.monotonic() - started < 30
    assert 200 in statuses and 409 in statuses  # applied while it ran, refused once it was over
    assert len(result.control) == statuses.count(200) <= 1000
    assert result.duration_s < 3.0 + 1.0 + 2.0
