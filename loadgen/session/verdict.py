"""The run's verdict from its own figures: the thresholds, whether the target served at
all, and why the run ended; the exit code before any comparison with a baseline."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.engine import RunResult
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_RUN
from ..summary import RunSummary
from .options import GateOptions

if TYPE_CHECKING:
    from ..judgement.abort_on_fail import AbortOnFail
    from ..judgement.evaluation import CriterionResult

__all__ = ["Verdict", "judge", "unserved"]

# Error kinds that show the target failed a request (not the run's end, nor the scenario).
_TARGET_FAILURES = ("connect", "timeout", "reset", "protocol")


@dataclass(frozen=True)
class Verdict:
    summary: RunSummary  # with thresholds, stop reason, status and exit code
    criteria: tuple[CriterionResult, ...]  # each threshold's final result
    unserved: str | None  # why the target served nothing (exit 3), or None


def judge(summary: RunSummary, result: RunResult, gate: GateOptions, abort: AbortOnFail | None) -> Verdict:
    """Judge the run on its thresholds and on whether the target answered at all."""
    criteria: tuple[CriterionResult, ...] = ()
    thresholds = None
    if gate.thresholds:
        from ..judgement.evaluation import evaluate, results_to_json

        criteria = tuple(evaluate(gate.thresholds, result.recorder, result.schedule_s, final=True))
        thresholds = results_to_json(list(criteria))
    why_unserved = unserved(summary)
    exit_code = EXIT_RUN if why_unserved else EXIT_OK if all(r.passed for r in criteria) else EXIT_FAILED
    stop_reason = summary.stop_reason
    aborted = abort is not None and abort.aborted is not None
    if aborted and stop_reason in (None, "abort-on-fail"):  # say which threshold
        assert abort is not None and abort.aborted is not None
        stop_reason = f"abort-on-fail: threshold {abort.aborted.criterion.expr} failed at {abort.aborted_at_s:.0f}s"
    status = "aborted" if aborted else "interrupted" if result.interrupted else "completed"
    judged = dataclasses.replace(summary, thresholds=thresholds, stop_reason=stop_reason, status=status,
                                 exit_code=exit_code)
    return Verdict(judged, criteria, why_unserved)


def unserved(summary: RunSummary) -> str | None:
    """Why the run is exit 3 because the target served nothing, or None.

    Exit 3 means not one request got an HTTP response and the target failed at
    least one: connects refused or timed out, connections reset or closed, only
    garbage in reply (any mix). One response, whatever its status, means the
    target was served and the thresholds decide. Requests cut off by the run's
    end (``cutoff``) count as the target failing them too (it never answered in
    the whole run), except after a signal: Ctrl-C may stop a run against a slow
    target before its first answer.
    """
    kinds = summary.errors_by_kind
    failures = _TARGET_FAILURES if summary.interrupted else (*_TARGET_FAILURES, "cutoff")
    if not summary.requests or sum(summary.status_codes.values()) or not any(kinds.get(k) for k in failures):
        return None
    how = ", ".join(f"{kind} {n:,}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f"the target {summary.host} could not be reached or served: none of the {summary.requests:,} requests "
            f"got an HTTP response ({how})")
