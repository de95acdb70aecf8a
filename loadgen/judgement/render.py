"""How a regression comparison and in-run criteria read, in a terminal and as plain text.

Public, so the HTML report formats every cell exactly as ``loadgen compare``
prints it: the cell functions (:func:`number`, :func:`change_text`,
:func:`tolerance_text`, …) are shared and only the markup differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .verdict import METRICS

if TYPE_CHECKING:  # the result types import this module for their verdict line
    from .comparison import Comparison, ComparisonRow
    from .evaluation import CriterionResult

__all__ = [
    "sig",
    "plural",
    "unit_heading",
    "number",
    "value",
    "change_text",
    "tolerance_text",
    "baseline_range",
    "verdict_word",
    "is_headline",
    "describe",
    "verdict_line",
    "render_comparison",
    "render_criteria",
]


def sig(v: float) -> str:
    """A figure to about three significant digits (thousands grouped from 100 up)."""
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


#: unit -> (column heading suffix, number formatter, unit suffix in sentences)
_UNITS: dict[str, tuple[str, Callable[[float], str], str]] = {
    "ms": ("ms", sig, " ms"),
    "fraction": ("%", lambda v: f"{100 * v:.2f}", " %"),
    "req/s": ("req/s", lambda v: f"{v:,.1f}", " req/s"),
    "percent": ("%", lambda v: f"{v:.1f}", " %"),
    "bytes": ("MiB", lambda v: f"{v / 2**20:,.1f}", " MiB"),
    "messages": ("msgs", lambda v: f"{v:,.1f}", " msgs"),
}


def unit_heading(unit: str) -> str:
    """The unit as a column heading shows it: ``ms``, ``%``, ``MiB``…"""
    return _UNITS[unit][0]


def number(unit: str, v: float | None) -> str:
    """A table cell: the figure in the heading's unit, ``–`` for none."""
    return "–" if v is None else _UNITS[unit][1](v)


def value(unit: str, v: float | None) -> str:
    """A figure in a sentence, with its unit: ``12.1 ms``."""
    return "–" if v is None else _UNITS[unit][1](v) + _UNITS[unit][2]


def _pct(x: float) -> str:
    p = 100 * x
    return f"{p:+.0f} %" if abs(p) >= 10 else f"{p:+.1f} %"


def change_text(row: ComparisonRow) -> str:
    """``+156 %``, ``+1.50 pp``, ``from 0`` or ``–``."""
    if row.change is None:
        return "–"
    if math.isinf(row.change):
        return "from 0"
    if row.change_kind == "absolute":
        return f"{100 * row.change:+.2f} pp"
    return _pct(row.change)


def tolerance_text(row: ComparisonRow) -> str:
    """The tolerance as the ``threshold`` column shows it: ``+20 %``, ``-20 %``, ``+1.00 pp``."""
    if row.change_kind == "absolute":
        return f"+{100 * row.threshold:.2f} pp"
    sign = "+" if row.metric != "throughput" else "-"
    return f"{sign}{round(100 * row.threshold, 6):g} %"


def baseline_range(row: ComparisonRow) -> tuple[str, str] | None:
    """(lowest, highest) baseline cells when the baseline runs differ, else None."""
    if len(row.baseline_values) > 1 and row.baseline_min != row.baseline_max:
        return number(row.unit, row.baseline_min), number(row.unit, row.baseline_max)
    return None


def verdict_word(row: ComparisonRow) -> str:
    """The verdict as the table shows it: a regression shouts."""
    return row.verdict.upper() if row.verdict == "regression" else row.verdict


def is_headline(row: ComparisonRow) -> bool:
    """The run's total latency, error rate or throughput: shown in bold."""
    return row.subject == "total" and row.metric in METRICS[:3]


def describe(row: ComparisonRow) -> str:
    """``p95 of GET /x 12.1 ms → 31.0 ms (+156 %, threshold +20 %)`` (plain text)."""
    return (
        f"{row.label} of {row.subject} {value(row.unit, row.baseline)} → {value(row.unit, row.candidate)}"
        f" ({change_text(row)}, threshold {tolerance_text(row)})"
    )


def verdict_line(comparison: Comparison) -> str:
    """The one-line verdict, plain text: ``REGRESSION: …`` naming each regression, or ``PASS: …``."""
    c = comparison
    caveat = "" if c.noise_estimate else " (no noise estimate: 1 baseline run)"
    if c.regressions:
        return f"REGRESSION{caveat}: " + "; ".join(describe(r) for r in c.regressions)
    n = len(c.baseline_run_ids)
    version = f" of {c.baseline_version}" if c.baseline_version else ""
    line = f"PASS{caveat}: no regression against {plural(n, 'baseline run')}{version}"
    if c.improvements:
        line += f"; {plural(len(c.improvements), 'improvement')}: " + "; ".join(describe(r) for r in c.improvements)
    return line


_VERDICT_STYLE = {
    "regression": "bold red",
    "improvement": "bold green",
    "ok": "",
    "new": "cyan",
    "missing": "yellow",
    "insufficient data": "dim",
}


def _table_row(row: ComparisonRow) -> tuple[list[str], str | None]:
    """The cells of one row, in rich markup, and the row's style."""
    base = number(row.unit, row.baseline)
    spread = baseline_range(row)
    if spread is not None:
        base += f" [dim]({spread[0]}–{spread[1]})[/dim]"
    style = _VERDICT_STYLE[row.verdict]
    verdict = f"[{style}]{verdict_word(row)}[/{style}]" if style else verdict_word(row)
    if row.note:
        verdict += f" [dim]({escape(row.note)})[/dim]"
    subject = "[bold]total[/bold]" if is_headline(row) else escape(row.subject)
    cells = [
        f"{escape(row.label)} ({unit_heading(row.unit)})",
        subject,
        base,
        number(row.unit, row.candidate),
        change_text(row),
        tolerance_text(row),
        verdict,
    ]
    return cells, "red" if row.verdict == "regression" else "green" if row.verdict == "improvement" else None


def render_comparison(comparison: Comparison, console: Console) -> None:
    """Print the comparison table, the notes and the one-line verdict."""
    c = comparison
    cand_v = c.candidate_version or "unversioned"
    base_v = c.baseline_version or "baseline"
    title = (
        f"Regression check: {escape(cand_v)} (run {escape(c.candidate_run_id)}) against "
        f"{escape(base_v)} (median of {plural(len(c.baseline_run_ids), 'run')})"
    )
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    t.add_column("endpoint")
    for col in ("baseline", "candidate", "change", "threshold"):
        t.add_column(col, justify="right")
    t.add_column("verdict")
    for row in c.rows:
        cells, style = _table_row(row)
        t.add_row(*cells, style=style)
    console.print(t)
    for note in c.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    line = escape(verdict_line(c))
    # One line even on a narrow terminal, so CI logs can be grepped for it.
    style = "bold red" if c.regressions else "bold green"
    console.print(f"[{style}]{line}[/{style}]", soft_wrap=True)


def render_criteria(results: Iterable[CriterionResult], console: Console) -> None:
    """One line per criterion: a mark, the expression as written, and what was measured."""
    for r in results:
        if r.pending:
            mark = "[yellow]…[/yellow]"
        elif r.passed:
            mark = "[green]✓[/green]"
        else:
            mark = "[bold red]✗[/bold red]"
        console.print(f"{mark} {escape(r.criterion.expr)}  [dim]{escape(r.detail)}[/dim]", highlight=False)
