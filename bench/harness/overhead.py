"""The overhead part: does writing to the store, or serving /metrics, cost the hot path? The same
closed-model run with --db none, SQLite, PostgreSQL and /metrics scraped, interleaved round by round."""

from __future__ import annotations

import os
import socket
import shutil
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .console import first_error_line, log, redact
from .loadgen_runs import loadgen_run
from .paths import OVERHEAD_DB, sqlite_url
from .probes import OffMainCPU, Scraper, core_busy_s, cpu_pressure_us
from .processes import free_port, sh
from .rows import Row, fail
from .servers import Server
from .session import Session
from .tables import fmt

PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL_ENV = "LOADGEN_BENCH_PG_URL"


@dataclass(frozen=True)
class Variant:
    name: str
    db: str
    flags: str
    skip: str = ""  # why it cannot run here
    metrics_flags: tuple[str, ...] = ()

    def info(self) -> dict:
        """What latest.json and the report keep of it."""
        return {"name": self.name, "flags": self.flags, **({"skip": self.skip} if self.skip else {})}


def probe_pg(url: str) -> str | None:
    """None when a PostgreSQL server answers at url, else why not: `psql -c
    'select 1'` if psql is installed (it also checks the login), else a TCP
    connect to the URL's host and port."""
    if shutil.which("psql"):
        rc, out = sh(["psql", "-X", "-A", "-t", "-w", "-d", url, "-c", "select 1"], timeout=20,
                     env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
        if rc == 0 and out.strip().splitlines()[-1:] == ["1"]:
            return None
        line = redact(first_error_line(out)) or f"exit {rc}"
        return line if line.startswith("psql") else f"psql: {line}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    except ValueError as e:
        return f"bad URL: {e}"
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as e:
        return f"TCP connect to {host}:{port}: {e}"


def overhead_variants(s: Session) -> list[Variant]:
    """The variants, in the order each round runs them; one that cannot run here has a skip reason."""
    return [Variant("none", "none", "--db none"),
            Variant("sqlite", sqlite_url(OVERHEAD_DB), f"--db {sqlite_url(OVERHEAD_DB)}"),
            _postgresql_variant(s.args.pg_url), _metrics_variant(s)]


def _postgresql_variant(pg_url: str | None) -> Variant:
    pg = pg_url or os.environ.get(PG_URL_ENV)
    source = "--pg-url" if pg_url else (f"${PG_URL_ENV}" if pg else "the default")
    pg = pg or PG_DEFAULT_URL
    why = probe_pg(pg)
    skip = (f"no PostgreSQL reachable at {redact(pg)} ({source}): {why}; "
            f"give one with --pg-url or ${PG_URL_ENV}") if why else ""
    return Variant("postgresql", pg, f"--db {redact(pg)}", skip)


def _metrics_variant(s: Session) -> Variant:
    """/metrics served and scraped, with the flags this loadgen has (older ones lack some)."""
    rc, help_text = sh(s.tools.loadgen + ["run", "--help"], timeout=60,
                       env=dict(s.tools.loadgen_env or os.environ, COLUMNS="200", NO_COLOR="1"))
    flags = "--db none --metrics-port P"
    if "--metrics-port" not in help_text:
        return Variant("metrics", "none", flags,
                       "not available in this loadgen (`--metrics-port` is not in `loadgen run --help`"
                       + (f", which failed: exit {rc}" if rc else "") + ")")
    extra: list[str] = []
    if "--metrics-addr" in help_text:
        extra += ["--metrics-addr", "127.0.0.1"]
    if "--metrics-grace" in help_text:
        extra += ["--metrics-grace", "0"]
    return Variant("metrics", "none", flags + " " + " ".join(extra) + ", /metrics scraped every 1 s",
                   metrics_flags=tuple(extra))


def overhead_part(s: Session) -> None:
    a, info = s.args, s.overhead_info
    variants = overhead_variants(s)
    info.update(rounds=a.overhead_rounds, variants=[v.info() for v in variants],
                loadavg_before=os.getloadavg())
    for v in variants:
        if v.skip:
            log(f"  overhead: {v.name} skipped: {v.skip}")
    base = ["run", "--url", s.target() if isinstance(s.nginx, Server) else "", "--users", str(a.users),
            "--spawn-rate", "10000", "--run-time", f"{a.duration}s"]
    if isinstance(s.nginx, Server):
        _warm_up(s, base)
    for rnd in range(1, a.overhead_rounds + 1):
        for v in variants:
            if v.skip:
                continue
            row = Row("loadgen", f"overhead {v.name}, round {rnd}")
            row.extra.update(variant=v.name, round=rnd)
            if (r := s.need_nginx(row.tool, row.model)):
                r.extra.update(variant=v.name, round=rnd)
                s.results["overhead"].append(r)
                continue
            s.results["overhead"].append(overhead_round(s, row, v, base, rnd))
            time.sleep(0.5)
    info["loadavg_after"] = os.getloadavg()


def _warm_up(s: Session, base: list[str]) -> None:
    # not reported: the first run after start-up (cold page cache, nginx just
    # started) is slower than the rest, and it would always be a --db none one
    d = s.args.duration
    w = loadgen_run(s, Row("loadgen", "overhead warm-up"), "overhead-warmup",
                    base[:-1] + [f"{min(d, 3)}s"], server=s.nginx, db="none")
    s.overhead_info["warmup"] = f"{w.rps:,.0f} req/s, {fmt(w.us_per_req, '.2f')} µs/req" if w.ok else w.error
    time.sleep(0.5)


def overhead_round(s: Session, row: Row, v: Variant, base: list[str], rnd: int) -> Row:
    """One variant's run, with what else the two cores did meanwhile and, for metrics, the scrapes."""
    assert isinstance(s.nginx, Server)
    pins, d = s.procs.pins, s.args.duration
    extra, scraper = [], None
    if v.name == "metrics":
        port = free_port()
        extra = ["--metrics-port", str(port), *v.metrics_flags]
        scraper = Scraper(port)
        scraper.start()
    psi0, t0 = cpu_pressure_us(), time.monotonic()
    c0, s0 = core_busy_s(pins.client_cpu), core_busy_s(pins.server_cpu)
    n0 = s.nginx.cpu_seconds()
    # steady state: from 2.5 s after the spawn (start-up takes ~0.5-1 s) to d s
    offmain = OffMainCPU(2.5, float(d)) if d >= 5 else None
    try:
        r = loadgen_run(s, row, f"overhead-{v.name}-{rnd}", base + extra, server=s.nginx, db=v.db,
                        strict_store=True, monitor=offmain)
    finally:
        if scraper:
            scraper.stop()
    psi1, t1 = cpu_pressure_us(), time.monotonic()
    c1, s1 = core_busy_s(pins.client_cpu), core_busy_s(pins.server_cpu)
    n1 = s.nginx.cpu_seconds()
    wall = t1 - t0
    if offmain:
        r.extra.update(offmain.result())
    if psi0 is not None and psi1 is not None and wall > 0:
        # share of the run's wall time in which some task waited for a CPU
        r.extra["cpu_pressure_pct"] = (psi1 - psi0) / (wall * 1e6) * 100
    if pins.taskset and wall > 0 and None not in (c0, c1, r.cpu_s):
        # busy time of loadgen's core that was not loadgen's: other work
        r.extra["other_on_client_core_pct"] = max(0.0, (c1 - c0 - r.cpu_s) / wall * 100)
    if pins.taskset and wall > 0 and None not in (s0, s1, n0, n1):
        r.extra["other_on_server_core_pct"] = max(0.0, (s1 - s0 - (n1 - n0)) / wall * 100)
    if scraper:
        _scrape_check(r, scraper)
    return r


def _scrape_check(r: Row, scraper: Scraper) -> None:
    """The metrics variant counts only if /metrics was really served during the run."""
    r.extra.update(scrapes_ok=scraper.ok, scrape_attempts=scraper.attempts,
                   scrape_bytes=scraper.bytes, scrape_series=scraper.series,
                   scrape_last_error=scraper.last_error)
    log(f"  -> /metrics: {scraper.ok} of {scraper.attempts} scrapes ok"
        + (f" (last error: {scraper.last_error})" if scraper.last_error else ""))
    if r.ok and not scraper.ok:
        fail(r, f"no successful scrape of /metrics in {scraper.attempts} attempts"
                f" (last: {scraper.last_error or '?'})")
