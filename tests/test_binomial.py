"""Exact binomial tails and the order-statistic bounds of the regression check's noise guard,
tested against exact rational arithmetic and real histograms."""

from __future__ import annotations

import math
import time
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest

from loadgen.engine import histogram as hdr
from loadgen.judgement.binomial import (
    binom_cdf,
    binom_low_quantile,
    binom_sf,
    quantile_bound_ranks,
    value_at_rank_us,
)


def _exact_cdf(n: int, p: float) -> list[Fraction]:
    """P(Binomial(n, p) <= k) for k = 0..n in exact rational arithmetic (p as its exact binary value)."""
    pf = Fraction(p)
    out, acc = [], Fraction(0)
    for k in range(n + 1):
        acc += math.comb(n, k) * pf**k * (1 - pf) ** (n - k)
        out.append(acc)
    return out


def test_binomial_tails_and_ranks_match_exact_arithmetic() -> None:
    for n in [*range(1, 61), 89, 90, 100, 150]:
        for p in (0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.05, 0.015):
            exact = _exact_cdf(n, p)
            for k in range(n + 1):
                assert binom_cdf(n, p, k) == pytest.approx(float(exact[k]), rel=1e-10, abs=1e-300), (n, p, k)
                sf = 1 - exact[k - 1] if k else Fraction(1)
                assert binom_sf(n, p, k) == pytest.approx(float(sf), rel=1e-10, abs=1e-300), (n, p, k)
            for alpha in (0.4, 0.1, 0.05, 0.01, 0.001):
                below = [k for k in range(n + 1) if exact[k] <= Fraction(alpha)]
                assert binom_low_quantile(n, p, alpha) == (max(below) if below else -1), (n, p, alpha)
        # The order-statistic ranks: r is the highest rank with P(B >= r) >= confidence (a
        # lower bound), s the lowest with P(B >= s) <= 1 - confidence (an upper bound).
        for q, conf in ((0.95, 0.99), (0.5, 0.99), (0.99, 0.9), (0.999, 0.99)):
            exact = _exact_cdf(n, q)
            at_least = lambda r: 1 - exact[r - 1]  # noqa: E731 - P(B >= r), for r >= 1
            r, s = quantile_bound_ranks(n, q, conf)
            alpha = 1 - Fraction(conf)
            if r is None:
                assert exact[0] > alpha
            else:
                assert at_least(r) >= 1 - alpha and (r == n or at_least(r + 1) < 1 - alpha), (n, q, conf, r)
            if s is None:
                assert Fraction(q) ** n > alpha  # even the slowest request is below the quantile too often
            else:
                assert at_least(s) <= alpha and (s == 1 or at_least(s - 1) > alpha), (n, q, conf, s)
    assert quantile_bound_ranks(30, 0.95, 0.99) == (25, None)
    assert quantile_bound_ranks(100, 0.95, 0.99) == (89, 100)
    assert quantile_bound_ranks(1000, 0.95, 0.99) == (933, 966)


def test_large_n_ranks_agree_with_the_normal_approximation_and_are_fast() -> None:
    z = NormalDist().inv_cdf(0.99)
    start = time.perf_counter()
    for n in (10**4, 10**5, 10**6, 10**7):
        for q in (0.5, 0.95, 0.99, 0.999):
            r, s = quantile_bound_ranks(n, q, 0.99)
            sd = math.sqrt(n * q * (1 - q))
            # P(B <= r - 1) ~ Phi((r - 1 + 0.5 - nq) / sd) = 0.01; skew moves it by a few ranks at most.
            assert abs(r - (n * q - z * sd + 0.5)) < 4, (n, q, r)
            assert abs(s - (n * q + z * sd + 0.5)) < 4, (n, q, s)
    assert time.perf_counter() - start < 2.0


def test_the_bound_is_read_exactly_from_the_histogram() -> None:
    rng = np.random.default_rng(3)
    values = np.arange(1, 2001) * 997  # distinct values, µs
    h = hdr.new_histogram()
    hdr.record_us(h, rng.permutation(values))
    for rank in (1, 2, 933, 1000, 1999, 2000):
        v = int(values[rank - 1])
        low, high = value_at_rank_us(h, rank, lower=True), value_at_rank_us(h, rank, lower=False)
        assert v * (1 - 1e-3) <= low <= v <= high <= v * (1 + 1e-3), rank
    assert value_at_rank_us(h, 1, lower=True) == values[0]  # clamped to the recorded min and max
    assert value_at_rank_us(h, 2000, lower=False) == values[-1]


def test_the_bound_covers_the_true_percentile_as_promised() -> None:
    # 2,000 candidates of 100 requests from a lognormal with a known p95: a 99 % lower bound
    # may lie above it with probability P(B <= 88) = 0.0057, an upper bound below it 0.006.
    rng = np.random.default_rng(11)
    mu, sigma = math.log(10_000), 1.0
    true_p95 = math.exp(mu + sigma * NormalDist().inv_cdf(0.95))
    r, s = quantile_bound_ranks(100, 0.95, 0.99)
    assert r is not None and s is not None
    above = below = 0
    for _ in range(2000):
        h = hdr.new_histogram()
        hdr.record_us(h, rng.lognormal(mu, sigma, 100).astype(np.int64))
        above += value_at_rank_us(h, r, lower=True) > true_p95
        below += value_at_rank_us(h, s, lower=False) < true_p95
    assert above <= 25 and below <= 25, (above, below)  # expected about 11 and 12
