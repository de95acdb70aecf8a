"""What a run found, for the people and systems told about it: notifications, the
markdown summary, JUnit XML.

:class:`Findings` is built once from a summary document (``RunSummary.to_json()``,
which is also the stored run's ``summary``), so a run just ended and a stored run
(``loadgen notify RUN``) give the same message. Every output reads this and
nothing else: they cannot disagree on the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

from .errors import EXIT_FAILED, EXIT_OK, EXIT_RUN, EXIT_USAGE
from .redact import mask_userinfo

__all__ = ["Findings", "Figures", "ThresholdResult", "MetricChange", "EndpointFigures", "Verdict", "findings_of"]

#: ``pass``; ``fail``: a threshold failed; ``regression``: the comparison found one
#: (thresholds passed); ``error``: the run could not be carried out (exit 3), or a check
#: after it failed (exit 2: no baseline for ``--baseline-version``).
Verdict = Literal["pass", "fail", "regression", "error"]

_ERROR_CODES = (EXIT_USAGE, EXIT_RUN)


@dataclass(frozen=True)
class ThresholdResult:
    """One ``--threshold`` at the run's end; values in normalised units (ms, a fraction, req/s)."""

    expr: str
    endpoint: str | None
    metric: str
    op: str
    value: float
    actual: float | None  # None: nothing to measure
    passed: bool


@dataclass(frozen=True)
class MetricChange:
    """One compared metric: the baseline runs' median, the candidate, and the change."""

    metric: str  # response_time, error_rate, throughput, cpu_usage, memory_usage, queue_length
    label: str  # p95, error rate, ...
    subject: str  # "GET /api/x", "total", a service or a queue
    unit: str
    baseline: float | None
    candidate: float | None
    change: float | None  # relative (0.2 = +20 %) or absolute, see change_kind; None: undefined
    change_kind: str
    threshold: float
    verdict: str  # regression, improvement, ok, insufficient data, ...
    note: str | None


@dataclass(frozen=True)
class Figures:
    """What a run, or one of its endpoints, did (latencies in ms; None: no figure)."""

    requests: int
    errors: int
    error_rate: float
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    def figures(self) -> dict[str, int | float | None]:
        """These figures alone, by name (the subclasses hold more)."""
        return {f.name: getattr(self, f.name) for f in fields(Figures)}


@dataclass(frozen=True)
class EndpointFigures(Figures):
    method: str
    name: str


@dataclass(frozen=True)
class Findings(Figures):
    """A run's verdict and the figures behind it (see the module docstring)."""

    run_id: str | None
    scenario: str | None
    host: str | None  # the target as it may be shown: no query, no fragment, user-info masked
    app_version: str | None
    loadgen_version: str | None
    test_type: str
    started_at: str | None
    duration_s: float
    status: str | None  # completed, interrupted, aborted
    stop_reason: str | None
    exit_code: int | None
    verdict: Verdict
    error: str | None  # why the run could not be carried out or judged (verdict "error")
    thresholds: tuple[ThresholdResult, ...]
    baseline_version: str | None  # None: no comparison
    baseline_run_ids: tuple[str, ...]
    comparison_summary: str | None  # the comparison's one line
    changes: tuple[MetricChange, ...]  # every compared metric
    endpoints: tuple[EndpointFigures, ...]
    warnings: tuple[str, ...]
    report: str | None  # where the HTML report is, when one was written

    @property
    def failed_thresholds(self) -> tuple[ThresholdResult, ...]:
        return tuple(t for t in self.thresholds if not t.passed)

    @property
    def regressions(self) -> tuple[MetricChange, ...]:
        return tuple(c for c in self.changes if c.verdict == "regression")

    @property
    def improvements(self) -> tuple[MetricChange, ...]:
        return tuple(c for c in self.changes if c.verdict == "improvement")

    @property
    def compared(self) -> bool:
        return self.baseline_version is not None


def findings_of(summary: Mapping[str, object], *, report: str | None = None, error: str | None = None) -> Findings:
    """The findings of a summary document; ``error``: why the run could not be carried out or
    judged (its summary may still hold what was measured; its exit code 2 or 3, else 3)."""
    comparison = _mapping(summary.get("comparison"))
    thresholds = tuple(_threshold(t) for t in _list(summary.get("thresholds")))
    changes = tuple(_change(r) for r in _list(comparison.get("rows")))
    exit_code = _int_or_none(summary.get("exit_code"))
    baseline = _mapping(comparison.get("baseline"))
    return Findings(
        run_id=_str_or_none(summary.get("run_id")),
        scenario=_str_or_none(summary.get("scenario") or comparison.get("scenario")),  # ad hoc: the identity
        host=_address(summary.get("host")),
        app_version=_str_or_none(summary.get("app_version")),
        loadgen_version=_str_or_none(summary.get("loadgen_version")),
        test_type=str(summary.get("test_type") or "load"),
        started_at=_str_or_none(summary.get("started_at")),
        duration_s=_float(summary.get("duration_s")),
        status=_str_or_none(summary.get("status")),
        stop_reason=_str_or_none(summary.get("stop_reason")),
        exit_code=exit_code if error is None or exit_code in _ERROR_CODES else EXIT_RUN,
        verdict=_verdict(error, exit_code, thresholds, changes),
        error=error if error is not None or exit_code != EXIT_RUN else _stored_reason(summary),
        **_figures(summary),
        thresholds=thresholds,
        baseline_version=_str_or_none(baseline.get("app_version")),
        baseline_run_ids=tuple(str(r) for r in _list(baseline.get("run_ids"))),
        comparison_summary=_str_or_none(comparison.get("summary")),
        changes=changes,
        endpoints=tuple(_endpoint(e) for e in _mapping(summary.get("endpoints")).values()),
        warnings=tuple(str(w) for w in _list(summary.get("warnings")) if str(w) != error),  # said once
        report=report,
    )


def _address(host: object) -> str | None:
    """The target without query or fragment and with its user-info masked: an ad-hoc URL's
    query may carry a token, its user name may be one (sent as Basic auth), and findings go
    to chat rooms and pull requests."""
    if host is None:
        return None
    return mask_userinfo(str(host).split("?", 1)[0].split("#", 1)[0])


def _stored_reason(summary: Mapping[str, object]) -> str:
    """Why a stored run is exit 3 (its summary keeps the figures, not the sentence)."""
    kinds = {str(k): _int(v) for k, v in _mapping(summary.get("errors_by_kind")).items()}
    answered = sum(_int(v) for v in _mapping(summary.get("status_codes")).values())
    requests = _int(summary.get("requests"))
    if requests and not answered and kinds:
        how = ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"none of the {requests:,} requests got an HTTP response ({how})"
    return "the run could not be carried out (exit 3); its stored summary does not say why"


def _verdict(error: str | None, exit_code: int | None, thresholds: tuple[ThresholdResult, ...],
             changes: tuple[MetricChange, ...]) -> Verdict:
    if error is not None or exit_code in _ERROR_CODES:
        return "error"
    if any(not t.passed for t in thresholds):
        return "fail"
    if any(c.verdict == "regression" for c in changes):
        return "regression"
    return "fail" if exit_code not in (None, EXIT_OK, EXIT_FAILED) else "pass"


def _threshold(doc: object) -> ThresholdResult:
    d = _mapping(doc)
    return ThresholdResult(expr=str(d.get("expr", "")), endpoint=_str_or_none(d.get("endpoint")),
                           metric=str(d.get("metric", "")), op=str(d.get("op", "")), value=_float(d.get("value")),
                           actual=_float_or_none(d.get("actual")), passed=bool(d.get("passed")))


def _change(doc: object) -> MetricChange:
    d = _mapping(doc)
    return MetricChange(metric=str(d.get("metric", "")), label=str(d.get("label", "")),
                        subject=str(d.get("subject", "")), unit=str(d.get("unit", "")),
                        baseline=_float_or_none(d.get("baseline")), candidate=_float_or_none(d.get("candidate")),
                        change=_float_or_none(d.get("change")), change_kind=str(d.get("change_kind", "")),
                        threshold=_float(d.get("threshold")), verdict=str(d.get("verdict", "")),
                        note=_str_or_none(d.get("note")))


def _figures(d: Mapping[str, object]) -> dict[str, int | float | None]:
    """The :class:`Figures` of a run's or an endpoint's document, by name."""
    latency = _mapping(d.get("latency_ms"))
    return Figures(requests=_int(d.get("requests")), errors=_int(d.get("errors")),
                   error_rate=_float(d.get("error_rate")), rps=_float(d.get("rps")),
                   p50_ms=_float_or_none(latency.get("p50")), p95_ms=_float_or_none(latency.get("p95")),
                   p99_ms=_float_or_none(latency.get("p99"))).figures()


def _endpoint(doc: object) -> EndpointFigures:
    d = _mapping(doc)
    return EndpointFigures(method=str(d.get("method", "")), name=str(d.get("name", "")), **_figures(d))


# A stored summary is JSON from a database: read it defensively, one field at a time.
def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _float(value: object) -> float:
    got = _float_or_none(value)
    return 0.0 if got is None else got


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _int(value: object) -> int:
    return _int_or_none(value) or 0
