"""The words of a notification, shared by the Slack and Teams messages: the headline,
the run's facts, one line per failed threshold and per regression. Plain text here;
each payload escapes it for its own markup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..findings import Findings, MetricChange, ThresholdResult
from ..judgement import render
from ..outputs import figures
from ..outputs.text import clip as _cut
from ..summary import format_ms

__all__ = ["VERDICT_WORDS", "Item", "Fact", "headline", "fallback", "summary_line", "facts", "threshold_item",
           "regression_item", "footer", "clip", "Quote"]

VERDICT_WORDS = {"pass": "PASS", "fail": "FAIL", "regression": "REGRESSION", "error": "ERROR"}


@dataclass(frozen=True)
class Fact:
    """One of the run's facts; ``user_text``: the value is the user's (a version, a run id), not loadgen's."""

    title: str
    value: str
    user_text: bool = False


@dataclass(frozen=True)
class Item:
    """One line of a list: who (an endpoint, a threshold's expression: user text) and what (figures)."""

    name: str
    detail: str


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut; control characters
    (a newline in an endpoint's name, say) become spaces."""
    return _cut("".join(c if c.isprintable() else " " for c in text), limit)


Quote = Callable[[str], str]


def _same(text: str) -> str:
    return text


def headline(f: Findings, quote: Quote = _same) -> str:
    """``loadgen REGRESSION: checkout.py (1.3 vs 1.2)``; ``quote`` marks up the user's text in it."""
    versions = quote(f.app_version) if f.app_version else "no app version"
    if f.baseline_version:
        versions += f" vs {quote(f.baseline_version)}"
    return f"loadgen {VERDICT_WORDS[f.verdict]}: {quote(f.scenario or f.host or 'ad-hoc run')} ({versions})"


def _counts(f: Findings) -> str:
    parts = []
    if f.failed_thresholds:
        parts.append(render.plural(len(f.failed_thresholds), "failed threshold"))
    if f.regressions:
        parts.append(render.plural(len(f.regressions), "regression"))
    return ", ".join(parts)


def fallback(f: Findings, quote: Quote = _same) -> str:
    """The message in one line (Slack's notification text, the JSON ``message``)."""
    line = headline(f, quote)
    if f.verdict == "error":
        return f"{line}: the run could not be carried out: {quote(f.error or 'unknown error')}"
    counts = _counts(f)
    return f"{line}: {counts}" if counts else f"{line}: every check passed"


def summary_line(f: Findings) -> str:
    """What the run did, in one line: ``1,200 requests, 0.50 % errors, 20.0 req/s, p95 12.3 ms``."""
    return (f"{f.requests:,} requests, {100 * f.error_rate:.2f} % errors, {f.rps:,.1f} req/s, "
            f"p95 {format_ms(f.p95_ms)} ms")


def facts(f: Findings) -> list[Fact]:
    """The run's facts, at most eight (Slack shows ten fields at most)."""
    out = [Fact("Verdict", VERDICT_WORDS[f.verdict]),
           Fact("Run", f.run_id or "–", user_text=f.run_id is not None),
           Fact("App version", f.app_version or "–", user_text=f.app_version is not None)]
    if f.baseline_version:
        out.append(Fact("Baseline version", f.baseline_version, user_text=True))
    out += [Fact("Test", f"{f.test_type}, {f.duration_s:.0f} s"),
            Fact("Requests", f"{f.requests:,} ({100 * f.error_rate:.2f} % errors)"),
            Fact("Throughput", f"{f.rps:,.1f} req/s"),
            Fact("Latency", f"p50 {format_ms(f.p50_ms)} / p95 {format_ms(f.p95_ms)} / p99 {format_ms(f.p99_ms)} ms")]
    return out


def threshold_item(t: ThresholdResult) -> Item:
    """``p95<300ms``: ``412 ms, must be < 300 ms`` (the figures as the CI files show them)."""
    measured = figures.threshold_value(t) if t.actual is not None else "nothing measured"
    return Item(t.expr, f"{measured}, must be {figures.threshold_limit(t)}")


def regression_item(c: MetricChange) -> Item:
    """``GET /x``: ``p95 12.1 ms → 31.0 ms (+156 %, threshold +20 %)``."""
    return Item(c.subject, f"{c.label} {figures.movement(c)}")


def footer(f: Findings, quote: Quote = _same) -> str:
    """The small print: loadgen's version, when the run started, where its report is."""
    parts = [f"loadgen {f.loadgen_version or '?'}"]
    if f.started_at:
        parts.append(f"started {f.started_at}")
    if f.report:
        parts.append(f"report: {quote(f.report)}")
    return " · ".join(parts)
