"""The report's charts, drawn with matplotlib: one implementation for the HTML page
(inline SVG, see :func:`to_svg`) and the notebook (inline PNG).

Every function takes the report's data (:mod:`loadgen.reports.data`) and returns a
:class:`matplotlib.figure.Figure`, or None when the run has nothing to draw (no
collectors, no intervals). Figures are built without pyplot, so no global backend
or figure registry is touched and a report can be built from any thread.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from loadgen.engine import histogram as hdr
from loadgen.store.records import TOTAL

from .data import ComparisonData, RunData, SampleSeries

__all__ = [
    "Chart",
    "run_charts",
    "comparison_charts",
    "to_svg",
    "latency_over_time",
    "endpoint_latency_over_time",
    "throughput_over_time",
    "latency_spectrum",
    "status_codes",
    "generator_health",
    "resource_usage",
    "queue_metrics",
    "comparison_spectrum",
    "comparison_endpoints",
    "spectrum_points",
]

# --- style -------------------------------------------------------------------------

INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
BLUE = "#2f6db5"
P50 = "#93bde6"
P95 = "#2f6db5"
P99 = "#12355e"
RED = "#c62828"
AMBER = "#d9822b"
GREY = "#9aa5b1"
#: Failed requests by kind, as the status code chart colours them (4xx amber, 5xx red).
ERROR_KIND_COLORS = {
    "http_5xx": RED, "http_4xx": AMBER, "timeout": "#7f1d1d", "connect": "#e57373", "reset": "#a1887f",
    "protocol": "#6d4c41", "check": "#b08900",
}
#: Series colours for endpoints, services and queues; red stays reserved for errors and regressions.
PALETTE = ("#2f6db5", "#d9822b", "#3a9e6f", "#8e5ea2", "#5b8c99", "#c2548a", "#a67c52", "#52606d")

STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "text.color": INK,
    "text.parse_math": False,  # a "$" in an endpoint name is just a dollar sign
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "axes.labelsize": 9,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "grid.color": GRID,
    "grid.linewidth": 0.7,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.5,
    "axes.ymargin": 0.1,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 100,
    "svg.fonttype": "none",  # text stays text: small, selectable, drawn in the page's fonts
}

WIDTH = 10.0  # inches; the page scales the SVG to its column


@contextlib.contextmanager
def style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def _figure(height: float, rows: int = 1, sharex: bool = True, ratios: Sequence[float] | None = None
            ) -> tuple[Figure, list]:
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": list(ratios)} if ratios else None)[:, 0]
    return fig, list(axes)


def _legend_label(text: str) -> str:
    # matplotlib hides legend labels starting with "_"; a zero-width space keeps them.
    return "\u200b" + text if text.startswith("_") else text


def _time_axis(ax, duration_s: float) -> Callable[[np.ndarray], np.ndarray]:
    """Label the x axis in seconds, or minutes for long runs; the scale to apply to times."""
    if duration_s > 600:
        ax.set_xlabel("time since start (min)")
        return lambda t: np.asarray(t) / 60.0
    ax.set_xlabel("time since start (s)")
    return lambda t: np.asarray(t)


def _endpoint_colors(run: RunData) -> dict[str, str]:
    """One colour per endpoint, the same in every chart (busiest first)."""
    keys = [r["endpoint"] for r in run.endpoint_rows] + [k for k in run.latency if k != TOTAL]
    out: dict[str, str] = {}
    for k in keys:
        if k not in out:
            out[k] = PALETTE[len(out) % len(PALETTE)]
    return out


def _mid(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Interval values are drawn at the middle of their interval."""
    return (np.asarray(start) + np.asarray(end)) / 2


def _marker(n: int) -> dict:
    return {"marker": "o", "ms": 3} if n <= 60 else {}


def _from_zero(ax, headroom: float = 0.12) -> None:
    """The y axis from 0 to a little above the highest value drawn (room for the top line)."""
    top = ax.dataLim.y1
    if not np.isfinite(top) or top <= 0:
        top = 1.0
    ax.set_ylim(0, top * (1 + headroom))


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=MUTED)


def _ms_formatter() -> FuncFormatter:
    return FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 10 or v == 0 else f"{v:g}")


# --- the run -------------------------------------------------------------------------


def latency_over_time(run: RunData) -> Figure | None:
    """p50, p95 and p99 of every interval (all endpoints), with the interval's slowest request."""
    s = run.latency.get(TOTAL)
    if s is None or not s.end.size:
        return None
    with style():
        fig, (ax,) = _figure(3.3)
        x = _time_axis(ax, run.duration_s)
        t = x(_mid(s.start, s.end))
        m = _marker(t.size)
        ax.plot(t, s.max, ls="none", marker="o", ms=2.2, color=GREY, alpha=0.7, label="max")
        ax.plot(t, s.p99, color=P99, label="p99", **m)
        ax.plot(t, s.p95, color=P95, label="p95", **m)
        ax.plot(t, s.p50, color=P50, label="p50", **m)
        ax.set_xlim(0, x(max(run.duration_s, float(s.end.max()))))
        ax.set_ylabel("latency (ms)")
        _from_zero(ax)
        ax.yaxis.set_major_formatter(_ms_formatter())
        ax.legend(loc="upper left", ncols=4, bbox_to_anchor=(0, 1.13))
    return fig


def endpoint_latency_over_time(run: RunData, percentile: str = "p95") -> Figure | None:
    """One endpoint per line: its ``percentile`` per interval (the busiest endpoints)."""
    eps = [k for k in run.latency if k != TOTAL]
    if len(eps) < 2:
        return None
    with style():
        fig, (ax,) = _figure(3.3)
        x = _time_axis(ax, run.duration_s)
        end = 0.0
        colors = _endpoint_colors(run)
        for k in eps:
            s = run.latency[k]
            ax.plot(x(_mid(s.start, s.end)), getattr(s, percentile), color=colors[k],
                    label=_legend_label(k), lw=1.3, **_marker(s.end.size))
            end = max(end, float(s.end.max()))
        ax.set_xlim(0, x(max(run.duration_s, end)))
        ax.set_ylabel(f"{percentile} latency (ms)")
        _from_zero(ax)
        ax.yaxis.set_major_formatter(_ms_formatter())
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


def throughput_over_time(run: RunData) -> Figure | None:
    """Requests per second per interval (and the target arrival rate), errors per second by kind."""
    s = run.latency.get(TOTAL)
    if s is None or not s.end.size:
        return None
    with style():
        fig, (ax, ax_err) = _figure(4.0, rows=2, ratios=(2.4, 1))
        x = _time_axis(ax_err, run.duration_s)
        t = x(_mid(s.start, s.end))
        ax.plot(t, s.rps, color=BLUE, label="requests/s", **_marker(t.size))
        g = run.generator
        if g is not None and np.isfinite(g.target_rate).any():
            ax.plot(x(_mid(g.start, g.end)), g.target_rate, color=INK, lw=1, ls=(0, (4, 3)),
                    label="target iterations/s")
        ax.set_ylabel("throughput (req/s)")
        _from_zero(ax)
        ax.legend(loc="upper left", ncols=2, bbox_to_anchor=(0, 1.16))
        widths = x(s.width) * 0.9
        bottom = np.zeros_like(t)
        kinds = sorted(s.errors_by_kind, key=lambda k: -s.errors_by_kind[k].sum())
        for kind in kinds:
            per_s = s.errors_by_kind[kind] / s.width
            ax_err.bar(t, per_s, width=widths, bottom=bottom, color=ERROR_KIND_COLORS.get(kind, GREY),
                       label=kind, linewidth=0)
            bottom = bottom + per_s
        ax_err.set_ylabel("errors/s")
        ax_err.yaxis.set_major_locator(MaxNLocator(3))
        if kinds:
            ax_err.set_ylim(0, float(bottom.max()) * 1.25)
            ax_err.legend(loc="upper left", ncols=min(len(kinds), 6), fontsize=8)
        else:
            ax_err.set_ylim(0, 1)
            _no_data(ax_err, "no errors")
        ax.set_xlim(0, x(max(run.duration_s, float(s.end.max()))))
    return fig


def spectrum_points(hist: HdrHistogram, points: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """The percentile spectrum of a histogram: (1/(1-p), latency ms) from p = 0 to 1 - 1/n,
    read exactly from the histogram (clamped into its recorded min and max)."""
    n = int(hist.total_count)
    if n == 0:
        return np.array([]), np.array([])
    top = math.log10(max(n, 2))
    x = np.unique(np.concatenate([np.logspace(0, top, points), [1, 2, 10, 100, 1000, 10_000, 100_000]]))
    x = x[x <= 10**top]
    p = 100.0 * (1.0 - 1.0 / x)
    # One cumulative sum per point (~10 ms for 250 points): small beside drawing the chart.
    values = np.array([hdr.percentile_ms(hist, q) for q in p.tolist()], dtype=float)
    return x, values


def _spectrum_axis(ax, n_max: int) -> None:
    ax.set_xscale("log")
    nines = max(2, math.ceil(math.log10(max(n_max, 10))))
    ticks = [10.0**k for k in range(0, nines + 1)]
    labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%", "99.99999%", "99.999999%"]
    ax.xaxis.set_major_locator(FixedLocator(ticks + [2.0]))
    names = {1.0: "0%", 2.0: "50%"}
    for k, tck in enumerate(ticks[1:], start=1):
        names[tck] = labels[k] if k < len(labels) else f"{100 - 10.0 ** (2 - k):.{k}f}%"
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: names.get(float(v), "")))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(1, 10**nines)
    ax.set_xlabel("percentile (log scale of 1/(1 − p))")
    ax.set_ylabel("latency (ms)")
    _from_zero(ax)
    ax.yaxis.set_major_formatter(_ms_formatter())


def latency_spectrum(run: RunData, endpoints: bool = True) -> Figure | None:
    """The HDR percentile spectrum of the whole run, and of its busiest endpoints."""
    h = run.histograms.get(TOTAL)
    if h is None or not h.total_count:
        return None
    with style():
        fig, (ax,) = _figure(3.6)
        keys = [r["endpoint"] for r in run.endpoint_rows][: len(PALETTE) - 1] if endpoints else []
        if len(keys) < 2:
            keys = []
        colors = _endpoint_colors(run)
        for k in keys:
            x, y = spectrum_points(run.histograms[k])
            ax.plot(x, y, color=colors[k], lw=1.1, alpha=0.85, drawstyle="steps-post",
                    label=_legend_label(k))
        x, y = spectrum_points(h)
        ax.plot(x, y, color=INK, lw=2, drawstyle="steps-post", label="all requests")
        ax.plot([x[-1]], [h.max_value / 1000], "o", color=INK, ms=4)
        ax.annotate(f"max {h.max_value / 1000:,.1f} ms", (x[-1], h.max_value / 1000), textcoords="offset points",
                    xytext=(-6, 4), ha="right", fontsize=8, color=INK)
        _spectrum_axis(ax, int(h.total_count))
        ax.legend(loc="lower right", fontsize=8)
    return fig


def status_codes(run: RunData) -> Figure | None:
    """Responses by status code, and failed requests by kind when no response came."""
    total = run.total
    if total is None or not total["requests"]:
        return None
    codes = {str(k): int(v) for k, v in (total.get("status_codes") or {}).items()}
    transport = {k: int(v) for k, v in (total.get("errors_by_kind") or {}).items()
                 if k in ("connect", "timeout", "reset", "protocol") and v}
    bars = [(c, n) for c, n in sorted(codes.items())] + [(k, n) for k, n in sorted(transport.items())]
    if not bars:
        return None
    n_all = sum(n for _, n in bars)
    with style():
        fig, (ax,) = _figure(0.9 + 0.32 * len(bars))
        labels, counts = zip(*bars)
        colors = []
        for label in labels:
            if label.isdigit() and int(label) < 400:
                colors.append(BLUE)
            elif label.isdigit() and int(label) < 500:
                colors.append(AMBER)
            else:
                colors.append(RED)
        y = np.arange(len(bars))
        ax.barh(y, counts, color=colors, height=0.62)
        ax.set_yticks(y, [f"HTTP {lab}" if lab.isdigit() else lab for lab in labels])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        for yi, c in zip(y, counts):
            ax.annotate(f"{c:,} ({100 * c / n_all:.1f} %)", (c, yi), textcoords="offset points", xytext=(4, 0),
                        va="center", fontsize=8, color=INK)
        ax.set_xlim(0, max(counts) * 1.22)
        ax.set_xlabel("requests")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    return fig


def generator_health(run: RunData) -> Figure | None:
    """The generator's own health: dispatch lag p99, its CPU, dropped iterations; saturated
    intervals shaded red (their latencies are suspect)."""
    g = run.generator
    if g is None or not g.end.size:
        return None
    has_lag = bool(np.isfinite(g.lag_p99_ms).any())
    rows = 3 if has_lag else 2
    with style():
        fig, axes = _figure(1.45 * rows + 0.5, rows=rows, ratios=[1.0] * (rows - 1) + [0.6])
        x = _time_axis(axes[-1], run.duration_s)
        t0, t1 = x(g.start), x(g.end)
        mid = x(_mid(g.start, g.end))
        m = _marker(mid.size)
        i = 0
        if has_lag:
            ax = axes[i]
            i += 1
            ax.plot(mid, g.lag_p99_ms, color=BLUE, **m)
            ax.axhline(10, color=RED, lw=0.9, ls=(0, (4, 3)))
            ax.annotate("saturated above 10 ms", (1, 10), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                        textcoords="offset points", fontsize=7.5, color=RED, ha="right")
            ax.set_ylabel("dispatch lag\np99 (ms)")
            ax.set_ylim(0, max(12.0, float(np.nanmax(g.lag_p99_ms)) * 1.1))
        ax = axes[i]
        i += 1
        ax.plot(mid, g.cpu_percent, color=BLUE, **m)
        ax.axhline(95, color=RED, lw=0.9, ls=(0, (4, 3)))
        ax.set_ylabel("generator\nCPU (% of a core)")
        ax.set_ylim(0, max(105.0, float(np.nanmax(g.cpu_percent)) * 1.05))
        ax = axes[i]
        ax.bar(mid, g.dropped, width=(t1 - t0) * 0.9,
               color=RED if g.dropped.sum() else GREY, linewidth=0)
        ax.set_ylabel("dropped\niterations")
        ax.set_ylim(0, max(1.0, float(g.dropped.max()) * 1.15))
        ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
        if not g.dropped.sum():
            _no_data(ax, "no dropped iterations")
        for a in axes:
            for s, e, sat in zip(t0, t1, g.saturated):
                if sat:
                    a.axvspan(s, e, color=RED, alpha=0.12, lw=0)
            a.set_xlim(0, x(max(run.duration_s, float(g.end.max()))))
        for a in axes[:-1]:
            a.tick_params(labelbottom=False)
    return fig


def _sample_lines(ax, series: dict[str, SampleSeries], key: str, x: Callable, scale: float = 1.0,
                  ls: Any = "-", suffix: str = "") -> bool:
    drawn = False
    for i, (name, s) in enumerate(series.items()):
        if s.has(key):
            ax.plot(x(s.t), s.values[key] * scale, color=PALETTE[i % len(PALETTE)], ls=ls,
                    label=_legend_label(name + suffix), marker="o" if s.t.size < 30 else None, ms=2.5)
            drawn = True
    return drawn


def resource_usage(run: RunData) -> Figure | None:
    """CPU and memory of every monitored service (and of the generator), as sampled."""
    if not run.resources:
        return None
    with style():
        fig, (ax_cpu, ax_mem) = _figure(4.4, rows=2)
        x = _time_axis(ax_mem, run.duration_s)
        _sample_lines(ax_cpu, run.resources, "cpu_percent", x)
        ax_cpu.set_ylabel("CPU (% of a core)")
        _from_zero(ax_cpu)
        _sample_lines(ax_mem, run.resources, "rss_bytes", x, scale=1 / 2**20)
        ax_mem.set_ylabel("memory RSS (MiB)")
        _from_zero(ax_mem)
        ax_mem.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax_cpu.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        ax_cpu.tick_params(labelbottom=False)
        for a in (ax_cpu, ax_mem):
            a.set_xlim(0, x(max(run.duration_s, float(max(s.t.max() for s in run.resources.values())))))
    return fig


#: (fields drawn together, y label, scale); a second field is drawn dashed.
_QUEUE_PANELS = (
    (("length",), "queue length\n(messages)", 1.0),
    (("backlog_age_s",), "backlog age (s)", 1.0),
    (("published_per_s", "consumed_per_s"), "messages/s\n(published, consumed)", 1.0),
    (("processing_time_s",), "processing\ntime (ms)", 1000.0),
    (("error_rate",), "error rate (%)", 100.0),
)


def queue_metrics(run: RunData) -> Figure | None:
    """Each queue's length and whatever else its source reports (backlog age, rates, timings)."""
    if not run.queues:
        return None
    panels = [p for p in _QUEUE_PANELS if any(s.has(k) for k in p[0] for s in run.queues.values())]
    if not panels:
        return None
    with style():
        fig, axes = _figure(0.6 + 1.3 * len(panels), rows=len(panels))
        x = _time_axis(axes[-1], run.duration_s)
        for ax, (keys, label, scale) in zip(axes, panels):
            for j, key in enumerate(keys):
                _sample_lines(ax, run.queues, key, x, scale, ls="-" if j == 0 else (0, (4, 2)),
                              suffix="" if len(keys) == 1 else f" {key.split('_')[0]}")
            ax.set_ylabel(label)
            lo, hi = ax.get_ylim()
            ax.set_ylim(0, max(hi, 1.0))
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.set_xlim(0, x(max(run.duration_s, float(max(s.t.max() for s in run.queues.values())))))
        for a in axes[:-1]:
            a.tick_params(labelbottom=False)
        for a in axes:
            # The queues' names once (first panel), and published/consumed where they are drawn together.
            if a is axes[0] or len(a.get_lines()) > len(run.queues):
                a.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


# --- the comparison ------------------------------------------------------------------


def comparison_spectrum(cmp: ComparisonData) -> Figure | None:
    """The candidate's percentile spectrum (all requests) over each baseline run's."""
    cand = cmp.candidate.endpoints.get(TOTAL)
    if cand is None or not cand.latency.total_count:
        return None
    with style():
        fig, (ax,) = _figure(3.6)
        n_max = int(cand.latency.total_count)
        shades = ("#7b8794", "#9aa5b1", "#bcc5cf", "#cbd2d9")
        for i, b in enumerate(cmp.baseline):
            ep = b.endpoints.get(TOTAL)
            if ep is None or not ep.latency.total_count:
                continue
            x, y = spectrum_points(ep.latency)
            n_max = max(n_max, int(ep.latency.total_count))
            ax.plot(x, y, color=shades[min(i, len(shades) - 1)], lw=1.3, drawstyle="steps-post",
                    label=_legend_label(f"baseline {b.app_version or ''} · {b.run_id}"))
        x, y = spectrum_points(cand.latency)
        color = RED if any(r.subject == TOTAL and r.metric == "response_time" for r in cmp.regressions) else BLUE
        ax.plot(x, y, color=color, lw=2.2, drawstyle="steps-post",
                label=_legend_label(f"candidate {cmp.candidate.app_version or ''} · {cmp.candidate.run_id}"))
        p = cmp.comparison.tolerances.percentile_value
        ax.axvline(1 / (1 - p / 100), color=MUTED, lw=0.8, ls=(0, (2, 2)))
        ax.annotate(f"{cmp.comparison.tolerances.percentile} (compared)", (1 / (1 - p / 100), 0),
                    xycoords=("data", "axes fraction"), xytext=(3, 4), textcoords="offset points", fontsize=8,
                    color=MUTED)
        _spectrum_axis(ax, n_max)
        ax.legend(loc="lower right", fontsize=8)
    return fig


def comparison_endpoints(cmp: ComparisonData) -> Figure | None:
    """Per endpoint: the baseline median of the compared percentile (bar; whisker: the baseline
    runs' range; tick: the threshold) and the candidate's (red where it is a regression)."""
    rows = [r for r in cmp.comparison.rows if r.metric == "response_time" and
            (r.baseline is not None or r.candidate is not None)]
    if not rows:
        return None
    with style():
        fig, (ax,) = _figure(1.0 + 0.55 * len(rows))
        y = np.arange(len(rows))
        h = 0.36
        base = np.array([math.nan if r.baseline is None else r.baseline for r in rows])
        lo = np.array([math.nan if r.baseline_min is None else r.baseline_min for r in rows])
        hi = np.array([math.nan if r.baseline_max is None else r.baseline_max for r in rows])
        cand = np.array([math.nan if r.candidate is None else r.candidate for r in rows])
        ax.barh(y - h / 2, np.nan_to_num(base), height=h, color="#cbd2d9", label="baseline (median)")
        ax.errorbar(base, y - h / 2, xerr=[np.nan_to_num(base - lo), np.nan_to_num(hi - base)], fmt="none",
                    ecolor="#52606d", elinewidth=1, capsize=3, label="baseline runs' range")
        colors = [RED if r.verdict == "regression" else BLUE for r in rows]
        ax.barh(y + h / 2, np.nan_to_num(cand), height=h, color=colors, label="candidate")
        limit = base * (1 + np.array([r.threshold for r in rows]))
        ax.plot(limit, y - h / 2, ls="none", marker="|", ms=13, mew=1.6, color=RED, alpha=0.6,
                label=f"threshold (+{rows[0].threshold * 100:g} %)")
        for yi, c, r in zip(y, cand, rows):
            if math.isfinite(c):
                txt = f"{c:,.1f} ms" + (" · REGRESSION" if r.verdict == "regression" else "")
                ax.annotate(txt, (c, yi + h / 2), textcoords="offset points", xytext=(4, 0), va="center",
                            fontsize=8, color=RED if r.verdict == "regression" else INK,
                            fontweight="bold" if r.verdict == "regression" else "normal")
        ax.set_yticks(y, [r.subject for r in rows])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        xmax = np.nanmax(np.concatenate([cand, hi, limit, base]))
        ax.set_xlim(0, (xmax if math.isfinite(xmax) else 1) * 1.3)
        ax.set_xlabel(f"{cmp.comparison.tolerances.percentile} latency (ms)")
        ax.xaxis.set_major_formatter(_ms_formatter())
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


# --- the registry both outputs use ----------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """One chart of a report: what the HTML page captions and what the notebook calls."""

    id: str  #: stable, used as the HTML element's ``data-chart``
    title: str
    caption: str
    call: str  #: the notebook's code for it, e.g. ``plots.latency_over_time(run)``
    figure: Figure


def run_charts(run: RunData) -> list[Chart]:
    """The run's charts that have data, in the report's order."""
    w = f" Each point is {run.window_s:g} s." if run.window_s > 1 else ""
    specs = [
        ("latency-over-time", "Latency over time", "latency_over_time(run)",
         "p50, p95 and p99 of all requests per interval, from the merged interval histograms; grey dots are"
         " each interval's slowest request." + w, latency_over_time),
        ("endpoint-latency-over-time", "p95 per endpoint over time", "endpoint_latency_over_time(run)",
         "Each of the busiest endpoints' p95 per interval." + w, endpoint_latency_over_time),
        ("throughput-over-time", "Throughput and errors", "throughput_over_time(run)",
         "Completed requests per second (and, in the open model, the target arrival rate); failed requests"
         " per second by kind." + w, throughput_over_time),
        ("latency-spectrum", "Latency distribution (HDR percentile spectrum)", "latency_spectrum(run)",
         "Latency at every percentile of the whole run, read exactly from its HDR histogram; the x axis"
         " stretches the tail (1/(1 − p)), so each step right is one more nine.", latency_spectrum),
        ("status-codes", "Status codes", "status_codes(run)",
         "Responses by HTTP status, and requests that got no response by kind.", status_codes),
        ("generator-health", "Generator health", "generator_health(run)",
         "How late the generator dispatched arrivals (p99), its CPU and dropped iterations per interval."
         " Shaded intervals are saturated: the generator, not the target, may have set their latency.",
         generator_health),
        ("resource-usage", "Resource usage per service", "resource_usage(run)",
         "CPU and resident memory of each monitored service, as the collectors sampled them.", resource_usage),
        ("queue-metrics", "Queues", "queue_metrics(run)",
         "What each monitored queue's source reported: length, backlog age, rates and timings.", queue_metrics),
    ]
    out = []
    for cid, title, call, caption, fn in specs:
        fig = fn(run)
        if fig is not None:
            out.append(Chart(cid, title, caption, f"plots.{call}", fig))
    return out


def comparison_charts(cmp: ComparisonData) -> list[Chart]:
    p = cmp.comparison.tolerances.percentile
    out = []
    fig = comparison_endpoints(cmp)
    if fig is not None:
        out.append(Chart("comparison-endpoints", f"{p} per endpoint: baseline vs candidate",
                         f"The baseline runs' median {p} (whisker: their range; red tick: the threshold) and the"
                         f" candidate's; red bars are regressions.", "plots.comparison_endpoints(comparison)", fig))
    fig = comparison_spectrum(cmp)
    if fig is not None:
        out.append(Chart("comparison-spectrum", "Latency spectrum: candidate vs baseline runs",
                         "All requests of the candidate and of each baseline run, at every percentile.",
                         "plots.comparison_spectrum(comparison)", fig))
    return out


# --- SVG for the HTML page --------------------------------------------------------------

_HEAD = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(href="#|url\(#)([^")]+)')


def to_svg(fig: Figure, chart_id: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, no metadata, every id
    prefixed with ``chart_id`` so several charts can share one page."""
    buf = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": chart_id}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _HEAD.sub("", buf.getvalue(), count=1), count=1)
    svg = _ID.sub(lambda m: f'id="{chart_id}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{chart_id}" ', 1)
