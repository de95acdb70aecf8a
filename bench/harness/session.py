"""One invocation of run.py: its options, how it starts processes, the tools, the target, and the
rows measured so far. Passed explicitly to every part and to the report (no module state)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from .console import log, redact
from .install import Tools
from .processes import ChildRun, Monitor, Processes, run_client
from .rows import Row, fail
from .servers import Server

PARTS = ("peers", "loadgen", "sweep", "overhead", "workers", "freeze", "tls")

Parse = Callable[[Row, ChildRun], Row]


@dataclass(frozen=True)
class Options:
    """run.py's command line, in the order of --help (latest.json's "args" keeps that order)."""

    only: list[str]
    duration: int
    users: int
    loadgen: str | None
    rates: list[int]
    open_rate: int
    overhead_rounds: int
    pg_url: str | None
    freeze_every: float
    freeze_for: float
    freeze_rate: int
    freeze_run_time: int
    freeze_target: str
    hey_workers: int
    skip_k6_freeze: bool
    no_install: bool
    server_cpu: str
    client_cpu: str


@dataclass
class Session:
    args: Options
    procs: Processes
    tools: Tools
    nginx: Server | str | None = None  # a string says why there is none
    results: dict[str, list[Row]] = field(default_factory=lambda: {p: [] for p in PARTS})
    freeze_info: dict = field(default_factory=dict)
    overhead_info: dict = field(default_factory=dict)

    def target(self) -> str:
        assert isinstance(self.nginx, Server)
        return f"http://127.0.0.1:{self.nginx.port}/"

    def need_nginx(self, tool: str, model: str) -> Row | None:
        """None when nginx is up, else a failed row saying why not."""
        if isinstance(self.nginx, Server):
            return None
        return fail(Row(tool, model), f"no target: {self.nginx}")

    def measured(self, row: Row, tag: str, argv: list[str], parse: Parse, *, env: dict | None = None,
                 timeout: float | None = None, server: Server | None = None, monitor: Monitor | None = None,
                 cpu: str | None = None) -> Row:
        """Run one client and fill `row` from its output, with the server's CPU and counters over the run."""
        row.command = redact(shlex.join(argv))
        srv_before = server.cpu_seconds() if server else None
        st_before = server.stub_status() if server else None
        run = run_client(self.procs, tag, argv, timeout or (self.args.duration + 60), env=env,
                         monitor=monitor, cpu=cpu)
        if run.start_error:
            return fail(row, run.start_error)
        try:
            parse(row, run)
        except Exception as e:  # a parser bug must not end the whole run
            fail(row, f"could not read its output: {type(e).__name__}: {e}")
        if row.ok and server and srv_before is not None and run.wall_s:
            after = server.cpu_seconds()
            if after is not None:
                row.server_cpu_pct = (after - srv_before) / run.wall_s * 100
        st_after = server.stub_status() if (server and st_before) else None
        if row.ok and st_before and st_after:
            # each status read counts itself: the delta includes one of ours
            row.extra["nginx_requests"] = st_after["requests"] - st_before["requests"] - 1
            row.extra["nginx_connections"] = st_after["accepts"] - st_before["accepts"] - 1
        if row.ok:
            log(f"  -> {row.requests} requests, {row.rps:,.0f} req/s, "
                f"{row.us_per_req if row.us_per_req is not None else float('nan'):.1f} us CPU/request")
        return row
