"""Old home of the regression check, kept for modules not yet moved to :mod:`loadgen.judgement`.

``Thresholds`` is :class:`~loadgen.judgement.tolerances.Tolerances` under its old
name; the rest is re-exported as is. New code imports from the judgement modules.
"""

from __future__ import annotations

from .judgement.comparison import Comparison, Row, compare
from .judgement.render import render_comparison as render
from .judgement.render import verdict_line
from .judgement.run_stats import EndpointStats, RunStats
from .judgement.tolerances import PERCENTILES, strip_json_comments
from .judgement.tolerances import Tolerances as Thresholds
from .judgement.tolerances import load_tolerances as load_thresholds
from .judgement.tolerances import parse_tolerances_text as parse_thresholds_text
from .judgement.verdict import METRICS

__all__ = [
    "EndpointStats",
    "RunStats",
    "Thresholds",
    "Row",
    "Comparison",
    "PERCENTILES",
    "METRICS",
    "load_thresholds",
    "parse_thresholds_text",
    "strip_json_comments",
    "compare",
    "render",
    "verdict_line",
]
