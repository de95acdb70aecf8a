"""The markdown report: one section a part, each built from the session's rows."""

from __future__ import annotations

import shlex
import statistics

from .console import redact
from .freeze import true_quantile_s
from .overhead_report import overhead_section
from .paths import LOGS, REPO, WORK
from .rows import Row
from .session import Session
from .tables import fmt, table
from .tls import tls_section

THROUGHPUT_HEADERS = ["tool", "model", "req/s", "requests", "duration s", "client CPU µs/req",
                      "nginx CPU %", "nginx served", "tool count ÷ served", "connections opened",
                      "p50 ms", "p99 ms", "errors (notes)"]


def report(s: Session, argv: list[str], started: str, machine: dict, versions: dict, notes: list[str],
           interrupted: str | None) -> str:
    """The whole report; `argv` is run.py's command line (without the program), shown redacted."""
    L = header(s, argv, started, machine, versions, notes, interrupted)
    L += throughput_section(s) + ratios_section(s) + sweep_section(s)
    if "overhead" in s.args.only:
        L += overhead_section(s)
    L += workers_section(s) + freeze_section(s) + tls_section(s)
    L += ["", f"Logs of every run: `{LOGS.relative_to(REPO)}/`; raw figures: "
          f"`{(WORK / 'latest.json').relative_to(REPO)}`.", ""]
    return "\n".join(L)


def header(s: Session, argv: list[str], started: str, machine: dict, versions: dict, notes: list[str],
           interrupted: str | None) -> list[str]:
    a, pins = s.args, s.procs.pins
    L = [f"# loadgen side-by-side benchmark — {started}", ""]
    if interrupted:
        L += [f"**Interrupted ({interrupted}): partial results.**", ""]
    L += [f"Command: `python3 bench/run.py {redact(shlex.join(argv))}`", "",
          "## Machine", "",
          f"- nproc: {machine['nproc']}; CPU: {machine['cpu']}; kernel {machine['kernel']}; "
          f"{machine['os']}; Python {machine['python']}",
          f"- pinning: target on core {pins.server_cpu}, each client on core {pins.client_cpu} "
          f"({'taskset' if pins.taskset else 'NOT pinned: taskset missing'})",
          f"- target: nginx, 1 worker, `return 200 \"ok\"`, keep-alive; "
          f"{a.users} connections/users, {a.duration} s per run", "",
          "## Tool versions", ""]
    L += [f"- {k}: {v}" for k, v in versions.items()]
    if notes:
        L += ["", "## Setup notes", ""] + [f"- {n}" for n in notes]
    if isinstance(s.nginx, str):
        L += ["", f"**nginx target unavailable: {s.nginx}**"]
    return L


def peer_row(rows: list[Row], tool: str) -> Row | None:
    for r in rows:
        if r.tool == tool and r.ok:
            return r
    return None


def throughput_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for r in rows:
        if not r.ok:
            out.append([r.tool, r.model, f"FAILED: {r.error}"] + ["–"] * 10)
            continue
        note = r.extra.get("note", "")
        if r.tool == "loadgen" and r.extra.get("dropped_iterations"):
            note = (note + "; " if note else "") + f"dropped {r.extra['dropped_iterations']:,}"
        if r.extra.get("saturated"):
            note = (note + "; " if note else "") + "generator saturated"
        served = r.extra.get("nginx_requests")
        check = f"{r.requests / served * 100:.1f} %" if served else "–"
        out.append([r.tool, r.model, f"{r.rps:,.0f}", f"{r.requests:,}", f"{r.duration_s:.2f}",
                    fmt(r.us_per_req, ".1f"), fmt(r.server_cpu_pct, ".0f"),
                    fmt(served, ","), check, fmt(r.extra.get("nginx_connections"), ","),
                    fmt(r.p50_ms, ".2f"), fmt(r.p99_ms, ".2f"),
                    (fmt(r.errors, ",d") if r.errors is not None else "–") + (f" ({note})" if note else "")])
    return out


def throughput_section(s: Session) -> list[str]:
    peers, lg = s.results["peers"], s.results["loadgen"]
    if not (peers or lg):
        return []
    return ["", "## Throughput and client CPU cost (closed model unless stated)", "",
            "req/s = the tool's own request count ÷ its own measured duration; "
            "client CPU µs/req = (user+system CPU of the client process, from os.wait4) ÷ requests, "
            "start-up included; nginx CPU % = the target's CPU over the run (≈100 % means the "
            "target, not the client, was the limit); nginx served / connections opened = nginx's "
            "own stub_status counters over the run (a tool count above what nginx served is a "
            "counting bug; connections ≈ users means keep-alive held).", "",
            *table(THROUGHPUT_HEADERS, throughput_rows(peers + lg))]


def ratios_section(s: Session) -> list[str]:
    peers, lg = s.results["peers"], s.results["loadgen"]
    if not lg:
        return []
    L = ["", "## Ratios: loadgen ÷ peer", ""]
    if not peers:
        return L + ["(peers were not run in this invocation: no ratios; run without `--only`.)"]
    rps_tools, cpu_tools = ("k6", "wrk", "Locust", "hey"), ("k6", "Locust")
    heads = ["loadgen row"] + [f"req/s ÷ {t}" for t in rps_tools] + [f"CPU/req ÷ {t}" for t in cpu_tools]
    rws = []
    for r in lg:
        line = [r.model]
        for p in (peer_row(peers, t) for t in rps_tools):
            line.append(f"{r.rps / p.rps:.2f}×" if (r.ok and p and p.rps) else "n/a")
        for p in (peer_row(peers, t) for t in cpu_tools):
            ok = r.ok and p and p.us_per_req and r.us_per_req
            line.append(f"{r.us_per_req / p.us_per_req:.2f}×" if ok else "n/a")
        rws.append(line)
    return L + table(heads, rws) + [
        "", "req/s ratios above 1 mean loadgen pushed more requests through than the peer; "
        "CPU/req ratios above 1 mean loadgen spent more client CPU per request."]


def sweep_section(s: Session) -> list[str]:
    sweep = s.results["sweep"]
    if not sweep:
        return []
    rws = []
    for r in sweep:
        tr = r.extra.get("target_rate")
        if not r.ok:
            rws.append([fmt(tr, ",.0f"), f"FAILED: {r.error}"] + ["–"] * 7)
            continue
        ach = r.extra.get("achieved_rate")
        pct = (ach / tr * 100) if (ach is not None and tr) else None
        rws.append([fmt(tr, ",.0f"), fmt(ach, ",.0f"), fmt(pct, ".1f"),
                    fmt(r.extra.get("dropped_iterations"), ","),
                    fmt(r.extra.get("lag_p99_ms"), ".2f"), fmt(r.p99_ms, ".2f"),
                    fmt(r.us_per_req, ".1f"), fmt(r.extra.get("gen_cpu_percent"), ".0f"),
                    fmt(r.extra.get("saturated"), "")])
    return ["", f"## Open-model rate sweep (loadgen --rate R --max-inflight 1000, {s.args.duration} s each, nginx)",
            "", *table(["target /s", "achieved /s", "achieved %", "dropped iterations",
                        "dispatch lag p99 ms", "latency p99 ms", "client CPU µs/req",
                        "generator CPU %", "saturated"], rws)]


def workers_section(s: Session) -> list[str]:
    wk = s.results.get("workers") or []
    if not wk:
        return []
    L = ["", "## Worker processes (`--workers`)", "",
         "Closed model, ad hoc --url, max throughput, `--db none`; 1 worker pinned to the client core, "
         "2 workers on every core (the second shares nginx's core on a 2-core machine). Rounds interleaved; "
         "reproduce with `python3 bench/run.py --only workers`.", ""]
    rws = [[r.model, fmt(r.rps, ",.0f"), fmt(r.us_per_req, ".1f"), fmt(r.server_cpu_pct, ".0f"),
            r.error or r.extra.get("note", "")] for r in wk]
    L += table(["run", "req/s", "client CPU µs/req", "nginx CPU %", "note"], rws)
    groups: dict[tuple[int, str], list[float]] = {}
    for r in wk:
        if r.ok and r.rps:
            groups.setdefault((r.extra.get("workers"), r.extra.get("cpus")), []).append(r.rps)
    base = groups.get((1, s.procs.pins.client_cpu))
    if base:
        b1 = statistics.median(base)
        for (n, cpu), vals in sorted(groups.items()):
            m = statistics.median(vals)
            L += [f"- {n} worker(s) on cpus {cpu}: median {m:,.0f} req/s, **{m / b1:.2f}×** one worker."]
    return L


def freeze_section(s: Session) -> list[str]:
    fr, a, info = s.results["freeze"], s.args, s.freeze_info
    if not fr:
        return []
    F, T = a.freeze_for, a.freeze_every
    t90, t99 = true_quantile_s(0.90, F, T), true_quantile_s(0.99, F, T)
    L = ["", f"## Coordinated omission: target frozen {F:g} s every {T:g} s, "
         f"{a.freeze_rate}/s for {a.freeze_run_time} s", "",
         f"Target: {info.get('target', '–')}. True values, for arrivals uniform in time: "
         f"P(latency > x) = (F − x)/T, so p90 = F − 0.1·T = {t90:.3f} s and "
         f"p99 = F − 0.01·T = {t99:.3f} s (plus the normal service time, negligible). "
         "A tool that waits for the frozen connection before sending the next request "
         "(coordinated omission) reports far lower values. Each client was started right "
         f"after a freeze ended (synchronised: {info.get('synced', '–')} runs), so "
         "its window holds whole freezes only"
         + ("" if (a.freeze_run_time % T == 0) else
            " — but the run time is not a multiple of the period, so the true values are approximate")
         + ".", ""]
    rws = [freeze_row(r, t90, t99, a.freeze_rate * a.freeze_run_time) for r in fr]
    return L + table(["tool", "how", "reported p90 s", "true p90 s", "p90 error", "reported p99 s",
                      "true p99 s", "p99 error", "requests (notes)"], rws)


def _rel(rep_ms: float | None, true_s: float) -> str:
    if rep_ms is None or not true_s:
        return "–"
    return f"{(rep_ms / 1e3 - true_s) / true_s * 100:+.0f} %"


def freeze_row(r: Row, t90: float, t99: float, intended: int) -> list[str]:
    if not r.ok:
        return [r.tool, r.model, f"FAILED: {r.error}"] + ["–"] * 6
    note = []
    if r.extra.get("dropped_iterations"):
        note.append(f"dropped {r.extra['dropped_iterations']:,}")
    if r.extra.get("listen_overflows"):
        note.append(f"{r.extra['listen_overflows']} SYNs dropped by a full accept queue")
    if r.extra.get("note"):
        note.append(r.extra["note"])
    if r.requests is not None and r.requests < 0.98 * intended:
        note.append(f"only {r.requests / intended * 100:.0f} % of the {intended:,} intended: "
                    "sends were held back by the freezes")
    return [r.tool, r.model,
            f"{r.p90_ms / 1e3:.3f}" if r.p90_ms is not None else "–", f"{t90:.3f}", _rel(r.p90_ms, t90),
            f"{r.p99_ms / 1e3:.3f}" if r.p99_ms is not None else "–", f"{t99:.3f}", _rel(r.p99_ms, t99),
            f"{r.requests:,} ({r.rps:,.0f}/s)" + (f"; {'; '.join(note)}" if note else "")]
