"""The JSON document a webhook that is neither Slack nor Teams receives.

Versioned by ``schema`` (``loadgen.notification/1``): a later version adds keys and
never changes the meaning of one; a receiver ignores keys it does not know. Every
key is always present (``null`` when there is nothing to say). The README lists the
keys; :func:`document` is the one place they are written.
"""

from __future__ import annotations

from typing import TypedDict

from ..findings import Findings, MetricChange, ThresholdResult
from .text import fallback

__all__ = ["SCHEMA", "document"]

SCHEMA = "loadgen.notification/1"


class FailedThreshold(TypedDict):
    expr: str
    endpoint: str | None
    metric: str
    op: str
    value: float
    actual: float | None


class Regression(TypedDict):
    metric: str
    label: str
    subject: str
    unit: str
    baseline: float | None
    candidate: float | None
    change: float | None
    change_kind: str
    threshold: float
    note: str | None


class Document(TypedDict):
    schema: str
    message: str
    run_id: str | None
    verdict: str
    exit_code: int | None
    error: str | None
    loadgen_version: str | None
    app_version: str | None
    baseline_version: str | None
    baseline_run_ids: list[str]
    scenario: str | None
    host: str | None
    test_type: str
    status: str | None
    stop_reason: str | None
    started_at: str | None
    duration_s: float
    summary: dict[str, int | float | None]  # Figures: requests, errors, error_rate, rps, p50/p95/p99_ms
    failed_thresholds: list[FailedThreshold]
    regressions: list[Regression]
    comparison: str | None
    report: str | None


def _threshold(t: ThresholdResult) -> FailedThreshold:
    return {"expr": t.expr, "endpoint": t.endpoint, "metric": t.metric, "op": t.op, "value": t.value,
            "actual": t.actual}


def _regression(c: MetricChange) -> Regression:
    return {"metric": c.metric, "label": c.label, "subject": c.subject, "unit": c.unit, "baseline": c.baseline,
            "candidate": c.candidate, "change": c.change, "change_kind": c.change_kind, "threshold": c.threshold,
            "note": c.note}


def document(f: Findings) -> Document:
    """The JSON document of ``f`` (complete: no list is cut short)."""
    return {
        "schema": SCHEMA,
        "message": fallback(f),
        "run_id": f.run_id,
        "verdict": f.verdict,
        "exit_code": f.exit_code,
        "error": f.error,
        "loadgen_version": f.loadgen_version,
        "app_version": f.app_version,
        "baseline_version": f.baseline_version,
        "baseline_run_ids": list(f.baseline_run_ids),
        "scenario": f.scenario,
        "host": f.host,
        "test_type": f.test_type,
        "status": f.status,
        "stop_reason": f.stop_reason,
        "started_at": f.started_at,
        "duration_s": f.duration_s,
        "summary": f.figures(),
        "failed_thresholds": [_threshold(t) for t in f.failed_thresholds],
        "regressions": [_regression(c) for c in f.regressions],
        "comparison": f.comparison_summary,
        "report": f.report,
    }
