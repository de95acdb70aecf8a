"""Exact binomial tails and the order statistics that bound a percentile.

Plain math (no scipy): binomial tails are summed term by term in floating
point, which is exact up to rounding. Only the *small* tail is ever summed:
below the mean the terms shrink geometrically-or-faster away from k, so the
sum stops once a term no longer changes it (about 9 standard deviations of
terms at most: ~3,000 terms for a million requests at p95, ~45,000 at p50
for 10^8). A tail above the mean is 1 minus the mirrored small tail.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ["binom_cdf", "binom_sf", "binom_low_quantile", "quantile_bound_ranks", "value_at_rank_us"]


def _binom_logpmf(n: int, p: float, k: int) -> float:
    return (
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(p) + (n - k) * math.log1p(-p)
    )


def binom_cdf(n: int, p: float, k: int) -> float:
    """P(Binomial(n, p) <= k)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if k >= n * p:  # the lower tail is the big one: 1 - P(Binomial(n, 1 - p) <= n - k - 1), with n - k - 1 < n (1 - p)
        return 1.0 - binom_cdf(n, 1.0 - p, n - k - 1)
    # k < n p, so pmf(j - 1) / pmf(j) = j (1 - p) / ((n - j + 1) p) < 1 for every j <= k.
    term = math.exp(_binom_logpmf(n, p, k))
    total = term
    step = (1.0 - p) / p
    j = k
    while j > 0 and term > total * 1e-17:
        term *= j / (n - j + 1) * step
        total += term
        j -= 1
    return total


def binom_sf(n: int, p: float, k: int) -> float:
    """P(Binomial(n, p) >= k)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return binom_cdf(n, 1.0 - p, n - k)


def binom_low_quantile(n: int, p: float, alpha: float) -> int:
    """The largest k in -1..n with P(Binomial(n, p) <= k) <= alpha; -1 when P(... = 0) > alpha already.

    Starts at the normal approximation with continuity correction
    (P(B <= k) ~ Phi((k + 0.5 - np) / sd)), then steps one rank at a time with
    the exact tail until the answer is pinned: the approximation is off by a
    few ranks at most, so this costs a handful of tail sums.
    """
    sd = math.sqrt(n * p * (1.0 - p))
    guess = math.floor(n * p + NormalDist().inv_cdf(alpha) * sd - 0.5)
    k = min(max(guess, -1), n)
    if binom_cdf(n, p, k) <= alpha:
        while k < n and binom_cdf(n, p, k + 1) <= alpha:
            k += 1
    else:
        k -= 1
        while k >= 0 and binom_cdf(n, p, k) > alpha:
            k -= 1
    return k


def quantile_bound_ranks(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """1-based ranks (r, s) of the order statistics that bound the q-quantile of n samples.

    The true quantile xi has B = #{samples <= xi} ~ Binomial(n, q) (for any
    continuous distribution; with ties B is only larger, for the lower bound,
    and #{samples < xi} only smaller, for the upper, so both stay valid).
    The r-th smallest sample is above xi exactly when fewer than r samples are
    <= xi, so P(X(r) > xi) = P(B <= r - 1): r - 1 is the largest k with
    P(B <= k) <= alpha, and X(r) is a one-sided lower bound at confidence
    1 - alpha. Mirrored, P(X(s) < xi) <= P(B >= s): s is the smallest rank with
    P(B >= s) <= alpha, i.e. n minus the same search on Binomial(n, 1 - q).
    ``None`` when n is too small for such a rank (e.g. no 99 % upper bound on
    a p95 from fewer than 90 samples: even the maximum is below the p95 with
    probability 0.95**n > 0.01).
    """
    alpha = 1.0 - confidence
    k = binom_low_quantile(n, q, alpha)
    k_mirror = binom_low_quantile(n, 1.0 - q, alpha)
    return (k + 1 if k >= 0 else None), (n - k_mirror if k_mirror >= 0 else None)


def value_at_rank_us(h: HdrHistogram, rank: int, lower: bool) -> int:
    """The rank-th smallest recorded value (1-based), widened to its bucket's edge.

    ``lower``: the bucket's lowest equivalent value (never above the sample),
    otherwise its highest (never below), clamped into the recorded [min, max].
    """
    cumulative = np.cumsum(np.ctypeslib.as_array(h.counts), dtype=np.uint64)
    index = int(np.searchsorted(cumulative, np.uint64(rank), side="left"))
    value = h.get_value_from_index(index)
    if lower:
        return max(int(h.get_lowest_equivalent_value(value)), int(h.min_value))
    return min(int(h.get_highest_equivalent_value(value)), int(h.max_value))
