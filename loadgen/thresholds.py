"""Old home of the in-run criteria, kept for modules not yet moved to :mod:`loadgen.judgement`.

``Threshold`` is :class:`~loadgen.judgement.criteria.Criterion`, ``ThresholdResult``
:class:`~loadgen.judgement.evaluation.CriterionResult` and ``ThresholdSink``
:class:`~loadgen.judgement.abort_on_fail.AbortOnFail` under their old names.
New code imports from the judgement modules.
"""

from __future__ import annotations

from .judgement.abort_on_fail import AbortOnFail as ThresholdSink
from .judgement.criteria import OPERATORS
from .judgement.criteria import Criterion as Threshold
from .judgement.criteria import parse_criteria as parse_thresholds
from .judgement.criteria import parse_criterion as parse_threshold
from .judgement.evaluation import CriterionResult as ThresholdResult
from .judgement.evaluation import evaluate, results_to_json
from .judgement.render import render_criteria as render

__all__ = [
    "Threshold",
    "ThresholdResult",
    "ThresholdSink",
    "parse_threshold",
    "parse_thresholds",
    "evaluate",
    "render",
    "results_to_json",
    "OPERATORS",
]
