"""Condition 3 of the regression check: a change must be beyond the tolerance *with confidence*.

A candidate's own sampling noise must not fail the check, so for the metrics
backed by per-request samples the change is confirmed against a one-sided
bound (see :mod:`loadgen.judgement.comparison` for the derivation):

- latency: an order-statistic bound on the candidate's percentile, read
  exactly from its HDR histogram (:mod:`loadgen.judgement.binomial`);
- error rate: a one-sided binomial test against the baseline runs' pooled rate.
"""

from __future__ import annotations

from collections.abc import Sequence

from .binomial import binom_cdf, binom_sf, quantile_bound_ranks, value_at_rank_us
from .render import sig
from .run_stats import EndpointStats
from .verdict import EPS, Guard, relative

__all__ = ["latency_guard", "error_guard"]


def _percent(confidence: float) -> str:
    return f"{round(100 * confidence, 6):g} %"


def latency_guard(ep: EndpointStats, q: float, confidence: float, label: str) -> Guard:
    """The guard of the ``q``-quantile (0.95 for p95) of ``ep``'s latency; ``label`` names it in notes."""

    def guard(regression: bool, med: float, tolerance: float, /) -> str | None:
        n = int(ep.latency.total_count)
        lower_rank, upper_rank = quantile_bound_ranks(n, q, confidence)
        rank = lower_rank if regression else upper_rank
        side = "lower" if regression else "upper"
        if rank is None:
            return f"within noise: too few requests ({n:,}) for a {_percent(confidence)} {side} bound on {label}"
        # An order statistic read at its bucket's edge, not a percentile: no clamping applies.
        bound = value_at_rank_us(ep.latency, rank, lower=regression) / 1000.0
        change = relative(med, bound)
        if (change if regression else -change) > tolerance + EPS:
            return None
        return (
            f"within noise: {_percent(confidence)} {side} bound {sig(bound)} ms is inside the threshold"
            f" ({sig(med * (1 + tolerance if regression else 1 - tolerance))} ms)"
        )

    return guard


def error_guard(ep: EndpointStats, base: Sequence[EndpointStats], confidence: float) -> Guard:
    """The guard of ``ep``'s error rate against the pooled rate of the same endpoint in ``base``."""

    def guard(regression: bool, med: float, tolerance: float, /) -> str | None:
        requests = sum(e.requests for e in base)
        pooled = sum(e.errors for e in base) / requests if requests else med
        rate = pooled + tolerance if regression else pooled - tolerance
        n, x = ep.requests, ep.errors
        if regression:
            p_value = 0.0 if rate <= 0 else 1.0 if rate >= 1 else binom_sf(n, rate, x)
        else:
            p_value = 1.0 if rate <= 0 else 0.0 if rate >= 1 else binom_cdf(n, rate, x)
        if p_value < 1.0 - confidence:
            return None
        side = "above" if regression else "below"
        return (
            f"within noise: {x:,} errors in {n:,} requests are not significantly {side}"
            f" {100 * max(rate, 0.0):.2f} % (pooled baseline {100 * pooled:.2f} %"
            f" {'+' if regression else '-'} threshold; p = {p_value:.2g},"
            f" needs < {round(1 - confidence, 6):g})"
        )

    return guard
