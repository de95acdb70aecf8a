"""The vectorised histogram helpers must be indistinguishable from hdrh's per-value API."""

from __future__ import annotations

import array
import math
import sys
from fractions import Fraction

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from loadgen.engine import histogram as lh

HI = lh.HIGHEST_US
PERCENTILES = (0, 1, 50, 90, 95, 99, 99.9, 99.99, 100)


def _edge_values() -> np.ndarray:
    pows = [1 << k for k in range(0, 38)]
    around = [v + d for v in pows for d in (-1, 0, 1)]
    fixed = [0, 1, 2, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, HI - 1, HI, HI + 1, 2 * HI]
    return np.array(sorted(set(around + fixed)), dtype=np.int64)


def _samples() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240501)
    hour = 3_600_000_000
    return {
        "uniform_small": rng.integers(0, 5000, 20_000),
        "lognormal": rng.lognormal(math.log(2_000), 1.2, 20_000).astype(np.int64),
        "lognormal_wide": rng.lognormal(math.log(50_000), 3.0, 20_000).astype(np.int64),
        "heavy_tail": np.minimum((rng.pareto(0.8, 20_000) + 1) * 100, hour).astype(np.int64),
        "edges": _edge_values(),
        "edges_shuffled_repeated": rng.permutation(np.repeat(_edge_values(), 3)),
        "single": np.array([1_234_567], dtype=np.int64),
        "all_zero": np.zeros(10, dtype=np.int64),
    }


SAMPLES = _samples()


def reference(values_us, lowest: int = lh.LOWEST_US, highest: int = HI, sig: int = 3) -> HdrHistogram:
    """hdrh filled one value at a time, after the documented clamp to [0, highest]."""
    h = HdrHistogram(lowest, highest, sig)
    for v in np.asarray(values_us).tolist():
        assert h.record_value(min(max(v, 0), highest))
    return h


def assert_same_counts(a: HdrHistogram, b: HdrHistogram) -> None:
    # new_histogram() grows its counters on demand: a shorter one equals the full one
    # cut at its top, the rest zero.
    n = min(a.counts_len, b.counts_len)
    assert list(a.counts)[:n] == list(b.counts)[:n]
    assert not any(list(a.counts)[n:]) and not any(list(b.counts)[n:])


def assert_same(a: HdrHistogram, b: HdrHistogram) -> None:
    assert_same_counts(a, b)
    assert a.total_count == b.total_count
    assert a.min_value == b.min_value
    assert a.max_value == b.max_value
    assert type(a.min_value) is int and type(a.max_value) is int and type(a.total_count) is int


@pytest.fixture(scope="module")
def references() -> dict[str, HdrHistogram]:
    return {name: reference(v) for name, v in SAMPLES.items()}


@pytest.mark.parametrize("name", SAMPLES)
def test_record_us_identical_to_record_value(name, references):
    h = lh.new_histogram()
    values = SAMPLES[name]
    clamped = lh.record_us(h, values)
    assert clamped == int(np.count_nonzero(values > HI))
    assert_same(h, references[name])


@pytest.mark.parametrize("name", SAMPLES)
def test_record_us_in_chunks_identical(name, references):
    h = lh.new_histogram()
    for chunk in np.array_split(SAMPLES[name], 7):
        lh.record_us(h, chunk)
    assert_same(h, references[name])


def test_counts_index_matches_hdrh_for_every_edge():
    h = lh.new_histogram()
    for v in _edge_values().tolist():
        if v > HI:
            continue
        single = lh.new_histogram()
        lh.record_us(single, [v])
        (nz,) = np.nonzero(np.ctypeslib.as_array(single.counts))
        assert nz.tolist() == [h._counts_index_for(v)], v


@pytest.mark.parametrize("lowest,highest,sig", [(1, 3_600_000_000, 2), (1000, 10**12, 3), (8, 2**40, 4)])
def test_other_layouts(lowest, highest, sig):
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [rng.lognormal(math.log(highest) / 2, 4.0, 5000).astype(np.int64), [0, 1, lowest, highest, highest + 1]]
    )
    values = np.concatenate([values, [1 << k for k in range(41)], [(1 << k) - 1 for k in range(1, 41)]])
    h = HdrHistogram(lowest, highest, sig)
    lh.record_us(h, values)
    assert_same(h, reference(values, lowest, highest, sig))


@pytest.mark.parametrize("lowest,highest,sig", [(1, 3_600_000_000, 2), (1000, 10**12, 3), (8, 2**40, 4)])
def test_percentiles_and_mean_of_other_layouts(lowest, highest, sig):
    # One layout per (unit, sub-bucket) magnitude, computed for whatever hdrh made.
    values = np.random.default_rng(3).lognormal(math.log(highest) / 2, 3.0, 5000).astype(np.int64)
    h = HdrHistogram(lowest, highest, sig)
    lh.record_us(h, values)
    ref = reference(values, lowest, highest, sig)
    assert lh.percentiles_us(h, PERCENTILES) == [ref.get_value_at_percentile(p) for p in PERCENTILES]
    assert lh.mean_us(h) == ref.get_mean_value()


def test_layout_is_hdrh_counter_by_counter():
    full = lh.full_histogram()
    layout = lh.full_layout()
    assert layout.counts_len == full.counts_len and layout.fits(lh.new_histogram()) and layout.fits(full)
    assert lh.layout_of(full) is layout
    for i in list(range(0, 4096)) + list(range(4096, full.counts_len, 97)) + [full.counts_len - 1]:
        value = full.get_value_from_index(i)
        assert int(layout.lowest[i]) == value, i
        assert int(layout.highest[i]) == full.get_highest_equivalent_value(value), i
        assert int(layout.midpoints[i]) == full._hdr_median_equiv_value(value), i
    for v in _edge_values().tolist() + [1 << 40, 1 << 60]:  # past the last counter: the last
        assert layout.index_of_us(v) == min(full.get_counts_array_index(v), full.counts_len - 1), v
    assert layout.index_of_us(-5) == 0


def test_layout_prefix_ends_at_the_max_value():
    h = lh.new_histogram()
    lh.record_us(h, [3, 70_000, 1_500_000])
    prefix = lh.full_layout().prefix(h)
    assert prefix.size == h.get_counts_array_index(1_500_000) + 1 and int(prefix.sum()) == 3
    assert int(prefix[-1]) == 1

def test_input_types_and_no_mutation():
    values = SAMPLES["lognormal"][:1000]
    expected = reference(values)
    for make in (
        lambda: array.array("q", values.tolist()),
        lambda: values.copy(),
        lambda: memoryview(array.array("q", values.tolist())),
        lambda: values.astype(np.int32),
        lambda: values.tolist(),
        lambda: values[::-1].copy()[::-1],  # non-contiguous view
    ):
        data = make()
        before = list(data)
        h = lh.new_histogram()
        lh.record_us(h, data)
        assert_same(h, expected)
        assert list(data) == before


def test_empty_is_noop():
    for empty in (array.array("q"), np.empty(0, np.int64), memoryview(array.array("q")), []):
        h = lh.new_histogram()
        assert lh.record_ns(h, empty) == 0
        assert lh.record_us(h, empty) == 0
        assert h.total_count == 0 and h.min_value == sys.maxsize and h.max_value == 0
        assert not any(h.counts)


def test_float_input_rejected():
    with pytest.raises(TypeError):
        lh.record_us(lh.new_histogram(), np.array([1.5, 2.5]))


def test_record_ns_rounding_and_clamping():
    hi_ns = HI * 1000
    cases = {
        -(2**63): 0,
        -10**9: 0,
        -501: 0,
        -1: 0,
        0: 0,
        499: 0,
        500: 1,
        1499: 1,
        1500: 2,
        2_047_499: 2047,
        2_047_500: 2048,
        4_095_500: 4096,
        hi_ns + 499: HI,
        hi_ns + 500: HI,  # clamped
        2**63 - 1: HI,  # clamped, no overflow
    }
    ns = array.array("q", cases)
    h = lh.new_histogram()
    assert lh.record_ns(h, ns) == 2
    assert_same(h, reference(list(cases.values())))
    assert list(ns) == list(cases)  # input untouched

    # Each case on its own, so min/max tracking of the rounded value is checked too.
    for v, expected_us in cases.items():
        h = lh.new_histogram()
        lh.record_ns(h, np.array([v], dtype=np.int64))
        assert (h.min_value, h.max_value) == (expected_us, expected_us), v


@pytest.mark.parametrize("name", ["lognormal", "heavy_tail", "edges"])
def test_record_ns_equals_rounded_record_us(name):
    rng = np.random.default_rng(3)
    us = np.minimum(SAMPLES[name], HI + 5)
    ns = us * 1000 + rng.integers(-500, 500, us.size)
    h_ns = lh.new_histogram()
    clamped = lh.record_ns(h_ns, ns)
    h_us = lh.new_histogram()
    expected = lh.record_us(h_us, (ns + 500) // 1000)
    assert clamped == expected
    assert_same(h_ns, h_us)


@pytest.mark.parametrize("name", SAMPLES)
def test_percentile_us_matches_hdrh(name, references):
    ref = references[name]
    h = lh.new_histogram()
    lh.record_us(h, SAMPLES[name])
    expected = [ref.get_value_at_percentile(p) for p in PERCENTILES]
    assert [lh.percentile_us(h, p) for p in PERCENTILES] == expected
    assert lh.percentiles_us(h, PERCENTILES) == expected


def test_percentile_empty_and_out_of_range():
    h = lh.new_histogram()
    assert lh.percentile_us(h, 50) == h.get_value_at_percentile(50) == 0
    lh.record_us(h, SAMPLES["lognormal"])
    for p in (-5, 0.0001, 100.5, 1000):
        assert lh.percentile_us(h, p) == h.get_value_at_percentile(p)


@pytest.mark.parametrize("name", SAMPLES)
def test_mean_matches_hdrh(name, references):
    h = lh.new_histogram()
    lh.record_us(h, SAMPLES[name])
    assert lh.mean_us(h) == references[name].get_mean_value()


def test_mean_exact_when_int64_would_overflow():
    h = lh.new_histogram()
    lh.record_us(h, [HI] * 10 + [1])
    np.ctypeslib.as_array(h.counts)[:] *= 10**8  # ~1e9 counts of ~8.6e10 µs > 2**63
    h.total_count *= 10**8
    assert lh.mean_us(h) == h.get_mean_value()


def _nearest_rank(sorted_values: np.ndarray, p: float) -> int:
    # Exact arithmetic: in floats 99.9 / 100 * 100_000 is 99900.00000000001, whose ceil is off by one.
    rank = max(math.ceil(Fraction(str(p)) * len(sorted_values) / 100), 1)
    return int(sorted_values[rank - 1])


@pytest.mark.parametrize(
    "values",
    [
        np.arange(1, 100_001, dtype=np.int64),
        np.random.default_rng(11).lognormal(math.log(3_000), 1.5, 100_000).astype(np.int64) + 1,
    ],
    ids=["1..100000", "lognormal"],
)
def test_percentiles_within_three_significant_figures(values):
    h = lh.new_histogram()
    lh.record_us(h, values)
    exact = np.sort(values)
    for p in (1, 10, 50, 90, 95, 99, 99.9, 99.99, 100):
        true = _nearest_rank(exact, p)
        got = lh.percentile_us(h, p)
        assert true <= got <= true * 1.001 + 1, (p, true, got)
    s = lh.summarize_ms(h)
    for key, p in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9)):
        true = _nearest_rank(exact, p)
        assert true / 1000 <= s[key] <= true * 1.001 / 1000 + 0.001, key
    assert s["max"] == exact[-1] / 1000
    assert s["min"] == exact[0] / 1000
    assert s["mean"] == pytest.approx(values.mean() / 1000, rel=1e-3)


def test_summarize_ms():
    assert lh.summarize_ms(lh.new_histogram()) == {
        k: 0.0 for k in ("p50", "p90", "p95", "p99", "p999", "max", "mean", "min")
    }
    h = lh.new_histogram()
    lh.record_us(h, [1_234_567])  # bucket is [1_234_432, 1_234_943]
    s = lh.summarize_ms(h)
    assert s == {k: 1234.567 for k in s}  # exact max, percentiles/mean clamped to it
    assert h.get_max_value() == 1_234_943 and h.get_value_at_percentile(99.9) == 1_234_943

    h = lh.new_histogram()
    lh.record_us(h, SAMPLES["lognormal"])
    s = lh.summarize_ms(h)
    assert list(s) == ["p50", "p90", "p95", "p99", "p999", "max", "mean", "min"]
    assert all(type(v) is float for v in s.values())
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["p999"] <= s["max"]
    assert s["p50"] == h.get_value_at_percentile(50) / 1000
    assert s["mean"] == h.get_mean_value() / 1000


@pytest.mark.parametrize("name", SAMPLES)
def test_merge_halves_equals_whole(name, references):
    values = SAMPLES[name]
    first, second = lh.new_histogram(), lh.new_histogram()
    lh.record_us(first, values[: len(values) // 2])
    lh.record_us(second, values[len(values) // 2 :])
    merged = lh.merge(lh.merge(lh.new_histogram(), first), second)
    assert_same(merged, references[name])
    into = first
    assert lh.merge(into, second) is into
    assert_same(into, references[name])


def test_merge_with_empty():
    h = lh.new_histogram()
    lh.record_us(h, SAMPLES["lognormal"])
    lh.merge(h, lh.new_histogram())
    assert_same(h, reference(SAMPLES["lognormal"]))
    empty = lh.merge(lh.new_histogram(), lh.new_histogram())
    assert empty.total_count == 0 and empty.min_value == sys.maxsize and empty.max_value == 0


def test_merge_into_decoded():
    a, b = lh.new_histogram(), lh.new_histogram()
    lh.record_us(a, SAMPLES["lognormal"])
    lh.record_us(b, SAMPLES["heavy_tail"])
    merged = lh.merge(lh.decode(lh.encode(a)), b)
    whole = reference(np.concatenate([SAMPLES["lognormal"], SAMPLES["heavy_tail"]]))
    assert_same(merged, whole)
    assert merged.total_count == whole.total_count


def test_histograms_grow_on_demand_and_stay_exact():
    # Memory: counters exist up to the largest value seen, not up to a day.
    small = lh.new_histogram()
    assert small.counts_len <= 2048
    lh.record_ns(small, [1_000_000])  # 1 ms: still in the first bucket pair
    assert small.counts_len <= 2048
    full = lh.full_histogram()
    assert full.counts_len > 10 * small.counts_len
    # Merging a longer histogram (or a full-range one decoded from old data) grows the target.
    big = lh.new_histogram()
    lh.record_us(big, SAMPLES["heavy_tail"])
    assert small.counts_len < big.counts_len < full.counts_len
    lh.merge(small, big)
    assert_same(small, reference(np.concatenate([[1000], SAMPLES["heavy_tail"]])))
    old = lh.full_histogram()
    lh.record_us(old, [5, HI])
    back = lh.decode(lh.encode(old))
    into = lh.new_histogram()
    lh.merge(into, back)
    assert into.total_count == 2 and lh.percentile_us(into, 100) == lh.percentile_us(old, 100)
    # Past a day values are clamped exactly as before.
    h = lh.new_histogram()
    assert lh.record_us(h, [HI + 5, 3]) == 1
    assert_same(h, reference([HI + 5, 3]))


@pytest.mark.parametrize("name", SAMPLES)
def test_encode_decode_round_trip(name):
    h = lh.new_histogram()
    lh.record_us(h, SAMPLES[name])
    data = lh.encode(h)
    assert isinstance(data, bytes)
    back = lh.decode(data)
    assert_same_counts(back, h)
    assert back.total_count == h.total_count
    # The wire format carries no exact extremes; the bucket-level ones survive.
    assert back.get_min_value() == h.get_min_value()
    assert back.get_max_value() == h.get_max_value()
    assert lh.percentiles_us(back, PERCENTILES) == lh.percentiles_us(h, PERCENTILES)


def test_encode_decode_empty():
    back = lh.decode(lh.encode(lh.new_histogram()))
    assert back.total_count == 0 and not any(back.counts)
    assert lh.summarize_ms(back)["max"] == 0.0


@pytest.mark.parametrize("block", [1, 7, 1000])
def test_block_boundaries(monkeypatch, block):
    """Recording is blocked internally; partial and tiny blocks must not change the result."""
    monkeypatch.setattr(lh, "_BLOCK", block)
    values = np.concatenate([SAMPLES["edges_shuffled_repeated"], SAMPLES["lognormal"][:3001], [-5, 3 * HI]])
    h = lh.new_histogram()
    assert lh.record_us(h, values) == int(np.count_nonzero(values > HI))
    assert_same(h, reference(values))
    h_ns = lh.new_histogram()
    lh.record_ns(h_ns, np.minimum(values, 2 * HI) * 1000 + 499)
    assert_same(h_ns, h)


def test_percentiles_ms_are_percentile_ms_each_in_one_pass() -> None:
    from loadgen.engine.histogram import new_histogram, percentile_ms, percentiles_ms, record_us

    h = new_histogram()
    assert percentiles_ms(h, [50, 99]) == []
    for v in (120, 900, 15_000, 15_000, 2_000_000):
        record_us(h, v)
    ps = [50, 95, 99, 99.9]
    assert percentiles_ms(h, ps) == [percentile_ms(h, p) for p in ps]
