"""The HTML report: one self-contained file (inline CSS and SVG, no script, no web font,
no request of any kind: its Content-Security-Policy forbids them), readable on screen
and on paper.

Numbers are formatted as the terminal summary and ``loadgen compare`` print them, and
the figures a test (or a script) may want to read carry ``data-`` attributes:
``data-endpoint``/``data-metric``/``data-value`` in the endpoint table,
``data-verdict``/``data-metric``/``data-subject`` on comparison rows, ``data-chart``
on every chart, ``data-verdict`` on the header.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from loadgen import __version__
from loadgen.engine import histogram as hdr
from loadgen.judgement.comparison import Comparison
from loadgen.judgement.render import (  # the comparison's cells, exactly as `loadgen compare` prints them
    baseline_range,
    change_text,
    is_headline,
    number,
    plural,
    tolerance_text,
    unit_heading,
    verdict_line,
    verdict_word,
)
from loadgen.judgement.run_stats import RunStats
from loadgen.judgement.tolerances import Tolerances
from loadgen.store.records import TOTAL
from loadgen.summary import format_ms as fmt_ms

from . import plots
from .data import ComparisonData, RunData

__all__ = [
    "CSS",
    "render_html",
    "fmt_ms",
    "fmt_count",
    "fmt_rps",
    "fmt_error_pct",
    "verdict",
    "header_html",
    "meta_html",
    "figures_html",
    "endpoint_table_html",
    "thresholds_html",
    "comparison_html",
]

# --- formatting (the terminal summary's) --------------------------------------------------


def fmt_count(n: int | float | None) -> str:
    return "–" if n is None else f"{int(n):,}"


def fmt_rps(v: float | None) -> str:
    return "–" if v is None else f"{v:,.1f}"


def fmt_error_pct(fraction: float | None) -> str:
    """An error rate as a percentage with two decimals (no % sign, as in the summary table)."""
    return "–" if fraction is None else f"{100 * fraction:.2f}"


def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


def _utc(ts: float | None) -> str:
    if ts is None:
        return "–"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min {sec:02d} s" if h else f"{m} min {sec:02d} s"


def _secs(s: float) -> str:
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:g}h"
    if s >= 60 and s % 60 == 0:
        return f"{s / 60:g}m"
    return f"{s:g}s"


def load_shape(config: dict[str, Any], model: str | None, test_type: str | None) -> str:
    """The load as configured, in one line: ``open model, constant arrivals at 50 it/s for 3s``."""
    if not config:
        return "–"
    model = model or config.get("model")
    stages = config.get("stages") or []
    run_time = _secs(float(config.get("run_time_s") or 0))
    if model == "open":
        arrival = config.get("arrival") or "constant"
        if stages:
            shape = f"open model, {arrival} arrivals, stages " + ", ".join(
                f"{_secs(s['duration_s'])} → {s['target']:g}/s" for s in stages)
        else:
            shape = f"open model, {arrival} arrivals at {config.get('rate') or 0:g} iterations/s for {run_time}"
        shape += f", at most {int(config.get('max_inflight') or 0):,} in flight"
    else:
        if stages:
            shape = "closed model, stages " + ", ".join(f"{_secs(s['duration_s'])} → {s['target']:g} users"
                                                        for s in stages)
        else:
            shape = (f"closed model, {config.get('users')} users (spawned at {config.get('spawn_rate'):g}/s)"
                     f" for {run_time}")
    if test_type and test_type != "load":
        shape = f"{test_type} test: {shape}"
    if config.get("seed") is not None:
        shape += f", seed {config['seed']}"
    adhoc = config.get("adhoc")
    if adhoc:
        shape += f"; ad hoc {adhoc.get('method', 'GET')} {adhoc.get('url', '')}"
    return shape


# --- pieces ---------------------------------------------------------------------------------


def verdict(run: RunData, cmp: ComparisonData | None) -> tuple[str, str, list[tuple[str, str]]]:
    """(headline word, its class ``pass``/``fail``/``warn``, [(detail text, class)]) of a run."""
    details: list[tuple[str, str]] = []
    status = run.run.get("status") or "running"
    exit_code = run.run.get("exit_code")
    ths = run.summary.get("thresholds") or []
    failed = [t for t in ths if not t.get("passed")]
    regressions = cmp.regressions if cmp else []
    if cmp is not None:
        c = cmp.comparison
        n = len(c.baseline_run_ids)
        against = f"against {c.baseline_version or 'the baseline'} ({plural(n, 'run')})"
        if regressions:
            details.append((f"{plural(len(regressions), 'regression')} {against}", "fail"))
        else:
            details.append((f"no regression {against}", "pass"))
    if ths:
        if failed:
            details.append((f"{len(failed)} of {len(ths)} thresholds failed", "fail"))
        else:
            details.append((f"{len(ths)} of {len(ths)} thresholds passed", "pass"))
    details.append((f"{status}" + ("" if exit_code is None else f", exit code {exit_code}"),
                    "pass" if status == "completed" and exit_code in (0, None) else "warn"))
    if regressions:
        return "REGRESSION", "fail", details
    if failed:
        return "FAILED", "fail", details
    if status != "completed":
        return status.upper(), "warn", details
    if exit_code not in (0, None):
        return f"EXIT {exit_code}", "warn", details
    return "PASS", "pass", details


def header_html(run: RunData, cmp: ComparisonData | None) -> str:
    word, cls, details = verdict(run, cmp)
    r = run.run
    title = f"{r.get('app_version') or 'unversioned'}"
    scenario = r.get("scenario")
    if scenario and run.config.get("adhoc") is None:
        scenario = os.path.basename(scenario) or scenario  # the full path is in the run's details
    elif not scenario:
        scenario = "no scenario"
    items = "".join(f'<li class="{c}">{_e(t)}</li>' for t, c in details)
    return f"""<header class="top" data-verdict="{escape(word.lower())}">
  <div class="title">
    <div class="kicker">loadgen · {_e(r.get('test_type') or 'load')} test report</div>
    <h1>{_e(title)} <span class="sep">·</span> <span class="scenario">{_e(scenario)}</span></h1>
    <div class="sub">run <code>{_e(run.id)}</code> · {_utc(r.get('started_at'))} · {_e(_duration(r.get('duration_s')))}
      · {_e(r.get('environment') or 'no environment')}</div>
  </div>
  <div class="verdict-box">
    <div class="verdict {cls}" data-verdict="{escape(word.lower())}">{_e(word)}</div>
    <ul class="details">{items}</ul>
  </div>
</header>"""


def meta_html(run: RunData) -> str:
    r = run.run
    commit = r.get("git_commit")
    rows = [
        ("Run id", f"<code>{_e(run.id)}</code>"),
        ("App version", _e(r.get("app_version") or "–")),
        ("Git commit", f'<code title="{_e(commit)}">{_e(commit[:12])}</code>' if commit else "–"),
        ("Environment", _e(r.get("environment") or "–")),
        ("Scenario", _e(r.get("scenario") or "–")),  # the identity runs are compared on
        ("Scenario file", _e(run.config.get("scenario_path") or run.summary.get("scenario") or "–")),
        ("Test type", _e(r.get("test_type"))),
        ("Load", _e(load_shape(run.config, r.get("model"), r.get("test_type")))),
        ("Target host", _e(r.get("host") or "–")),
        ("Generator host", _e(r.get("generator_host") or "–")),
        ("loadgen", _e(r.get("loadgen_version") or "–")),
        ("Started", _e(_utc(r.get("started_at")))),
        ("Ended", _e(_utc(r.get("ended_at")))),
        ("Duration", _e(_duration(r.get("duration_s")))),
        ("Status", f'<span class="status-{_e(r.get("status"))}">{_e(r.get("status"))}</span>'),
        ("Exit code", _e("–" if r.get("exit_code") is None else r.get("exit_code"))),
    ]
    cells = "".join(f'<div class="kv kv-{escape(k.lower().replace(" ", "-"))}"><dt>{escape(k)}</dt>'
                    f'<dd data-field="{escape(k.lower())}">{v}</dd></div>' for k, v in rows)
    return f'<section id="run"><h2>Run</h2><dl class="meta">{cells}</dl></section>'


def figures_html(run: RunData) -> str:
    """The headline figures of the whole run, as tiles."""
    t = run.total
    if t is None:
        return ""
    s = run.summary
    g = s.get("generator") or {}
    tiles = [
        ("requests", "requests", fmt_count(t["requests"]), ""),
        ("rps", "throughput", fmt_rps(t["rps"]), "req/s"),
        ("error_rate", "errors", fmt_error_pct(t["error_rate"]), "%"),
        ("p50", "p50", fmt_ms(t["p50_ms"]), "ms"),
        ("p95", "p95", fmt_ms(t["p95_ms"]), "ms"),
        ("p99", "p99", fmt_ms(t["p99_ms"]), "ms"),
        ("max", "max", fmt_ms(t["max_ms"]), "ms"),
    ]
    bad = {"error_rate": t["errors"] > 0}
    if s.get("dropped_iterations") is not None and s.get("model", run.run.get("model")) == "open":
        tiles.append(("dropped_iterations", "dropped iterations", fmt_count(s["dropped_iterations"]), ""))
        bad["dropped_iterations"] = s["dropped_iterations"] > 0
    if g:
        tiles.append(("saturated_intervals", "saturated intervals",
                      f"{g.get('saturated_intervals', 0):,}", f"of {g.get('intervals', 0):,}"))
        bad["saturated_intervals"] = bool(g.get("saturated_intervals"))
        if "stalled_intervals" in g:
            tiles.append(("stalled_intervals", "event-loop stalls",
                          f"{g['stalled_intervals']:,}", f"of {g.get('intervals', 0):,}"))
            bad["stalled_intervals"] = bool(g["stalled_intervals"])
    fi = s.get("failed_iterations")
    if fi is not None:
        tiles.append(("failed_iterations", "failed iterations", fmt_count(fi.get("total", 0)), ""))
        bad["failed_iterations"] = bool(fi.get("total"))
    out = "".join(
        f'<div class="tile{" bad" if bad.get(key) else ""}" data-figure="{key}">'
        f'<div class="v">{escape(v)}<span class="u">{escape(u)}</span></div><div class="k">{escape(label)}</div></div>'
        for key, label, v, u in tiles
    )
    warnings = "".join(f"<li>{_e(w)}</li>" for w in s.get("warnings") or [])
    if run.from_intervals:
        warnings += ("<li>The run did not store its results (it was stopped before it finished): the figures"
                     " below are merged from the intervals it stored.</li>")
    warn = f'<ul class="warnings">{warnings}</ul>' if warnings else ""
    return f'<section id="figures" class="tiles">{out}</section>{warn}'


_EP_COLS = (
    ("requests", "count", lambda r: fmt_count(r["requests"]), lambda r: r["requests"]),
    ("rps", "req/s", lambda r: fmt_rps(r["rps"]), lambda r: r["rps"]),
    ("error_rate", "error %", lambda r: fmt_error_pct(r["error_rate"]), lambda r: r["error_rate"]),
    *((p, label, (lambda p: lambda r: fmt_ms(r[f"{p}_ms"]))(p), (lambda p: lambda r: r[f"{p}_ms"])(p))
      for p, label in (("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("p999", "p99.9"),
                       ("max", "max"))),
)


def endpoint_table_html(run: RunData) -> str:
    if not run.endpoints:
        return ('<section id="endpoints"><h2>Endpoints</h2><p class="empty">No results were stored for this'
                " run.</p></section>")
    head = "".join(f'<th scope="col">{escape(label)}</th>' for _, label, _, _ in _EP_COLS)
    body = []
    rows = run.endpoint_rows + ([run.total] if run.total is not None else [])
    for r in rows:
        key = r["endpoint"]
        cells = "".join(
            f'<td data-endpoint="{escape(key)}" data-metric="{m}" data-value="{_e(raw(r))}"'
            f'{" class=bad" if m == "error_rate" and r["errors"] else ""}>{escape(text(r))}</td>'
            for m, _, text, raw in _EP_COLS
        )
        label = "total" if key == TOTAL else key
        cls = ' class="total"' if key == TOTAL else ""
        body.append(f'<tr{cls} data-endpoint="{escape(key)}"><th scope="row">{escape(label)}</th>{cells}</tr>')
    return (f'<section id="endpoints"><h2>Endpoints <span class="unit">latency in ms</span></h2>'
            f'<div class="scroll"><table class="endpoints"><thead><tr><th scope="col">endpoint</th>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></div></section>')


def failed_iterations_html(run: RunData) -> str:
    """Iterations that ended in an exception, by task (empty when none failed)."""
    by_task = (run.summary.get("failed_iterations") or {}).get("by_task") or {}
    if not by_task:
        return ""
    rows = "".join(
        f'<tr data-task="{escape(task)}"><th scope="row">{escape(task)}</th>'
        f'<td data-metric="failed_iterations" data-value="{n}">{fmt_count(n)}</td></tr>'
        for task, n in sorted(by_task.items())
    )
    return ('<section id="failed-iterations"><h2>Failed iterations <span class="unit">by task</span></h2>'
            '<div class="scroll"><table class="endpoints"><thead><tr><th scope="col">task</th>'
            f'<th scope="col">failed</th></tr></thead><tbody>{rows}</tbody></table></div></section>')


def _threshold_value(metric: str, v: float | None) -> str:
    if v is None:
        return "no data"
    if metric in ("error_rate", "checks", "iteration_failure_rate"):
        return f"{100 * v:.2f} %"
    if metric == "rps":
        return f"{v:,.1f} req/s"
    if metric in ("errors", "requests", "iterations", "dropped_iterations", "failed_iterations"):
        return f"{v:,.0f}"
    return f"{fmt_ms(v)} ms"


def thresholds_html(run: RunData) -> str:
    ths = run.summary.get("thresholds") or []
    if not ths:
        return ""
    rows = []
    for t in ths:
        ok = bool(t.get("passed"))
        mark = '<span class="pill pass">passed</span>' if ok else '<span class="pill fail">FAILED</span>'
        rows.append(
            f'<tr class="{"ok" if ok else "regression"}" data-threshold="{_e(t.get("expr"))}" '
            f'data-passed="{"true" if ok else "false"}"><th scope="row"><code>{_e(t.get("expr"))}</code></th>'
            f'<td>{_e(_threshold_value(t.get("metric", ""), t.get("actual")))}</td><td>{mark}</td></tr>'
        )
    return ('<section id="thresholds"><h2>Thresholds</h2><table class="thresholds"><thead><tr>'
            '<th scope="col">threshold</th><th scope="col">measured</th><th scope="col">result</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _tolerances_used(th: Tolerances) -> str:
    p = th.percentile
    items = [
        ("response time", f"+{th.response_time * 100:g} % at {p}"),
        ("error rate", f"+{th.error_rate * 100:.2f} pp"),
        ("throughput", f"−{th.throughput * 100:g} %"),
        ("CPU", f"+{th.cpu_usage * 100:g} %"),
        ("memory", f"+{th.memory_usage * 100:g} %"),
        ("queue length", f"+{th.queue_length * 100:g} %"),
        ("baseline runs", f"{th.baseline_runs}"),
        ("confidence", f"{th.confidence * 100:g} %"),
        ("min requests", f"{th.min_requests}"),
        ("from", th.source or "the defaults"),
    ]
    cells = "".join(f'<div class="kv"><dt>{escape(k)}</dt><dd data-threshold-key="{escape(k)}">{_e(v)}</dd></div>'
                    for k, v in items)
    return f'<dl class="meta compact thresholds-used">{cells}</dl>'


def _baseline_table(cmp: ComparisonData) -> str:
    pv = cmp.comparison.tolerances.percentile_value

    def row(kind: str, stats: RunStats) -> str:
        ep = stats.endpoints.get(TOTAL)
        n = ep.requests if ep else None
        v = None
        if ep is not None and ep.latency.total_count:
            v = hdr.percentile_ms(ep.latency, pv)  # as the comparison reads it
        return (f'<tr data-run="{_e(stats.run_id)}"><th scope="row">{escape(kind)}</th>'
                f"<td><code>{_e(stats.run_id)}</code></td><td>{_e(stats.app_version or '–')}</td>"
                f"<td>{_e(_utc(stats.started_at))}</td><td>{fmt_count(n)}</td><td>{fmt_ms(v)}</td></tr>")

    rows = [row("candidate", cmp.candidate)] + [row("baseline", b) for b in cmp.baseline]
    missing = set(cmp.comparison.baseline_run_ids) - {b.run_id for b in cmp.baseline}
    note = (f'<p class="note">No longer in the store: {_e(", ".join(sorted(missing)))}.</p>' if missing else "")
    return ('<table class="runs"><thead><tr><th scope="col"></th><th scope="col">run</th><th scope="col">version</th>'
            f'<th scope="col">started</th><th scope="col">requests</th><th scope="col">{escape(cmp.comparison.tolerances.percentile)} (ms)</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>{note}')


def comparison_table_html(c: Comparison) -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in
                   ("metric", "endpoint", "baseline", "candidate", "change", "threshold", "verdict"))
    body = []
    for row in c.rows:
        base = escape(number(row.unit, row.baseline))
        spread = baseline_range(row)
        if spread is not None:
            base += f' <span class="range">({escape(spread[0])}–{escape(spread[1])})</span>'
        cls = row.verdict.replace(" ", "-")
        note = f' <span class="note">{_e(row.note)}</span>' if row.note else ""
        subject = f"<strong>{_e(row.subject)}</strong>" if is_headline(row) else _e(row.subject)
        body.append(
            f'<tr class="v-{cls}" data-verdict="{escape(row.verdict)}" data-metric="{escape(row.metric)}" '
            f'data-subject="{_e(row.subject)}"><td>{_e(row.label)} ({escape(unit_heading(row.unit))})</td>'
            f"<td>{subject}</td><td>{base}</td><td>{escape(number(row.unit, row.candidate))}</td>"
            f"<td>{escape(change_text(row))}</td><td>{escape(tolerance_text(row))}</td>"
            f'<td><span class="pill {cls}">{escape(verdict_word(row))}</span>{note}</td></tr>'
        )
    return (f'<div class="scroll"><table class="comparison"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def comparison_html(cmp: ComparisonData | None, charts: Sequence[plots.Chart] = ()) -> str:
    if cmp is None:
        return ""
    c = cmp.comparison
    n = len(c.baseline_run_ids)
    src = ("Computed for this report (not stored)" if cmp.source == "computed"
           else "As judged at the end of the run (stored with it)")
    line = verdict_line(c)
    cls = "fail" if c.regressions else "pass"
    notes = "".join(f"<li>{_e(note)}</li>" for note in c.notes)
    notes_html = f'<ul class="notes">{notes}</ul>' if notes else ""
    return f"""<section id="comparison" data-comparison-source="{cmp.source}">
<h2>Regression check <span class="unit">against {_e(c.baseline_version or 'the baseline')},
median of {plural(n, 'run')}</span></h2>
<p class="verdict-line {cls}" data-verdict="{escape(c.verdict)}">{_e(line)}</p>
<p class="note">{src}. A change is a regression only when it is beyond the threshold, outside the baseline
runs' own spread and, for latency and error rate, beyond the threshold with {c.tolerances.confidence * 100:g} %
confidence.</p>
{comparison_table_html(c)}
{notes_html}
<h3>Thresholds used</h3>
{_tolerances_used(c.tolerances)}
<h3>Runs compared</h3>
{_baseline_table(cmp)}
{"".join(chart_html(ch) for ch in charts)}
</section>"""


def chart_html(chart: plots.Chart) -> str:
    svg = plots.to_svg(chart.figure, chart.id)
    return (f'<figure class="chart" id="chart-{escape(chart.id)}" data-chart="{escape(chart.id)}">'
            f"<h3>{escape(chart.title)}</h3><div class=\"plot\">{svg}</div>"
            f"<figcaption>{escape(chart.caption)}</figcaption></figure>")


_SECTIONS = (
    ("latency", "Latency", ("latency-over-time", "endpoint-latency-over-time", "latency-spectrum")),
    ("throughput", "Throughput and errors", ("throughput-over-time", "status-codes")),
    ("generator", "Generator", ("generator-health",)),
    ("resources", "Resources and queues", ("resource-usage", "queue-metrics")),
)


def _chart_sections(charts: Iterable[plots.Chart]) -> tuple[str, list[tuple[str, str]]]:
    by_id = {c.id: c for c in charts}
    out, toc = [], []
    for sid, title, ids in _SECTIONS:
        present = [by_id[i] for i in ids if i in by_id]
        if present:
            toc.append((sid, title))
            out.append(f'<section id="{sid}"><h2>{escape(title)}</h2>{"".join(chart_html(c) for c in present)}'
                       "</section>")
    return "".join(out), toc


CSS = """
:root {
  --ink: #1f2933; --muted: #52606d; --faint: #7b8794; --line: #e4e7eb; --panel: #f5f7fa;
  --red: #c62828; --red-bg: #fdecea; --green: #2e7d32; --green-bg: #e8f5e9; --amber: #9a5b00; --amber-bg: #fff4e0;
  --blue: #2f6db5;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans",
          "DejaVu Sans", Arial, sans-serif;
  --mono: ui-monospace, "SFMono-Regular", "SF Mono", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono",
          monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: #fff; color: var(--ink); font: 14px/1.5 var(--sans); }
main { max-width: 1120px; margin: 0 auto; padding: 28px 40px 56px; }
code { font-family: var(--mono); font-size: 0.92em; }
h1 { font-size: 26px; line-height: 1.2; margin: 2px 0 6px; font-weight: 650; letter-spacing: -0.01em; }
h1 .sep { color: var(--faint); font-weight: 400; }
h1 .scenario { font-weight: 500; }
h2 { font-size: 17px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line);
     font-weight: 650; }
h2 .unit, h3 .unit { font-size: 13px; color: var(--muted); font-weight: 400; margin-left: 6px; }
h3 { font-size: 14px; margin: 22px 0 8px; font-weight: 650; }
header.top { display: flex; justify-content: space-between; align-items: flex-start; gap: 24px;
             padding-bottom: 18px; border-bottom: 2px solid var(--ink); }
.kicker { font-size: 12px; letter-spacing: 0.08em; text-transform: uppercase; color: var(--muted); }
.sub { color: var(--muted); font-size: 13px; }
.verdict-box { text-align: right; min-width: 230px; }
.verdict { display: inline-block; font-size: 22px; font-weight: 750; letter-spacing: 0.06em; padding: 4px 16px;
           border-radius: 4px; border: 2px solid currentColor; }
.verdict.pass { color: var(--green); background: var(--green-bg); }
.verdict.fail { color: #fff; background: var(--red); border-color: var(--red); }
.verdict.warn { color: var(--amber); background: var(--amber-bg); }
ul.details { list-style: none; margin: 8px 0 0; padding: 0; font-size: 13px; }
ul.details li.fail { color: var(--red); font-weight: 600; }
ul.details li.pass { color: var(--muted); }
ul.details li.warn { color: var(--amber); }
nav.toc { margin: 12px 0 0; font-size: 13px; color: var(--muted); }
nav.toc a { color: var(--muted); text-decoration: none; margin-right: 14px; white-space: nowrap; }
nav.toc a:hover { color: var(--blue); text-decoration: underline; }
dl.meta { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 8px 24px; margin: 0; }
dl.meta.compact { grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 6px 20px; }
dl.meta .kv { min-width: 0; }
dl.meta dt { font-size: 11.5px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.05em; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
dl.meta .kv-load { grid-column: span 2; }
.status-completed { color: var(--green); }
.status-aborted, .status-interrupted, .status-running { color: var(--amber); font-weight: 600; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(112px, 1fr)); margin: 26px 0 0;
         border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
.tile { padding: 12px 14px; border-right: 1px solid var(--line); }
.tile:last-child { border-right: 0; }
.tile .v { font-size: 21px; font-weight: 650; font-variant-numeric: tabular-nums; white-space: nowrap; }
.tile .u { font-size: 12px; color: var(--muted); font-weight: 400; margin-left: 3px; }
.tile .k { font-size: 12px; color: var(--muted); }
.tile.bad .v { color: var(--red); }
ul.warnings { margin: 14px 0 0; padding: 10px 14px 10px 32px; background: var(--amber-bg); color: var(--amber);
              border-left: 3px solid #d9822b; border-radius: 3px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 13.5px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
thead th { font-size: 12px; font-weight: 600; color: var(--muted); border-bottom: 1.5px solid var(--ink);
           white-space: nowrap; }
tbody th { font-weight: 500; overflow-wrap: break-word; }
tr.total th, tr.total td { font-weight: 700; border-top: 1.5px solid var(--faint); }
td.bad { color: var(--red); font-weight: 600; }
table.comparison td:nth-child(2), table.comparison th:nth-child(2),
table.comparison td:last-child, table.comparison th:last-child { text-align: left; }
table.thresholds td:last-child, table.thresholds th:last-child { text-align: left; }
table.thresholds { width: auto; min-width: 60%; }
table.runs { width: auto; min-width: 70%; }
table.runs td:nth-child(2), table.runs td:nth-child(3), table.runs th:nth-child(2), table.runs th:nth-child(3) {
  text-align: left; }
tr.v-regression td, tr.regression th, tr.regression td { background: var(--red-bg); color: var(--red); }
tr.v-regression td:first-child, tr.regression th:first-child { box-shadow: inset 3px 0 0 var(--red); }
tr.v-improvement td { color: var(--green); }
tr.v-insufficient-data td, tr.v-missing td, tr.v-new td { color: var(--muted); }
.range { color: var(--faint); font-size: 12px; }
.note { color: var(--muted); font-size: 12.5px; }
td .note { display: block; max-width: 34em; margin-left: auto; }
table.comparison td:last-child .note { margin-left: 0; }
.pill { display: inline-block; font-size: 11.5px; font-weight: 650; padding: 0 7px; border-radius: 3px;
        letter-spacing: 0.02em; }
.pill.regression, .pill.fail { background: var(--red); color: #fff; }
.pill.improvement, .pill.pass { background: var(--green-bg); color: var(--green); }
.pill.ok { background: var(--panel); color: var(--muted); }
.pill.new, .pill.missing, .pill.insufficient-data { background: var(--panel); color: var(--faint); }
p.verdict-line { font-weight: 650; padding: 8px 12px; border-radius: 3px; margin: 0 0 8px; }
p.verdict-line.pass { background: var(--green-bg); color: var(--green); }
p.verdict-line.fail { background: var(--red-bg); color: var(--red); border-left: 3px solid var(--red); }
ul.notes { color: var(--muted); font-size: 13px; }
figure.chart { margin: 18px 0 30px; }
figure.chart h3 { margin: 0 0 4px; }
figure.chart .plot svg { display: block; width: 100%; height: auto; }
figure.chart .plot svg text { font-family: var(--sans) !important; }
figure.chart figcaption { font-size: 12.5px; color: var(--muted); max-width: 60em; margin-top: 2px; }
footer { margin-top: 48px; padding-top: 12px; border-top: 1px solid var(--line); font-size: 12px;
         color: var(--faint); }
p.empty { color: var(--muted); }
@media screen and (max-width: 760px) {
  main { padding: 18px; }
  header.top { flex-direction: column; }
  .verdict-box { text-align: left; }
  dl.meta, dl.meta.compact { grid-template-columns: repeat(2, minmax(0, 1fr)); }
}
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2 { break-after: avoid; }
  figure.chart, table, tr, .tiles, header.top { break-inside: avoid; }
  .verdict, .pill, tr.v-regression td, tr.regression td, p.verdict-line, ul.warnings, .tile {
    -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }
}
"""

# No script, no font, no image or connection from anywhere: the page is complete offline.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(run: RunData, cmp: ComparisonData | None, *, store_shown: str | None = None,
                generated_at: float | None = None) -> bytes:
    """The whole report page, UTF-8."""
    charts = plots.run_charts(run)
    cmp_charts = plots.comparison_charts(cmp) if cmp is not None else []
    sections, chart_toc = _chart_sections(charts)
    toc = [("run", "Run"), ("endpoints", "Endpoints")]
    if run.summary.get("thresholds"):
        toc.append(("thresholds", "Thresholds"))
    if cmp is not None:
        toc.append(("comparison", "Regression check"))
    toc += chart_toc
    nav = "".join(f'<a href="#{sid}">{escape(t)}</a>' for sid, t in toc)
    r = run.run
    title = f"{r.get('app_version') or 'unversioned'} · {r.get('scenario') or 'ad hoc'} · run {run.id}"
    word = verdict(run, cmp)[0]
    now = generated_at if generated_at is not None else dt.datetime.now(dt.timezone.utc).timestamp()
    source = f" from {escape(store_shown)}" if store_shown else ""
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="loadgen {escape(__version__)}">
<title>{escape(word)} · {escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
{header_html(run, cmp)}
<nav class="toc">{nav}</nav>
{figures_html(run)}
{meta_html(run)}
{endpoint_table_html(run)}
{failed_iterations_html(run)}
{thresholds_html(run)}
{comparison_html(cmp, cmp_charts)}
{sections}
<footer>Generated by loadgen {escape(__version__)} on {escape(_utc(now))}{source}.
Latencies are measured from each request's intended start (open model) or its send (closed model) to its last
byte; percentiles are read from HDR histograms (3 significant digits).</footer>
</main>
</body>
</html>
"""
    return page.encode("utf-8")
