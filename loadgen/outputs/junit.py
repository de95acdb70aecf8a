"""The run's findings as JUnit XML (``--junit``), the test report CI systems read.

``<testsuites name="loadgen">`` holds up to three suites, each with its ``tests``,
``failures``, ``errors`` and ``skipped`` counts (and the root their sums):

- ``run``: one test case ``run``, always there (so "no tests found" never trips CI). It
  passes when the run was carried out, holds an ``<error>`` with the reason when it could
  not be; the run's figures are its properties and ``system-out``, warnings ``system-err``.
- ``thresholds``: a test case per threshold, named by its expression; a failed one has a
  ``<failure>`` whose message gives the measured value and the limit.
- ``comparison``: a test case per compared metric, named ``p95 GET /api/x``, classname
  ``comparison with VERSION``; a regression has a ``<failure>`` with the baseline, the
  candidate, the change and the tolerance; a metric that could not be judged
  (insufficient data, new, missing) is ``<skipped>`` with the reason; improvements pass.

Built with :mod:`xml.etree.ElementTree`, what users control stripped of the characters
XML cannot hold, so the file is well-formed whatever the names are.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from ..findings import Findings, MetricChange, ThresholdResult
from ..judgement.render import sig
from . import figures
from .files import open_output
from .text import clean, clip

__all__ = ["render_junit", "write_junit"]

_NAME_CHARS = 1000  # a test case's name or a message: longer is cut


def write_junit(findings: Findings, path: str) -> None:
    """Write the JUnit XML of ``findings`` to ``path`` (replacing the file)."""
    data = render_junit(findings)
    with open_output(path) as f:
        f.write(data)


def render_junit(findings: Findings) -> bytes:
    """The XML document, UTF-8 with a declaration."""
    f = findings
    root = ET.Element("testsuites", name="loadgen")
    suites = [_run_suite(f)]
    if f.thresholds:
        suites.append(_suite(f, "thresholds", (_threshold_case(t) for t in f.thresholds)))
    if f.compared:
        classname = f"comparison with {f.baseline_version}"
        suites.append(_suite(f, "comparison", (_change_case(c, classname, f) for c in f.changes)))
    for suite in suites:
        root.append(suite)
    for counter in ("tests", "failures", "errors", "skipped"):
        root.set(counter, str(sum(int(s.get(counter, "0")) for s in suites)))
    if f.duration_s:
        root.set("time", _seconds(f.duration_s))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _text(value: str, limit: int = _NAME_CHARS) -> str:
    return clip(clean(value), limit)


def _seconds(s: float) -> str:
    return f"{s:.3f}"


def _suite(f: Findings, name: str, cases: Iterable[ET.Element], time_s: float | None = None) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    if f.started_at:
        suite.set("timestamp", _text(f.started_at, 64))
    cases = list(cases)
    counts = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        for outcome, counter in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            if case.find(outcome) is not None:
                counts[counter] += 1
    for counter, n in counts.items():
        suite.set(counter, str(n))
    if time_s is not None:
        suite.set("time", _seconds(time_s))
    suite.extend(cases)
    return suite


def _case(name: str, classname: str, time_s: float | None = None) -> ET.Element:
    case = ET.Element("testcase", name=_text(name), classname=_text(classname))
    if time_s is not None:
        case.set("time", _seconds(time_s))
    return case


def _outcome(case: ET.Element, tag: str, message: str, kind: str, body: str | None = None) -> None:
    el = ET.SubElement(case, tag, message=_text(message), type=kind)
    if body:
        el.text = _text(body, 20_000)


# --- the run --------------------------------------------------------------------------


def _run_suite(f: Findings) -> ET.Element:
    case = _case("run", "run", f.duration_s or None)
    if f.verdict == "error":
        why = f.error or f"the run could not be carried out (exit code {f.exit_code})"
        _outcome(case, "error", why, "run error", why)
    elif f.verdict == "fail" and not f.failed_thresholds and not f.regressions:
        _outcome(case, "failure", f"the run failed (exit code {f.exit_code})", "run")
    if f.requests or f.verdict != "error":
        ET.SubElement(case, "system-out").text = _text(_figures(f), 20_000)
    if f.warnings:
        ET.SubElement(case, "system-err").text = _text("\n".join(f.warnings), 100_000)
    suite = _suite(f, "run", [case], f.duration_s or None)
    props = ET.Element("properties")
    for name, v in _properties(f):
        ET.SubElement(props, "property", name=name, value=_text(v))
    suite.insert(0, props)
    return suite


def _properties(f: Findings) -> list[tuple[str, str]]:
    named = [("run_id", f.run_id), ("scenario", f.scenario), ("host", f.host),
             ("app_version", f.app_version), ("baseline_version", f.baseline_version),
             ("loadgen_version", f.loadgen_version), ("test_type", f.test_type), ("status", f.status),
             ("stop_reason", f.stop_reason), ("report", f.report)]
    out = [(k, v) for k, v in named if v is not None]
    out += [("verdict", f.verdict), ("exit_code", "" if f.exit_code is None else str(f.exit_code)),
            ("requests", str(f.requests)), ("errors", str(f.errors)), ("error_rate", repr(f.error_rate)),
            ("rps", repr(f.rps))]
    out += [(k, repr(v)) for k, v in (("p50_ms", f.p50_ms), ("p95_ms", f.p95_ms), ("p99_ms", f.p99_ms))
            if v is not None]
    return out


def _figures(f: Findings) -> str:
    ms = figures.value
    return (f"{f.requests:,} requests, {f.errors:,} errors ({ms('fraction', f.error_rate)}), "
            f"{ms('req/s', f.rps)} over {sig(f.duration_s)} s; latency p50 {ms('ms', f.p50_ms)}, "
            f"p95 {ms('ms', f.p95_ms)}, p99 {ms('ms', f.p99_ms)}")


# --- thresholds and compared metrics -------------------------------------------------------


def _threshold_case(t: ThresholdResult) -> ET.Element:
    case = _case(t.expr or t.metric, "thresholds")
    if not t.passed:
        body = (f"threshold: {t.expr}\nmeasured: {figures.threshold_value(t)}\n"
                f"limit: {figures.threshold_limit(t)}")
        _outcome(case, "failure", figures.threshold_outcome(t), "threshold", body)
    return case


# Verdicts with nothing to judge: the metric is skipped, with the verdict as the reason.
_SKIPPED = {"insufficient data": "insufficient data", "new": "new: not in the baseline runs",
            "missing": "missing: not in this run"}


def _change_case(c: MetricChange, classname: str, f: Findings) -> ET.Element:
    case = _case(f"{c.label} {c.subject}", classname)
    if c.verdict == "regression":
        _outcome(case, "failure", f"regression: {figures.describe(c)}", "regression", _change_body(c, f))
    elif c.verdict not in ("ok", "improvement"):
        reason = _SKIPPED.get(c.verdict, c.verdict)
        ET.SubElement(case, "skipped", message=_text(f"{reason}: {c.note}" if c.note else reason))
    elif c.verdict == "improvement" or c.note:
        ET.SubElement(case, "system-out").text = _text(f"{c.verdict}: {figures.describe(c)}"
                                                       + (f" ({c.note})" if c.note else ""))
    return case


def _change_body(c: MetricChange, f: Findings) -> str:
    runs = len(f.baseline_run_ids)
    lines = [f"metric: {c.label} of {c.subject}",
             f"baseline: {figures.value(c.unit, c.baseline)} (median of {runs} run{'s' if runs != 1 else ''}"
             f" of {f.baseline_version})",
             f"candidate: {figures.value(c.unit, c.candidate)}",
             f"change: {figures.change(c)}",
             f"tolerance: {figures.tolerance(c)}"]
    if c.note:
        lines.append(f"note: {c.note}")
    return "\n".join(lines)
