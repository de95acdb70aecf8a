"""The quantile window and the Prometheus buckets, against hdrh's own merge and percentiles."""

from __future__ import annotations

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from loadgen.engine import histogram as hdr
from loadgen.observe.buckets import BucketBounds, CumulativeBuckets
from loadgen.observe.window import EMPTY, LatencyWindow, SparseCounts

LAYOUT = hdr.full_layout()
PERCENTS = (50.0, 95.0, 99.0, 100.0)


def _hist(values_us) -> HdrHistogram:
    h = hdr.new_histogram()
    hdr.record_us(h, np.asarray(values_us, dtype=np.int64))
    return h


def _sparse(h) -> SparseCounts:
    return SparseCounts.of(LAYOUT.prefix(h), int(h.total_count), int(h.min_value), int(h.max_value))


def _clamped_percentiles_s(hists) -> list[float]:
    merged = hdr.new_histogram()
    for h in hists:
        hdr.merge(merged, h)
    lo, hi = merged.min_value, merged.max_value
    return [min(max(v, lo), hi) / 1e6 for v in hdr.percentiles_us(merged, PERCENTS)]


def test_merged_sparse_counts_equal_the_merged_histogram():
    rng = np.random.default_rng(4)
    hists = [_hist(rng.integers(10, 10**6 * (k + 1), 300)) for k in range(3)]
    merged = SparseCounts.merged([_sparse(h) for h in hists] + [EMPTY])
    whole = hdr.new_histogram()
    for h in hists:
        hdr.merge(whole, h)
    assert merged.total == whole.total_count and (merged.min_us, merged.max_us) == (whole.min_value, whole.max_value)
    assert np.array_equal(merged.index, np.flatnonzero(np.ctypeslib.as_array(whole.counts)))
    assert SparseCounts.merged([EMPTY, EMPTY]).total == 0
    one = _sparse(hists[0])
    assert SparseCounts.merged([one]) is one


def test_window_slides_and_stays_exact():
    rng = np.random.default_rng(8)
    window = LatencyWindow(3)
    hists = []
    for k in range(7):
        h = _hist(rng.integers(1000 * (k + 1), 5000 * (k + 1), 100)) if k != 4 else hdr.new_histogram()
        hists.append(h)
        assert window.push(_sparse(h) if h.total_count else EMPTY) or k == 4
        live = [x for x in hists[-3:] if x.total_count]
        assert window.quantiles_s(LAYOUT, PERCENTS) == _clamped_percentiles_s(live), k
    for _ in range(3):
        window.push(EMPTY)
    assert window.total == 0 and window.quantiles_s(LAYOUT, PERCENTS) is None
    assert not window.counts.any()


def test_buckets_count_through_each_bound():
    bounds = BucketBounds.of((0.01, 0.001, 0.1), LAYOUT)  # sorted here
    assert bounds.labels == ('le="0.001"', 'le="0.01"', 'le="0.1"', 'le="+Inf"')
    b = CumulativeBuckets(bounds)
    values = [500, 1000, 1001, 9000, 200_000]
    h = _hist(values)
    b.add(LAYOUT.prefix(h), int(h.total_count))
    b.add(EMPTY.counts, 0)
    assert b.le.tolist() == [2, 4, 4] and b.count == 5
    assert b.sum_us == pytest.approx(sum(values), rel=1e-3)
    with pytest.raises(ValueError, match="not distinct"):
        BucketBounds.of((0.0100001, 0.0100002), LAYOUT)
