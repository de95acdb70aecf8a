#!/usr/bin/env python3
"""A long soak: does loadgen's memory stay flat and its event loop prompt for an hour?

    python3 bench/soak.py                       # 60 minutes at 500/s (Poisson)
    python3 bench/soak.py --minutes 10 --rate 200 --loadgen .venv/bin/loadgen

Open model, Poisson arrivals, ``bench/soak_scenario.py`` (a login per user,
weighted tasks, ids folded into names, JSON and form bodies) against bench's
nginx pinned to core 0, loadgen pinned to core 1 with the SQLite store and
``/metrics`` on, scraped every 10 s as Prometheus would. The user pool is
fixed (``--users`` = ``--max-inflight`` = ``--pool``): an open-model pool grows
on demand and never shrinks, so a pool that grew after minute 5 (a busy
neighbour stalls the loop once, and arrivals pile up) would be counted as a
leak; with a fixed pool, an arrival that finds it full is dropped and counted. Every 10 s it
samples loadgen's RSS (/proc) and the lag and stall figures ``/metrics``
exposes; at the end it prints a markdown section (RSS at 5 and 60 minutes,
their ratio, lag over the run) for ``bench/RESULTS.md`` and writes every
sample to ``bench/.work/soak.csv``. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import subprocess
import sys
import time
import urllib.request

import run as bench  # bench/run.py: nginx, pinning, child-process hygiene

_GAUGES = {
    "lag_p99_ms": re.compile(r"^loadgen_scheduler_lag_p99_seconds\{[^}]*\} (\S+)", re.M),
    "stall_max_ms": re.compile(r"^loadgen_event_loop_stall_seconds(?:\{[^}]*\})? (\S+)", re.M),
    "requests": re.compile(r"^loadgen_requests_total\{[^}]*\} (\S+)", re.M),
}


def scrape(port: int) -> dict[str, float]:
    """One /metrics scrape: the gauges above (ms for seconds), requests summed over series."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for key, rx in _GAUGES.items():
        vals = [float(v) for v in rx.findall(text)]
        if vals:
            out[key] = sum(vals) if key == "requests" else max(vals) * 1000
    return out


def rss_mb(pid: int) -> float | None:
    """The process's resident set (VmRSS) in MB, from /proc: no third-party package, so the
    soak runs on the system python3 as bench/run.py does."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def report(samples: list[dict], args: argparse.Namespace, summary: dict | None, cmd: str) -> str:
    def at(minute: float) -> dict | None:
        cands = [s for s in samples if s["t_s"] <= minute * 60 + 5 and s.get("rss_mb")]
        return cands[-1] if cands else None

    first, last = at(5), at(args.minutes)

    def median_rss(lo_min: float, hi_min: float) -> float | None:
        vals = sorted(s["rss_mb"] for s in samples if lo_min * 60 <= s["t_s"] <= hi_min * 60 + 5 and s.get("rss_mb"))
        return vals[len(vals) // 2] if vals else None

    rss = [s["rss_mb"] for s in samples if s.get("rss_mb")]
    lags = [s["lag_p99_ms"] for s in samples if "lag_p99_ms" in s]
    lines = [
        f"## Soak ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{cmd}`)",
        "",
        f"Open model, Poisson, {args.rate}/s for {args.minutes:g} min, a fixed pool of {args.pool} users, "
        "`bench/soak_scenario.py` against nginx "
        "(core 0), loadgen on core 1, SQLite store, `/metrics` scraped every 10 s.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    if first and last:
        lines.append(f"| RSS at 5 min | {first['rss_mb']:.1f} MB |")
        lines.append(f"| RSS at {args.minutes} min | {last['rss_mb']:.1f} MB |")
        lines.append(f"| ratio | {last['rss_mb'] / first['rss_mb']:.3f} |")
    early, late = median_rss(4, 6), median_rss(args.minutes - 2, args.minutes)
    if early and late:
        lines.append(f"| median RSS over minutes 4-6 / {args.minutes - 2:g}-{args.minutes:g} (ratio) | "
                     f"{early:.1f} / {late:.1f} MB ({late / early:.3f}) |")
    if rss:
        lines.append(f"| RSS min / max over the run | {min(rss):.1f} / {max(rss):.1f} MB |")
    if lags:
        lines.append(f"| dispatch lag p99 (10 s windows): median / max | "
                     f"{sorted(lags)[len(lags) // 2]:.2f} / {max(lags):.2f} ms |")
    if summary:
        lines.append(f"| requests / errors | {summary['requests']:,} / {summary['errors']:,} |")
        lines.append(f"| achieved rate | {summary['achieved_rate']:.1f}/s |")
        lines.append(f"| dropped iterations | {summary['dropped_iterations']:,} |")
        lat = summary["latency_ms"]
        lines.append(f"| latency p50 / p99 / max | {lat['p50']:.2f} / {lat['p99']:.2f} / {lat['max']:.2f} ms |")
        gen = summary.get("generator", {})
        lines.append(f"| saturated intervals | {gen.get('saturated_intervals')} of {gen.get('intervals')} |")
        if "stalled_intervals" in gen:
            lines.append(f"| stalled intervals | {gen['stalled_intervals']} of {gen.get('intervals')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--loadgen", default=str(bench.REPO / ".venv" / "bin" / "loadgen"))
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--pool", type=int, default=300, help="open-model users, preallocated and the most in flight")
    args = ap.parse_args()
    bench.WORK.mkdir(parents=True, exist_ok=True)
    nginx = bench.start_nginx()
    if isinstance(nginx, str):
        print(f"soak: {nginx}", file=sys.stderr)
        return 3
    db = bench.WORK / "soak.db"
    db.unlink(missing_ok=True)
    summary_path = bench.WORK / "soak-summary.json"
    summary_path.unlink(missing_ok=True)
    mport = bench.free_port()
    argv = [*shlex.split(args.loadgen), "run", str(bench.BENCH / "soak_scenario.py"),
            "--host", f"http://127.0.0.1:{nginx.port}", "--rate", str(args.rate), "--arrival", "poisson",
            "--users", str(args.pool), "--max-inflight", str(args.pool),
            "--run-time", f"{args.minutes * 60:.0f}s", "--db", bench.sqlite_url(db),
            "--spool-dir", str(bench.SPOOL), "--metrics-port", str(mport), "--metrics-grace", "0s",
            "--summary-json", str(summary_path), "-q"]
    cmd = "python3 bench/soak.py" + ("" if args.minutes == 60 else f" --minutes {args.minutes:g}") + \
        ("" if args.rate == 500 else f" --rate {args.rate}")
    log_path = bench.LOGS / "soak-loadgen.log"
    bench.LOGS.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(bench.pinned(bench.CLIENT_CPU, argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    bench.CHILDREN.append(proc)
    t0 = time.monotonic()
    samples: list[dict] = []
    while proc.poll() is None:
        time.sleep(args.sample_s)
        s = {"t_s": round(time.monotonic() - t0, 1), "rss_mb": rss_mb(proc.pid), **scrape(mport)}
        samples.append(s)
        bench.log(f"soak {s['t_s']:>6.0f}s rss {s['rss_mb'] or 0:.1f} MB lag p99 {s.get('lag_p99_ms', 0):.2f} ms")
    with open(bench.WORK / "soak.csv", "w", newline="") as f:
        keys = sorted({k for s in samples for k in s})
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(samples)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    text = report(samples, args, summary, cmd)
    (bench.WORK / "soak.md").write_text(text)
    print(text)
    bench.stop_all_children()
    return 0 if proc.returncode in (0, 1) else proc.returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bench.stop_all_children()  # also when main() fails: no nginx or loadgen left behind
