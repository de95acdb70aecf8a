"""The run's findings as GitHub-flavoured markdown: ``--markdown``, GitHub's step summary
and the pull request comment of the workflow.

What users control (endpoint names, threshold expressions, warnings, versions) is shown
in code spans, so no name can start a table cell, a heading, a link, an HTML tag, an
@mention or an issue reference. The document stays under :data:`MAX_CHARS`: a PR comment
holds at most 65,536 characters (a step summary 1 MiB), so long tables show their first
rows and say how many more there are.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..findings import EndpointFigures, Findings, MetricChange, ThresholdResult
from ..judgement.render import sig
from . import figures
from .files import is_regular, open_output
from .text import one_line

__all__ = ["MAX_CHARS", "render_markdown", "write_markdown"]

#: The largest document written (a PR comment holds 65,536; the rest is room for the
#: workflow's marker and link).
MAX_CHARS = 60_000

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Limits:
    rows: int = 50  # rows of the endpoint table and of each comparison table
    items: int = 20  # thresholds beyond the failed ones, warnings
    chars: int = 160  # one name, expression or warning

    def halved(self) -> _Limits:
        return _Limits(rows=max(self.rows // 2, 1), items=max(self.items // 2, 1), chars=max(self.chars // 2, 40))


def write_markdown(findings: Findings, path: str, *, append: bool = False) -> None:
    """Write the markdown to ``path``; ``append``: after what the file holds (GitHub's step
    summary, which other steps write to), separated from it by a blank line."""
    doc = render_markdown(findings)
    if append:
        doc = _separator(path) + doc
    with open_output(path, append=append) as f:
        f.write(doc.encode("utf-8"))


def _separator(path: str) -> str:
    """What makes the appended document start after a blank line: what a regular file ends with
    decides (a pipe or a device is not read: its end may never come)."""
    if not is_regular(path):
        return ""
    try:
        with open(Path(path).expanduser(), "rb") as f:
            f.seek(max(f.seek(0, 2) - 2, 0))
            tail = f.read(2)
    except OSError:
        return "\n\n"  # cannot be read (write-only): a blank line too many is harmless in markdown
    if not tail:
        return ""
    return "" if tail.endswith(b"\n\n") else "\n" if tail.endswith(b"\n") else "\n\n"


def render_markdown(findings: Findings) -> str:
    """The document: the verdict, the run's facts, thresholds, the comparison with the
    baseline, the endpoints, warnings and the report's location."""
    limits = _Limits()
    doc = _render(findings, limits)
    while len(doc) > MAX_CHARS and limits != limits.halved():
        limits = limits.halved()
        doc = _render(findings, limits)
    if len(doc) > MAX_CHARS:  # only a pathological document: cut it at a line
        note = "\n\n_… cut to stay within the size of a comment._\n"
        doc = doc[: doc.rfind("\n", 0, MAX_CHARS - len(note))] + note
    return doc


def _render(f: Findings, lim: _Limits) -> str:
    parts = [
        _headline(f, lim),
        _facts(f, lim),
        _totals(f),
        _thresholds(f, lim),
        _comparison(f, lim),
        _endpoints(f, lim),
        _warnings(f, lim),
        f"HTML report: {_code(f.report, lim.chars * 2)}" if f.report else "",
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


# --- escaping ---------------------------------------------------------------------------


def _code(text: str, limit: int, *, cell: bool = False) -> str:
    """``text`` as a code span: shown literally, whatever it holds."""
    s = one_line(text, limit)
    if not s:
        return "–"
    fence = "`" * (max((len(run) for run in re.findall("`+", s)), default=0) + 1)
    if s[0] == "`" or s[-1] == "`":
        s = f" {s} "  # a space each side, which the span drops again
    if cell:
        s = s.replace("|", "\\|")  # GFM splits a row at every unescaped pipe, code spans too
    return f"{fence}{s}{fence}"


_SPECIAL = re.compile(r"([\\`*_\[\]|~#!])")


def _plain(text: str, limit: int) -> str:
    """loadgen's own words that may quote a figure (a comparison's note), as inline text."""
    return _SPECIAL.sub(r"\\\1", html.escape(one_line(text, limit), quote=False))


def _table(head: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> str:
    """A GFM table; ``align`` has one letter per column: l(eft) or r(ight)."""
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plural(n: int, word: str) -> str:
    """``1 threshold``, ``2,000 regressions``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _capped(items: Sequence[_T], limit: int) -> tuple[Sequence[_T], int]:
    """The first ``limit`` items and how many are left out."""
    return items[:limit], max(len(items) - limit, 0)


# --- sections ---------------------------------------------------------------------------


def _headline(f: Findings, lim: _Limits) -> str:
    failed, regressions = f.failed_thresholds, f.regressions
    against = f" against {_code(f.baseline_version, lim.chars)}" if f.baseline_version else ""
    if f.verdict == "error":
        why = _code(f.error, lim.chars * 3) if f.error else f"none given (exit code {f.exit_code})"
        return f"## ⚠️ Performance: the run could not be carried out\n\nReason: {why}"
    if f.verdict == "pass":
        return f"## ✅ Performance: passed\n\n{_pass_line(f, against)}"
    reasons = []
    if failed:
        reasons.append(f"{len(failed):,} of {plural(len(f.thresholds), 'threshold')} failed")
    if regressions:
        reasons.append(f"{plural(len(regressions), 'regression')}{against}")
    if not reasons:
        reasons.append(f"the run failed (exit code {f.exit_code})")
    title = "regression" if f.verdict == "regression" else "failed"
    text = "; ".join(reasons)
    if f.verdict == "regression" and f.exit_code == 0:
        text += " (reported, not gated: the run's exit code is 0)"
    return f"## ❌ Performance: {title}\n\n{text[0].upper()}{text[1:]}."


def _pass_line(f: Findings, against: str) -> str:
    said = []
    if f.thresholds:
        said.append(f"all {plural(len(f.thresholds), 'threshold')} met" if len(f.thresholds) > 1
                    else "the threshold was met")
    if f.compared:
        said.append(f"no regression{against} ({_runs(f)})")
    if not said:
        said.append("no thresholds and no comparison with a baseline to judge the run by")
    text = "; ".join(said)
    return f"{text[0].upper()}{text[1:]}."


def _runs(f: Findings) -> str:
    n = len(f.baseline_run_ids)
    return "1 baseline run, no noise estimate" if n == 1 else f"median of {n} runs"


def _facts(f: Findings, lim: _Limits) -> str:
    facts = []
    if f.run_id:
        facts.append(f"run {_code(f.run_id, lim.chars)}")
    facts.append(f"scenario {_code(f.scenario, lim.chars)}" if f.scenario else "ad hoc")
    if f.host:
        facts.append(f"target {_code(f.host, lim.chars)}")
    facts.append(f"version {_code(f.app_version, lim.chars)}" if f.app_version else "no version")
    if f.baseline_version:
        facts.append(f"baseline {_code(f.baseline_version, lim.chars)} ({_runs(f)})")
    facts.append(f"{_plain(f.test_type, 40)} test")
    if f.duration_s:
        facts.append(f"{sig(f.duration_s)} s")
    if f.status:
        stop = f" ({_code(f.stop_reason, lim.chars)})" if f.stop_reason else ""
        facts.append(f"{_plain(f.status, 40)}{stop}")
    if f.exit_code is not None:
        facts.append(f"exit code {f.exit_code}")
    if f.loadgen_version:
        facts.append(f"loadgen {_plain(f.loadgen_version, 40)}")
    return " · ".join(facts)


def _totals(f: Findings) -> str:
    if f.verdict == "error" and not f.requests:
        return ""
    ms = figures.number
    return _table(
        ["requests", "errors", "error rate", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)"], "rrrrrrr",
        [[f"{f.requests:,}", f"{f.errors:,}", figures.value("fraction", f.error_rate), figures.number("req/s", f.rps),
          ms("ms", f.p50_ms), ms("ms", f.p95_ms), ms("ms", f.p99_ms)]],
    )


def _thresholds(f: Findings, lim: _Limits) -> str:
    if not f.thresholds:
        return ""
    failed = f.failed_thresholds
    title = f"### Thresholds: {len(failed):,} of {len(f.thresholds):,} failed" if failed else \
        f"### Thresholds: {'all ' if len(f.thresholds) > 1 else ''}{plural(len(f.thresholds), 'threshold')} met"
    # The failed ones first, as many as a table holds: they are the news.
    ordered = [*failed, *(t for t in f.thresholds if t.passed)]
    shown, more = _capped(ordered, max(min(len(failed), lim.rows), lim.items))

    def row(t: ThresholdResult) -> list[str]:
        return ["✅" if t.passed else "❌", _code(t.expr, lim.chars, cell=True), figures.threshold_value(t),
                figures.threshold_limit(t)]  # an operator and a number: "<" before a space opens no tag

    out = [title, _table(["", "threshold", "measured", "limit"], "llrl", [row(t) for t in shown])]
    if more:
        unshown_failed = max(len(failed) - len(shown), 0)
        out.append(f"_… and {more:,} more ({unshown_failed:,} of them failed)._" if unshown_failed
                   else f"_… and {more:,} more, all met._")
    return "\n\n".join(out)


def _comparison(f: Findings, lim: _Limits) -> str:
    if not f.compared:
        return ""
    against = _code(f.baseline_version, lim.chars)
    out = []
    regressions, improvements = f.regressions, f.improvements
    if regressions:
        out += [f"### Regressions against {against}", _changes(regressions, lim)]
    else:
        out.append(f"### No regression against {against}")
    if improvements:
        out += [f"### Improvements against {against}", _changes(improvements, lim)]
    rest = [c for c in f.changes if c.verdict not in ("regression", "improvement")]
    if rest:
        counts: dict[str, int] = {}
        for c in rest:
            counts[c.verdict] = counts.get(c.verdict, 0) + 1
        tally = ", ".join(f"{_plain(k, 40)} {n:,}" for k, n in counts.items())
        out.append(f"<details><summary>{plural(len(rest), 'other compared metric')} ({tally})</summary>\n\n"
                   f"{_changes(rest, lim)}\n\n</details>")
    if not f.changes:
        out.append("Nothing was compared: the baseline and this run have no metric in common.")
    return "\n\n".join(out)


def _changes(changes: Sequence[MetricChange], lim: _Limits) -> str:
    shown, more = _capped(changes, lim.rows)

    def row(c: MetricChange) -> list[str]:
        subject = "**total**" if c.subject == "total" else _code(c.subject, lim.chars, cell=True)
        verdict = "**REGRESSION**" if c.verdict == "regression" else _plain(c.verdict, 40)
        if c.note:
            verdict += f" ({_plain(c.note, lim.chars)})"
        return [f"{_plain(c.label, 40)} ({_plain(figures.unit_heading(c.unit), 20)})", subject,
                figures.number(c.unit, c.baseline), figures.number(c.unit, c.candidate), figures.change(c),
                figures.tolerance(c), verdict]

    table = _table(["metric", "endpoint", "baseline", "candidate", "change", "tolerance", "verdict"], "llrrrrl",
                   [row(c) for c in shown])
    return table + (f"\n\n_… and {more:,} more._" if more else "")


def _endpoints(f: Findings, lim: _Limits) -> str:
    if not f.endpoints:
        return ""
    busiest = sorted(f.endpoints, key=lambda e: (-e.requests, e.method, e.name))
    shown, more = _capped(busiest, lim.rows)
    def ms(v: float | None) -> str:
        return figures.number("ms", v)

    def row(e: EndpointFigures) -> list[str]:
        errors = f"{e.errors:,} ({figures.value('fraction', e.error_rate)})" if e.errors else "0"
        return [_code(e.method, 24, cell=True), _code(e.name, lim.chars, cell=True), f"{e.requests:,}", errors,
                ms(e.p50_ms), ms(e.p95_ms), ms(e.p99_ms), figures.number("req/s", e.rps)]

    title = f"### Endpoints: the {len(shown):,} busiest of {len(busiest):,}" if more else "### Endpoints"
    out = [title, _table(["method", "endpoint", "requests", "errors", "p50 (ms)", "p95 (ms)", "p99 (ms)", "req/s"],
                         "llrrrrrr", [row(e) for e in shown])]
    if more:
        rest = busiest[len(shown):]
        out.append(f"_… and {more:,} more {'endpoint' if more == 1 else 'endpoints'} "
                   f"({sum(e.requests for e in rest):,} requests)._")
    return "\n\n".join(out)


def _warnings(f: Findings, lim: _Limits) -> str:
    if not f.warnings:
        return ""
    shown, more = _capped(f.warnings, lim.items)
    lines = [f"### {plural(len(f.warnings), 'warning').capitalize()}", ""]
    lines += [f"- {_code(w, lim.chars * 2)}" for w in shown]
    if more:
        lines.append(f"- _… and {more:,} more._")
    return "\n".join(lines)

