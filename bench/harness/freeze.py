"""The coordinated-omission part: a target that freezes F s every T s, loaded at a fixed rate by
loadgen (open model), hey (closed loops with a rate limit) and k6 (arrival rate), each started
right after a freeze so that its window holds whole freezes and the true percentiles are known."""

from __future__ import annotations

import http.client
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .console import log
from .loadgen_runs import loadgen_run
from .paths import BENCH, OUT
from .peers import k6_run, parse_hey, parse_k6
from .probes import delta, listen_overflows
from .processes import ChildRun, free_port
from .rows import Row, fail
from .servers import Server, start_server
from .session import Options, Session


def true_quantile_s(q: float, freeze: float, period: float) -> float:
    """Latency quantile for arrivals uniform in time against a target frozen
    `freeze` s every `period` s: P(latency > x) = (freeze - x) / period."""
    tail = 1.0 - q
    return max(0.0, freeze - tail * period) if tail < freeze / period else 0.0


def sync_to_freeze_end(port: int, path: str, freeze: float, period: float) -> float | None:
    """Return just after the target's next freeze ends (seconds waited), or
    None if no freeze was seen within two periods.

    Starting each client right after a freeze means its window of
    run_time = k x period holds exactly k whole freezes whatever the client's
    start-up delay d (as long as d < period - freeze), so the analytic "true"
    percentiles apply. Unsynchronised, a window can hold k-1 whole freezes plus
    a sliver of one, which moves p90 by several per cent."""
    t0 = time.monotonic()
    deadline = t0 + 2 * period + freeze
    while time.monotonic() < deadline:
        t = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=period + freeze)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
        except OSError:
            time.sleep(0.05)
            continue
        if time.monotonic() - t > freeze / 2:
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


@dataclass
class FrozenTarget:
    server: Server
    every: float
    freeze: float
    synced: list[bool] = field(default_factory=list)  # one per client: was it started after a freeze?

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/health"

    def measure(self, run: Callable[[], Row]) -> Row:
        """Run one client right after a freeze ends, counting the SYNs dropped meanwhile."""
        waited = sync_to_freeze_end(self.server.port, "/health", self.freeze, self.every)
        self.synced.append(waited is not None)
        if waited is None:
            log("  no freeze seen on the target: starting unsynchronised")
        ov0 = listen_overflows()
        r = run()
        r.extra["listen_overflows"] = delta(ov0, listen_overflows())
        return r


def start_freeze_target(s: Session) -> Server | str:
    """loadgen's demo target with --freeze-*, else (auto) bench/freeze_target.py; else why neither."""
    a = s.args
    port = free_port()
    tried = []
    if a.freeze_target in ("auto", "loadgen"):
        srv = start_server(s.procs, "loadgen-demo-target",
                           s.tools.loadgen + ["demo-target", "--port", str(port),
                                              "--freeze-every", f"{a.freeze_every:g}",
                                              "--freeze-for", f"{a.freeze_for:g}"],
                           port, "/health", timeout=30, env=s.tools.loadgen_env)
        if isinstance(srv, Server):
            s.freeze_info["target"] = "`loadgen demo-target` (aiohttp)"
            return srv
        tried.append(srv)
        log(f"loadgen demo-target unavailable: {srv}")
        if a.freeze_target == "loadgen":
            return srv
        port = free_port()
    srv = start_server(s.procs, "builtin-freeze-target",
                       [sys.executable, str(BENCH / "freeze_target.py"), "--port", str(port),
                        "--freeze-every", f"{a.freeze_every:g}",
                        "--freeze-for", f"{a.freeze_for:g}"],
                       port, "/health", timeout=30)
    if isinstance(srv, Server):
        s.freeze_info["target"] = "bench/freeze_target.py (stdlib fallback)"
        if tried:
            s.freeze_info["target"] += f"; `loadgen demo-target` failed: {tried[0]}"
        return srv
    return "; ".join(tried + [srv])


def _row_names(a: Options) -> list[tuple[str, str]]:
    rate = a.freeze_rate
    return [("loadgen", f"open --rate {rate} --max-inflight 1000"),
            ("hey", f"-c {a.hey_workers} -q {rate / a.hey_workers:g} (= {rate}/s)"),
            ("k6", f"constant-arrival-rate {rate}/s, preAllocatedVUs 1000 (http_req_duration)"),
            ("k6", "same run, iteration_duration")]


def freeze_part(s: Session) -> None:
    a = s.args
    rows = s.results["freeze"]
    srv = start_freeze_target(s)
    rate, rt = a.freeze_rate, a.freeze_run_time
    s.freeze_info.update(rate=rate, run_time=rt, every=a.freeze_every, for_=a.freeze_for)
    names = _row_names(a)
    if not isinstance(srv, Server):
        for tool, model in names:
            rows.append(fail(Row(tool, model), f"no frozen target: {srv}"))
        return
    frozen = FrozenTarget(srv, a.freeze_every, a.freeze_for)
    try:
        rows.append(frozen.measure(lambda: loadgen_run(
            s, Row(*names[0]), "freeze-loadgen",
            ["run", "--url", frozen.url, "--rate", str(rate), "--max-inflight", "1000", "--run-time", f"{rt}s"],
            timeout=rt + 60)))
        time.sleep(0.5)
        rows.append(_hey_row(s, frozen, Row(*names[1])))
        time.sleep(0.5)
        rows += _k6_rows(s, frozen, Row(*names[2]), Row(*names[3]))
    finally:
        s.freeze_info["synced"] = f"{sum(frozen.synced)} of {len(frozen.synced)}"
        s.procs.children.stop(srv.proc)


def _hey_row(s: Session, frozen: FrozenTarget, row: Row) -> Row:
    a = s.args
    if not shutil.which("hey"):
        return fail(row, "hey is not installed: skipped")
    q = a.freeze_rate / a.hey_workers
    argv = ["hey", "-c", str(a.hey_workers), "-q", f"{q:g}", "-z", f"{a.freeze_run_time}s", "-cpus", "1",
            frozen.url]
    return frozen.measure(lambda: s.measured(row, "freeze-hey", argv, parse_hey,
                                             timeout=a.freeze_run_time + 60))


def _k6_rows(s: Session, frozen: FrozenTarget, row: Row, row2: Row) -> list[Row]:
    """k6's one run, read twice: http_req_duration (what k6 calls latency) and iteration_duration."""
    a = s.args
    if a.skip_k6_freeze:
        return [fail(row, "skipped (--skip-k6-freeze)"), fail(row2, "skipped (--skip-k6-freeze)")]
    if not s.tools.k6:
        return [fail(row, "k6 not found"), fail(row2, "k6 not found")]
    summary = OUT / "freeze-k6.json"
    summary.unlink(missing_ok=True)
    rt = a.freeze_run_time
    argv, env = k6_run(s.tools.k6, frozen.url, summary, "rate", RATE=str(a.freeze_rate), VUS="1000",
                       DURATION=f"{rt}s")
    r = frozen.measure(lambda: s.measured(row, "freeze-k6", argv, lambda r, run: parse_k6(r, run, summary),
                                          env=env, timeout=rt + 120))
    if not r.ok:
        return [r, fail(row2, r.error)]
    r2 = parse_k6(row2, ChildRun(argv=[], rc=0, cpu_s=r.cpu_s), summary, trend="iteration_duration")
    r2.extra["listen_overflows"] = r.extra["listen_overflows"]
    return [r, r2]
