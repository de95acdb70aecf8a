"""The peers (wrk, hey, k6, Locust): each one's command line and how its own figures are read."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from .paths import BENCH
from .processes import ChildRun
from .rows import Row, fail


def k6_run(k6: Path, target: str, summary: Path, mode: str, **script_env: str) -> tuple[list[str], dict]:
    """`k6 run k6_script.js` in MODE=vus or MODE=rate, writing its summary JSON to `summary`; never calls home."""
    argv = [str(k6), "run", "--no-usage-report", "--quiet", "--no-color",
            "-e", f"TARGET={target}", "-e", f"MODE={mode}"]
    for key, value in script_env.items():
        argv += ["-e", f"{key}={value}"]
    argv += ["-e", f"SUMMARY={summary}", str(BENCH / "k6_script.js")]
    return argv, dict(os.environ, K6_NO_USAGE_REPORT="true")


def _dur_to_s(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def parse_wrk(row: Row, run: ChildRun) -> Row:
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", run.stdout)
    if not m:
        return fail(row, run.error() if run.rc else "no request count in wrk output")
    row.fill(run, int(m.group(1)), _dur_to_s(m.group(2), m.group(3)))
    errs = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", run.stdout)
    if m:
        errs += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", run.stdout)
    if m:
        errs += sum(int(x) for x in m.groups())
    row.errors = errs
    for q, attr in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)\s*$", run.stdout, re.M)
        if m:
            setattr(row, attr, _dur_to_s(m.group(1), m.group(2)) * 1e3)
    return row


def parse_hey(row: Row, run: ChildRun) -> Row:
    out = run.stdout
    m = re.search(r"Total:\s+([\d.]+) secs", out)
    if not m:
        return fail(row, run.error() if (run.rc or run.timed_out) else "no summary in hey output")
    total = float(m.group(1))
    head, _, err_part = out.partition("Error distribution:")
    statuses = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", head)}
    responses = sum(statuses.values())
    errs = sum(n for c, n in statuses.items() if c >= 400)
    errs += sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", err_part, re.M))
    if not responses:
        return fail(row, "hey got no responses" + (f" ({errs} errors)" if errs else ""))
    row.fill(run, responses, total)
    row.errors = errs
    for q, attr in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{q}% in ([\d.]+) secs", out, re.M)
        if m:
            setattr(row, attr, float(m.group(1)) * 1e3)
    return row


def parse_k6(row: Row, run: ChildRun, summary: Path, trend: str = "http_req_duration") -> Row:
    try:
        data = json.loads(summary.read_text())
        metrics = data["metrics"]
        count = int(metrics["http_reqs"]["values"]["count"])
        dur = float(data["state"]["testRunDurationMs"]) / 1e3
    except (OSError, ValueError, KeyError, TypeError) as e:
        return fail(row, run.error() if (run.rc or run.timed_out) else f"no k6 summary ({e})")
    if not count:
        return fail(row, "k6 made no requests")
    row.fill(run, count, dur)
    failed = metrics.get("http_req_failed", {}).get("values", {})
    row.errors = int(failed.get("passes", 0))  # a "pass" of http_req_failed is a failure
    vals = metrics.get(trend, {}).get("values", {})
    row.p50_ms, row.p90_ms, row.p99_ms = vals.get("med"), vals.get("p(90)"), vals.get("p(99)")
    dropped = metrics.get("dropped_iterations", {}).get("values", {}).get("count")
    if dropped:
        row.extra["dropped_iterations"] = int(dropped)
    return row


def _hist_quantile(hist: dict[float, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    need, acc = q * total, 0
    for value in sorted(hist):
        acc += hist[value]
        if acc >= need:
            return value
    return max(hist)


def parse_locust(row: Row, run: ChildRun, prefix: Path, json_path: Path) -> Row:
    """Locust's --json-file (written at shutdown) is the source; its --csv
    _stats.csv is a snapshot rewritten once a second and NOT at shutdown, so
    its final count misses the last second or so (kept for reference only)."""
    try:
        entries = json.loads(json_path.read_text())
        count = sum(int(e["num_requests"]) for e in entries)
        start = min(float(e["start_time"]) for e in entries)
        last = max(float(e["last_request_timestamp"]) for e in entries if e["last_request_timestamp"])
        fails = sum(int(e.get("num_failures", 0)) for e in entries)
        hist: dict[float, int] = {}
        for e in entries:
            for k, n in (e.get("response_times") or {}).items():
                hist[float(k)] = hist.get(float(k), 0) + int(n)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return fail(row, run.error() if (run.rc or run.timed_out) else f"no Locust --json-file ({e})")
    if not count or last <= start:
        return fail(row, "Locust made no requests")
    # Locust's own req/s: num_requests / (last_request_timestamp - start_time)
    row.fill(run, count, last - start)
    row.errors = fails
    row.p50_ms, row.p90_ms, row.p99_ms = (_hist_quantile(hist, q) for q in (0.5, 0.9, 0.99))
    try:
        with open(Path(str(prefix) + "_stats.csv"), newline="") as f:
            agg = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"][0]
        row.extra["csv_request_count"] = int(agg["Request Count"])
    except (OSError, IndexError, KeyError, ValueError):
        pass
    return row
