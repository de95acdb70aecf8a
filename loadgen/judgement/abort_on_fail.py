"""``--abort-on-fail``: an engine sink that stops the run at the first failed criterion."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..engine.recorder import IntervalSnapshot
from .criteria import Criterion
from .evaluation import CriterionResult, evaluate

if TYPE_CHECKING:
    from ..sinks import RunView

__all__ = ["AbortOnFail"]


class AbortOnFail:
    """Stop the run at the first failed criterion.

    Once a second (it is called with each interval snapshot, never per
    request) it evaluates the criteria with ``final=False`` on the run's
    recorder. At the first failure it warns, keeps the failing results
    (``aborted`` the first, ``failures`` all of that interval, ``aborted_at_s``
    when) and calls ``run.stop("abort-on-fail")``, which lets in-flight requests finish
    within the graceful stop. It never judges the snapshot emitted after the
    run has already stopped: that run was not aborted, and the final
    evaluation reports its outcome.
    """

    def __init__(self, criteria: Iterable[Criterion]) -> None:
        self.criteria: tuple[Criterion, ...] = tuple(criteria)
        self.aborted: CriterionResult | None = None
        self.failures: tuple[CriterionResult, ...] = ()
        self.aborted_at_s: float | None = None

    def __call__(self, snap: IntervalSnapshot, run: RunView) -> None:
        if self.aborted is not None or not self.criteria or run.stopping:
            return
        results = evaluate(self.criteria, run.recorder, snap.end_s, final=False)
        failed = tuple(r for r in results if not r.passed)
        if not failed:
            return
        first = failed[0]
        self.aborted, self.failures, self.aborted_at_s = first, failed, snap.end_s
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        run.warnings.append(
            f"threshold {first.criterion.expr} failed at {snap.end_s:.0f}s ({first.detail}){more}: run aborted"
        )
        run.stop("abort-on-fail")
