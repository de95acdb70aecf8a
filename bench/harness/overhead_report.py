"""The overhead part's report section: each variant's medians against `--db none`, every round,
the best rounds, and notes on how far the machine's noise lets the 2 % requirement be judged."""

from __future__ import annotations

import os
import shlex
import statistics

from .console import redact
from .processes import Pinning
from .rows import Row
from .session import Options, Session
from .tables import fmt, ratio_cell, signed, signed_pct, spread, table

OVERHEAD_LIMIT = 0.02  # the requirement: < 2 % from --db none
LIMIT_PCT = f"{OVERHEAD_LIMIT * 100:g} %"

Verdict = tuple[str, float, float, bool]  # variant, req/s ratio, CPU/req ratio, both within the limit
OffVerdict = tuple[str, float, float]  # variant, % CPU off the main thread, points above none's


class Figures:
    """The overhead rows grouped by variant, and the `--db none` medians every ratio is taken against."""

    def __init__(self, variants: list[dict], rows: list[Row]):
        self.by: dict[str, list[Row]] = {v["name"]: [r for r in rows if r.extra.get("variant") == v["name"]]
                                         for v in variants}
        self.med: dict[str, tuple[float | None, float | None]] = {}
        for v in variants:
            ok = self.ok(v["name"])
            rps = [r.rps for r in ok if r.rps]
            cpu = [r.us_per_req for r in ok if r.us_per_req]
            self.med[v["name"]] = (statistics.median(rps) if rps else None,
                                   statistics.median(cpu) if cpu else None)
        self.base_rps, self.base_cpu = self.med.get("none", (None, None))
        self.base_off = self.off_main("none")

    def ok(self, name: str) -> list[Row]:
        return [r for r in self.by[name] if r.ok]

    def off_main(self, name: str) -> float | None:
        xs = [r.extra["off_main_cpu_pct"] for r in self.by.get(name, []) if r.ok and "off_main_cpu_pct" in r.extra]
        return statistics.median(xs) if xs else None


def overhead_section(s: Session) -> list[str]:
    info, rows = s.overhead_info, s.results["overhead"]
    variants = info.get("variants") or []
    fig = Figures(variants, rows)
    L = _intro(s.args)
    rws, verdicts, off_verdicts = [], [], []
    for v in variants:
        rw, verdict, off_verdict = _summary_row(fig, v)
        rws.append(rw)
        verdicts += verdict
        off_verdicts += off_verdict
    L += table(["variant", "flags", "rounds ok", "req/s (median)", "req/s ÷ none",
                "client CPU µs/req (median)", "CPU/req ÷ none", f"within {LIMIT_PCT}?",
                "CPU off the main thread, % of loadgen's (median)", "− none's",
                "nginx CPU % (median)", "check"], rws)
    if off_verdicts:
        L += ["", "CPU off the main thread: the share of loadgen's CPU spent outside the thread that "
              "runs its event loop (the hot path), over the steady state of each run (from 2.5 s after "
              f"the start to {s.args.duration} s; `/proc/PID/stat` minus `/proc/PID/task/PID/stat`, exited "
              "threads included). loadgen is pinned to one core, so this CPU is taken from the event "
              "loop: the store's writer thread or the /metrics server shows up here directly, "
              "whatever the machine's noise. Not in it: what the features do on the event loop "
              "itself (their sinks, called there once a second), GIL hand-offs, cache effects; "
              "resolution about ±0.3 points (clock ticks)."]
    ran = [v["name"] for v in variants if not v.get("skip")]
    if ran:
        R = s.args.overhead_rounds
        L += _rounds_table(fig, ran, R, s.procs.pins) + _best_table(fig, ran, R)
        notes = _noise_notes(fig, ran, R, rows) + _verdict_notes(verdicts, off_verdicts, fig, ran, R)
        notes += _machine_notes(rows, info, s.procs.pins)
        L += [""] + [f"- {n}" for n in notes]
    return L


def _intro(a: Options) -> list[str]:
    R = a.overhead_rounds
    repro = ["python3", "bench/run.py", "--only", "overhead"]
    if a.duration != 10:
        repro += ["--duration", str(a.duration)]
    if a.users != 64:
        repro += ["--users", str(a.users)]
    if R != 3:
        repro += ["--overhead-rounds", str(R)]
    if a.pg_url:
        repro += ["--pg-url", redact(a.pg_url)]
    if a.loadgen:
        repro += ["--loadgen", a.loadgen]
    return ["", f"## Store and metrics overhead (closed model, ad hoc --url, {a.users} users, "
            f"{a.duration} s, {R} rounds interleaved)", "",
            f"Reproduce: `{shlex.join(repro)}`.", "",
            f"Requirement: writing to the store (once a second, from its own thread), and serving "
            f"/metrics scraped every second, cost the hot path less than {LIMIT_PCT} of "
            "req/s and of client CPU per request, against `--db none`. "
            "Every variant is the \"closed, ad hoc --url\" command, `loadgen run --url URL --users "
            f"{a.users} --spawn-rate 10000 --run-time {a.duration}s --quiet --summary-json F`, plus its flags "
            "(stored variants also `--spool-dir bench/.work/spool`). The variants run interleaved, one of "
            "each per round in the order listed, so that slow drifts of a busy machine hit them alike; "
            "the figures are medians over the rounds and the ratios are a variant's median ÷ the "
            "`--db none` median. A stored variant counts only if the run really went in (the summary's "
            "run_id, loadgen's \"stored as run <run_id>\" on stdout, and the run's row and its "
            "per-second interval rows read back from the database); the metrics variant only if "
            "scrapes of /metrics succeeded during the run. Client CPU is loadgen's whole process "
            "(the store's writer thread and the /metrics server thread included), start-up included; "
            "the database server's own CPU is not in it.", ""]


def _check(fig: Figures, name: str) -> str:
    """What shows the variant did what it claims: stored runs and their intervals, or good scrapes."""
    ok = fig.ok(name)
    if name == "none":
        return "–"
    if name == "metrics":
        return ", ".join(f"{r.extra.get('scrapes_ok', 0)}/{r.extra.get('scrape_attempts', 0)}"
                         for r in ok) + " scrapes ok/attempted"
    counts = [str(r.extra["intervals_stored"]) if r.extra.get("intervals_stored") is not None
              else "?" for r in ok]
    return f"stored {len(ok)}/{len(fig.by[name])}" + (f" ({', '.join(counts)} intervals)" if ok else "")


def _summary_row(fig: Figures, v: dict) -> tuple[list[str], list[Verdict], list[OffVerdict]]:
    """A variant's line of the summary table, and its verdicts (none for the reference or a skip)."""
    name = v["name"]
    if v.get("skip"):
        return [name, v["flags"], f"skipped: {v['skip']}"] + ["–"] * 9, [], []
    ok = fig.ok(name)
    m_rps, m_cpu = fig.med[name]
    r_rps = m_rps / fig.base_rps if (m_rps and fig.base_rps) else None
    r_cpu = m_cpu / fig.base_cpu if (m_cpu and fig.base_cpu) else None
    within, verdicts = "–", []
    if name != "none" and r_rps is not None and r_cpu is not None:
        yes_rps, yes_cpu = abs(r_rps - 1) < OVERHEAD_LIMIT, abs(r_cpu - 1) < OVERHEAD_LIMIT
        within = f"req/s {'yes' if yes_rps else 'NO'}, CPU {'yes' if yes_cpu else 'NO'}"
        verdicts.append((name, r_rps, r_cpu, yes_rps and yes_cpu))
    srv = [r.server_cpu_pct for r in ok if r.server_cpu_pct is not None]
    om = fig.off_main(name)
    d_om = om - fig.base_off if (om is not None and fig.base_off is not None) else None
    off_verdicts = [(name, om, d_om)] if (name != "none" and d_om is not None) else []
    ref = name == "none"
    return [name, v["flags"], f"{len(ok)} of {len(fig.by[name])}", fmt(m_rps, ",.0f"),
            "1 (reference)" if ref else ratio_cell(r_rps),
            fmt(m_cpu, ".2f"), "1 (reference)" if ref else ratio_cell(r_cpu),
            within, fmt(om, ".2f"),
            "(reference)" if ref else (f"{signed(d_om)} pt" if d_om is not None else "–"),
            fmt(statistics.median(srv) if srv else None, ".0f"), _check(fig, name)], verdicts, off_verdicts


def _round_cell(r: Row | None) -> str:
    if r is None:
        return "not run"
    if not r.ok:
        return f"FAILED: {r.error}"
    oc, os_ = r.extra.get("other_on_client_core_pct"), r.extra.get("other_on_server_core_pct")
    om = r.extra.get("off_main_cpu_pct")
    return (f"{r.rps:,.0f} · {fmt(r.us_per_req, '.2f')}"
            + (f" · {signed(om, '.2f')} %" if om is not None else "")
            + (f" · {fmt(oc, '.0f')} / {fmt(os_, '.0f')} %" if (oc is not None or os_ is not None) else ""))


def _spreads(fig: Figures, ran: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """Each variant's spread of req/s and of CPU/req over its good rounds."""
    return {n: (spread([r.rps for r in fig.ok(n) if r.rps]), spread([r.us_per_req for r in fig.ok(n) if r.us_per_req]))
            for n in ran}


def _rounds_table(fig: Figures, ran: list[str], R: int, pins: Pinning) -> list[str]:
    L = ["", f"Every round (req/s · client CPU µs/req · CPU off the main thread · "
         f"other work on the client's core {pins.client_cpu} / "
         f"on nginx's core {pins.server_cpu}, as a share of the run's wall time: the cores' busy time "
         "(user + nice + system + steal, /proc/stat) minus loadgen's or nginx's own CPU; "
         "near 0 % when nothing else competes):", ""]
    rr = [[str(rnd)] + [_round_cell(next((x for x in fig.by[n] if x.extra.get("round") == rnd), None))
                        for n in ran] for rnd in range(1, R + 1)]
    line = ["spread (max−min) ÷ median"]
    for sr, sc in _spreads(fig, ran).values():
        line.append("–" if sr is None else f"{sr * 100:.1f} % · {fmt(sc * 100 if sc is not None else None, '.1f')} %")
    rr.append(line)
    return L + table(["round"] + ran, rr)


def _best_table(fig: Figures, ran: list[str], R: int) -> list[str]:
    best = {n: (max((r.rps for r in fig.ok(n) if r.rps), default=None),
                min((r.us_per_req for r in fig.ok(n) if r.us_per_req), default=None)) for n in ran}
    b_rps, b_cpu = best.get("none", (None, None))
    if not (R > 1 and b_rps and b_cpu):
        return []
    return ["", "Best round of each variant (highest req/s, lowest CPU µs/req): when other work "
            "comes and goes, the least disturbed round is the steadier estimate; the medians "
            "above are the primary figures.", "",
            *table(["variant", "best req/s", "÷ none's best", "lowest CPU µs/req", "÷ none's lowest"],
                   [[n, fmt(x, ",.0f"), "1 (reference)" if n == "none" else ratio_cell(x / b_rps if x else None),
                     fmt(c, ".2f"), "1 (reference)" if n == "none" else ratio_cell(c / b_cpu if c else None)]
                    for n, (x, c) in best.items()])]


def _clean(r: Row) -> bool:
    """A round where loadgen had its core to itself and was the bottleneck."""
    return (r.ok and (r.extra.get("process_cpu_pct") or 0) >= 95
            and (r.extra.get("other_on_client_core_pct") or 0) < 5
            and (r.extra.get("other_on_server_core_pct") or 0) < 5)


def _noise_notes(fig: Figures, ran: list[str], R: int, rows: list[Row]) -> list[str]:
    notes = []
    noisy = _noisy(fig, ran)
    if noisy:
        notes.append("**Noisy:** the rounds of one variant differ among themselves by more than the "
                     f"{LIMIT_PCT} being tested ("
                     + "; ".join(f"{n}: req/s {fmt(s[0] * 100 if s[0] is not None else None, '.1f')} %, "
                                 f"CPU {fmt(s[1] * 100 if s[1] is not None else None, '.1f')} %" for n, s in noisy)
                     + "), so a difference of that size between variants is not resolved by this run; "
                     f"medians over more rounds (`--overhead-rounds {max(5, R + 2)}`) or a quieter machine "
                     "narrow it.")
    n_ok = [r for r in rows if r.ok and "process_cpu_pct" in r.extra]
    if n_ok:
        cl = [r for r in n_ok if _clean(r)]
        line = (f"Clean runs (loadgen used ≥ 95 % of its core in the steady state, and other work "
                f"< 5 % on both cores): {len(cl)} of {len(n_ok)}; the others were held back by a "
                "disturbed target or competed for the client's core.")
        sp = {n: spread([r.rps for r in cl if r.extra.get("variant") == n]) for n in ran}
        sp = {n: x for n, x in sp.items() if x is not None}
        if sp:
            line += (" Spread of req/s among a variant's clean runs: "
                     + ", ".join(f"{n} {x * 100:.1f} %" for n, x in sp.items())
                     + (" — still above 2 %: noise from outside this machine's view (e.g. the "
                        "host of a VM), which no figure here can subtract." if max(sp.values()) > OVERHEAD_LIMIT
                        else "."))
        notes.append(line)
    return notes


def _noisy(fig: Figures, ran: list[str]) -> list[tuple[str, tuple[float | None, float | None]]]:
    """The variants whose rounds spread by more than the limit being tested."""
    return [(n, s) for n, s in _spreads(fig, ran).items() if any(x is not None and x > OVERHEAD_LIMIT for x in s)]


def _verdict_notes(verdicts: list[Verdict], off_verdicts: list[OffVerdict], fig: Figures, ran: list[str],
                   R: int) -> list[str]:
    notes = []
    for name, om, d_om in off_verdicts:
        notes.append(f"{name}: {om:.2f} % of loadgen's CPU off the main thread, "
                     f"{signed(d_om)} points against `--db none`"
                     + (f": the direct cost is below {LIMIT_PCT}" if d_om < OVERHEAD_LIMIT * 100
                        else f": **the direct cost alone reaches {LIMIT_PCT}**") + ".")
    noisy = bool(_noisy(fig, ran))
    for name, r_rps, r_cpu, good in verdicts:
        notes.append(f"{name}: req/s {signed_pct(r_rps)}, CPU/req {signed_pct(r_cpu)} against `--db none`: "
                     + (f"within {LIMIT_PCT}" if good else f"**not within {LIMIT_PCT}**")
                     + (" (but see the noise above)" if noisy else
                        " (one round: no spread to judge the noise by)" if R == 1 else "") + ".")
    return notes


def _machine_notes(rows: list[Row], info: dict, pins: Pinning) -> list[str]:
    """What else ran on the machine: a saturated nginx, other work on the cores, CPU pressure, load."""
    notes = []
    srv_hi = [r for r in rows if r.ok and (r.server_cpu_pct or 0) > 90]
    if srv_hi:
        notes.append(f"nginx was above 90 % CPU in {len(srv_hi)} run(s): there req/s is bounded by the "
                     "target, and client CPU per request is the figure that shows the overhead.")
    for key, what in (("other_on_client_core_pct", f"the client's core {pins.client_cpu}"),
                      ("other_on_server_core_pct", f"nginx's core {pins.server_cpu}")):
        xs = [r.extra[key] for r in rows if r.ok and r.extra.get(key) is not None]
        if xs:
            notes.append(f"Other work on {what} during the runs: median {statistics.median(xs):.0f} %, "
                         f"max {max(xs):.0f} % of the run's wall time.")
    psi = [r.extra["cpu_pressure_pct"] for r in rows if r.extra.get("cpu_pressure_pct") is not None]
    if psi:
        notes.append(f"CPU pressure during the runs (PSI `some`: share of the time some task waited "
                     f"for a CPU): median {statistics.median(psi):.1f} %, max {max(psi):.1f} % "
                     "(near 0 on an otherwise idle machine; high means other work competed).")
    if info.get("warmup"):
        notes.append(f"A warm-up `--db none` run before round 1 (not counted): {info['warmup']}.")
    lb, la = info.get("loadavg_before"), info.get("loadavg_after")
    if lb and la:
        notes.append(f"Load average (1 min) of the machine: {lb[0]:.2f} before the part, "
                     f"{la[0]:.2f} after ({os.cpu_count()} CPUs); above ~1 other work was "
                     "competing for the cores.")
    return notes
