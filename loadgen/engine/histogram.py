"""Latency histograms: hdrh ``HdrHistogram`` filled in bulk with numpy.

Why: ``HdrHistogram.record_value`` is pure Python (~0.6-0.9 µs a call), about
10 % of the per-request CPU budget. The hot path therefore only appends raw
integer nanoseconds to an ``array.array('q')``; once per second, off the hot
path, :func:`record_ns` folds a whole buffer into the histogram in a few
vectorised passes. The result is bit-for-bit what calling ``record_value`` per
(rounded, clamped) value would produce -- same counts array, ``total_count``,
``min_value`` and ``max_value`` -- so hdrh's own encoding, merging and
percentiles stay exact.

Measured (AMD EPYC, 2 vCPU, numpy 2.4, lognormal latencies from an
``array.array('q')``): ``record_ns`` ~3.6 ns/value for 100k values (~0.36 ms
per buffer; ~20 µs fixed cost, so 1k values is ~20 ns/value), versus
~550 ns/value for a ``record_value`` loop -- about 150x cheaper.

How the counts index is computed: hdrh's ``_counts_index_for`` is
``bucket = bit_length(v | sub_bucket_mask) - unit_magnitude - (h + 1)``,
``sub = v >> (bucket + unit_magnitude)``, ``index = ((bucket + 1) << h) + sub - 2**h``
(``h`` = ``sub_bucket_half_count_magnitude``). For ``v >= 2**(h + unit_magnitude)``
(where the mask does not matter) that is the binary exponent and top ``h``
mantissa bits of ``float(v)``: ``(float64 bits of v >> (52 - h)) - ((1022 +
unit_magnitude + h) << h)`` -- one shift and one subtraction, ~3x cheaper than
``np.frexp`` plus a per-element variable shift. Smaller values (the mask makes
their bucket 0) have index ``v >> unit_magnitude``; both cases are merged
without a masked select (see ``_record``). float64 holds integers below 2**53
exactly, so this is exact while ``highest_trackable_value < 2**53`` (values are
clamped to it first); the tests check it against ``record_value``, including
every power of two +-1.
"""

from __future__ import annotations

import array
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000 * 24  # a day in µs; at least one hour is required
SIGNIFICANT_FIGURES = 3

_MAX_EXACT_FLOAT_INT = 2**53

# The hot-path buffer type, a numpy integer array, or anything exposing an
# integer buffer (e.g. a memoryview of int64).
IntValues = array.array | np.ndarray | memoryview | Sequence[int]


# Memory: a histogram covering the whole range (1 µs to a day) holds 28,672 counters of
# 8 bytes (224 KiB), and a run kept three per endpoint (latency, service time, TTFB) plus
# one per endpoint and interval: 1,000 names took ~790 KiB each (tests/test_recorder.py
# measures RSS). The counters of hdrh's layout do not depend on the highest trackable value
# (only on the lowest and the significant figures): a shorter histogram has the same
# counters, cut at its top bucket. So histograms start with one bucket pair (values below
# 2,048 µs, 16 KiB) and grow in place, a bucket at a time, to the largest value recorded or
# merged; the logical range stays a day, and counts, percentiles, extremes and encodings
# (decoded) are exactly what the full-range histogram gives. Measured with
# /tmp/mem_names.py-style runs (1,002 names, 1 ms latencies, one row each): ~790 KiB per
# name before, ~60 KiB after (numbers unchanged: tests/test_histogram.py).
_GROWABLE = "_loadgen_growable"


def new_histogram() -> HdrHistogram:
    """Return an empty histogram in µs: 1 µs resolution, 3 significant figures, up to a day
    (its counters grow on demand as values arrive; see above)."""
    hist = HdrHistogram(LOWEST_US, _bucket_top(1), SIGNIFICANT_FIGURES)
    setattr(hist, _GROWABLE, True)
    return hist


def full_histogram() -> HdrHistogram:
    """An empty histogram with every counter of the range allocated (a template for layouts)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def _bucket_top(buckets: int) -> int:
    """The highest value a histogram of this layout with ``buckets`` buckets holds (capped at a day)."""
    return min((2048 << (buckets - 1)) - 1, HIGHEST_US)


def _made_here(hist: HdrHistogram) -> bool:
    """Whether ``hist`` has the layout of :func:`new_histogram` (made here, or decoded from one)."""
    return hist.lowest_trackable_value == LOWEST_US and hist.significant_figures == SIGNIFICANT_FIGURES


def _growable(hist: HdrHistogram) -> bool:
    return getattr(hist, _GROWABLE, False) and hist.highest_trackable_value < HIGHEST_US


def _grow(hist: HdrHistogram, value_us: int) -> None:
    """Grow a histogram made here, in place, until it holds ``value_us`` (at most a day)."""
    if value_us <= hist.highest_trackable_value or not _growable(hist):
        return
    buckets = max(1, (int(value_us) >> 11).bit_length() + 1)
    fresh = HdrHistogram(LOWEST_US, _bucket_top(buckets), SIGNIFICANT_FIGURES, hist.word_size)
    np.ctypeslib.as_array(fresh.counts)[: hist.counts_len] = _counts_view(hist)
    # hdrh keeps the counters in its encoder's payload: move both over, and the sizes.
    fresh.encoder.histogram = hist
    hist.encoder = fresh.encoder
    hist.counts = fresh.counts
    hist.counts_len = fresh.counts_len
    hist.bucket_count = fresh.bucket_count
    hist.highest_trackable_value = fresh.highest_trackable_value


def _ceiling(hist: HdrHistogram) -> int:
    """Where values are clamped: a day for histograms made here, else the histogram's own top."""
    return HIGHEST_US if getattr(hist, _GROWABLE, False) else int(hist.highest_trackable_value)


def _as_int64(values: IntValues) -> np.ndarray:
    """View (no copy for int64 buffers) the input as a flat int64 array; reject non-integers.

    Floats are refused rather than truncated: silently flooring 1.9 µs to 1 µs
    would bias every percentile downwards.
    """
    a = np.asarray(values)
    if a.size == 0:
        return np.empty(0, dtype=np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"integer values required, got dtype {a.dtype}")
    if a.dtype == np.uint64:
        # Would wrap to negative (and be clamped to 0) when cast to int64.
        a = np.minimum(a, np.iinfo(np.int64).max)
    return a.astype(np.int64, copy=False).reshape(-1)


def _counts_view(hist: HdrHistogram) -> np.ndarray:
    """Zero-copy numpy view of the histogram's ctypes counts array (uint64 for word_size 8)."""
    return np.ctypeslib.as_array(hist.counts)


# -- what each counter stands for ----------------------------------------------------


@dataclass(frozen=True, eq=False)
class Layout:
    """The values each counter of an hdrh counts array stands for, µs, indexed like ``counts``.

    hdrh answers these one index at a time in Python; the mean, the percentiles and the
    ``/metrics`` buckets need thousands at once, so they are computed here once per layout
    (see :func:`layout_of`), from hdrh's ``get_value_from_index``: for index ``i``, bucket
    ``max((i >> h) - 1, 0)``, sub-bucket ``i`` below ``2**h``, else ``(i & (2**h - 1)) + 2**h``.
    """

    unit_magnitude: int
    sub_bucket_half_count_magnitude: int
    #: Lowest value of each counter; strictly increasing, so a value's counter is a bisection.
    lowest: np.ndarray
    #: Midpoint of each counter (what hdrh's mean counts a value as).
    midpoints: np.ndarray
    #: Highest value of each counter (what hdrh's percentiles report).
    highest: np.ndarray

    @classmethod
    def build(cls, unit_magnitude: int, half_magnitude: int, counts_len: int) -> Layout:
        index = np.arange(counts_len, dtype=np.int64)
        half = 1 << half_magnitude
        bucket = np.maximum((index >> half_magnitude) - 1, 0)
        sub = np.where(index >= half, (index & (half - 1)) + half, index)
        shift = bucket + unit_magnitude
        lowest = sub << shift
        size = np.int64(1) << shift
        return cls(unit_magnitude, half_magnitude, lowest, lowest + (size >> 1), lowest + size - 1)

    @property
    def counts_len(self) -> int:
        return int(self.lowest.size)

    def fits(self, hist: HdrHistogram) -> bool:
        """Whether ``hist`` has these counters (any length up to ours: histograms grow) of 8 bytes."""
        return (
            hist.counts_len <= self.counts_len
            and hist.unit_magnitude == self.unit_magnitude
            and hist.sub_bucket_half_count_magnitude == self.sub_bucket_half_count_magnitude
            and hist.word_size == 8
        )

    def index_of_us(self, value_us: int) -> int:
        """hdrh's ``get_counts_array_index``, with values past the last counter in the last."""
        index = int(np.searchsorted(self.lowest, max(int(value_us), 0), side="right")) - 1
        return min(index, self.counts_len - 1)

    def prefix(self, hist: HdrHistogram) -> np.ndarray:
        """A view of the counts of ``hist`` (which :meth:`fits`) up to its max value; the rest are zero."""
        return np.frombuffer(hist.counts, dtype=np.uint64, count=self.index_of_us(hist.max_value) + 1)

    def values_at(self, cumulative: np.ndarray, total: int, percents: Iterable[float]) -> list[int]:
        """hdrh's ``get_value_at_percentile`` of each percent, from cumulative counts (from index 0)
        of ``total`` values: the top of the counter reaching the target count (its bottom for
        p = 0), 0 when none does (an empty histogram)."""
        out: list[int] = []
        for p in percents:
            target = max(int((min(p, 100.0) * total / 100) + 0.5), 1)
            index = int(np.searchsorted(cumulative, np.uint64(target), side="left"))
            if index >= cumulative.size:
                out.append(0)
            else:
                out.append(int((self.highest if p else self.lowest)[index]))
        return out


_LAYOUTS: dict[tuple[int, int], Layout] = {}


@functools.cache
def _full_counts_len() -> int:
    return int(full_histogram().counts_len)


def layout_of(hist: HdrHistogram) -> Layout:
    """The :class:`Layout` of ``hist``'s counters, computed once per layout and long enough for
    ``hist`` (for the histograms made here: for their whole range, 1 µs to a day)."""
    key = (int(hist.unit_magnitude), int(hist.sub_bucket_half_count_magnitude))
    need = int(hist.counts_len)
    if _made_here(hist):
        need = max(need, _full_counts_len())
    known = _LAYOUTS.get(key)
    if known is None or known.counts_len < need:
        known = _LAYOUTS[key] = Layout.build(*key, need)
    return known


def full_layout() -> Layout:
    """The layout of every histogram :func:`new_histogram` makes, over its whole range."""
    return layout_of(new_histogram())


# Values are processed in blocks so that the int64/float64 temporaries (3 x
# 128 KiB) stay in L2 and are reused: one-shot full-size temporaries (800 KB
# each for 100k values) cost ~2x more, mostly page faults on fresh mmap'd memory.
_BLOCK = 16_384


def _record(hist: HdrHistogram, values: IntValues, ns: bool) -> int:
    """Shared body of :func:`record_ns` / :func:`record_us`; returns the count clamped high."""
    src = _as_int64(values)
    n = int(src.size)
    if n == 0:
        return 0
    hi = _ceiling(hist)
    if hi >= _MAX_EXACT_FLOAT_INT:  # the float64 index trick is exact below 2**53 only
        raise ValueError("vectorised recording needs highest_trackable_value < 2**53")
    # In input units: the largest value left unclamped, and the first one that rounds above hi.
    top, over = (hi * 1000, hi * 1000 + 500) if ns else (hi, hi + 1)  # < 2**63 as hi < 2**53
    mn, mx = int(src.min()), int(src.max())
    _grow(hist, min(max(mx, 0), top) // 1000 + 1 if ns else min(max(mx, 0), top))
    clamped = int(np.count_nonzero(src >= over)) if mx >= over else 0
    clip = mn < 0 or mx >= over  # clipping first also keeps ns + 500 from overflowing

    h = hist.sub_bucket_half_count_magnitude
    u = hist.unit_magnitude
    small = 1 << (h + u)  # values below this sit in the first half bucket: index v >> u
    offset = ((1022 + u + h) << h) + (1 << h)
    counts = _counts_view(hist)
    size = min(_BLOCK, n)
    buf = np.empty(size, np.int64)
    tmp = np.empty(size, np.int64)
    flt = np.empty(size, np.float64)
    bits = flt.view(np.int64)
    for start in range(0, n, _BLOCK):
        block = src[start : start + _BLOCK]
        m = block.size
        us, t, f, b = buf[:m], tmp[:m], flt[:m], bits[:m]
        if clip:
            np.clip(block, 0, top, out=us)
            block = us
        if ns:
            np.add(block, 500, out=us)  # nearest µs, halves up
            np.floor_divide(us, 1000, out=us)
        else:
            us = block  # read only
        # index = bits(float(max(v, small))) >> (52 - h) - offset + (min(v, small) >> u):
        # for v >= small the second term cancels the 2**h in offset; for v < small the
        # first term is the index of `small` (2**h) and the second supplies v >> u.
        np.maximum(us, small, out=t)
        np.copyto(f, t)
        b >>= 52 - h
        np.minimum(us, small, out=t)
        if u:
            t >>= u
        b += t
        b -= offset
        bins = np.bincount(b)  # length max index + 1 <= counts_len, as values are clamped
        window = counts[: bins.size]
        np.add(window, bins, out=window, casting="unsafe")

    # Rounding and clamping are monotonic, so the extremes map directly.
    def to_us(v: int) -> int:
        v = min(max(v, 0), top)
        return (v + 500) // 1000 if ns else v

    hist.total_count += n
    hist.min_value = min(hist.min_value, to_us(mn))
    hist.max_value = max(hist.max_value, to_us(mx))
    return clamped


def record_us(hist: HdrHistogram, values_us: IntValues) -> int:
    """Record integer µs values as ``record_value`` would; return how many were clamped high.

    Negatives are clamped to 0 and values above ``hist.highest_trackable_value``
    to it (``record_value`` would drop negatives and keep values up to the end
    of the last bucket): a clock glitch or a hung request must still count as a
    request, and the return value lets the caller report how many saturated.
    The input is never modified.
    """
    return _record(hist, values_us, ns=False)


def record_ns(hist: HdrHistogram, values_ns: IntValues) -> int:
    """Record integer nanoseconds into a µs histogram; return how many were clamped high.

    Each value becomes ``(ns + 500) // 1000`` (nearest µs, halves up), then is
    clamped to [0, ``hist.highest_trackable_value``] as in :func:`record_us`.
    The input buffer is never modified, so it can be reused after the call.
    """
    return _record(hist, values_ns, ns=True)


def percentiles_us(hist: HdrHistogram, ps: Iterable[float]) -> list[int]:
    """``[hist.get_value_at_percentile(p) for p in ps]`` with one cumsum instead of Python loops.

    hdrh walks up to ~28k counts in Python per call (milliseconds at the tail);
    here it is a ``cumsum`` + ``searchsorted``, tens of µs.
    """
    ps = list(ps)
    if not ps:
        return []
    cumulative = np.cumsum(_counts_view(hist), dtype=np.uint64)
    return layout_of(hist).values_at(cumulative, int(hist.total_count), ps)


def percentile_us(hist: HdrHistogram, p: float) -> int:
    """Identical to ``hist.get_value_at_percentile(p)``, vectorised (see :func:`percentiles_us`)."""
    return percentiles_us(hist, (p,))[0]


def mean_us(hist: HdrHistogram) -> float:
    """Identical to ``hist.get_mean_value()`` (mean of bucket midpoints), vectorised.

    hdrh iterates the recorded buckets in Python (~30 ms for a typical run).
    The weighted sum is kept exact with integer arithmetic like hdrh's.
    """
    if not hist.total_count:
        return 0.0
    counts = _counts_view(hist)
    nz = np.flatnonzero(counts)
    median = layout_of(hist).midpoints[nz]
    weights = counts[nz]
    if int(hist.total_count) * int(median[-1]) < 2**63:
        total = int(np.dot(weights.astype(np.int64), median))
    else:  # would overflow int64: fall back to Python ints
        total = sum(c * m for c, m in zip(weights.tolist(), median.tolist()))
    return float(total) / hist.total_count


_SUMMARY_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def summarize_ms(hist: HdrHistogram) -> dict[str, float]:
    """Percentiles, max, mean and min in milliseconds; all 0.0 for an empty histogram.

    Choice for max/min: the *recorded* extremes (``hist.max_value`` /
    ``hist.min_value``), exact for histograms filled by this module or merged
    with :func:`merge`, rather than ``get_max_value()``, which is the top of the
    max's bucket and can overstate the slowest request by up to 0.1 %. hdrh
    percentiles are likewise bucket tops, so a p99.9 falling in the max's
    bucket could exceed that exact max; percentiles and the mean (midpoint
    based) are therefore clamped into [min, max], keeping
    ``min <= p50 <= ... <= p999 <= max``. Clamping only moves a value towards
    the true one. After :func:`decode`, min/max are bucket edges (the wire
    format has no exact extremes).
    """
    if not hist.total_count:
        return {**{k: 0.0 for k in _SUMMARY_PERCENTILES}, "max": 0.0, "mean": 0.0, "min": 0.0}
    lo, hi = int(hist.min_value), int(hist.max_value)
    values = percentiles_us(hist, _SUMMARY_PERCENTILES.values())
    out = {k: _clamp_ms(v, lo, hi) for k, v in zip(_SUMMARY_PERCENTILES, values)}
    out["max"] = hi / 1000.0
    out["mean"] = min(max(mean_us(hist), lo), hi) / 1000.0
    out["min"] = lo / 1000.0
    return out


def _clamp_ms(value_us: int, lo: int, hi: int) -> float:
    return min(max(value_us, lo), hi) / 1000.0


def percentile_ms(hist: HdrHistogram, p: float) -> float:
    """Any percentile in ms, clamped into the recorded [min, max] exactly as
    :func:`summarize_ms` does, so it equals the summary's figure where both report one;
    0.0 for an empty histogram."""
    if not hist.total_count:
        return 0.0
    return _clamp_ms(percentile_us(hist, p), int(hist.min_value), int(hist.max_value))


def percentiles_ms(hist: HdrHistogram, ps: Iterable[float]) -> list[float]:
    """:func:`percentile_ms` of each of ``ps``, in one pass over the counts; [] for an empty histogram."""
    if not hist.total_count:
        return []
    lo, hi = int(hist.min_value), int(hist.max_value)
    return [_clamp_ms(v, lo, hi) for v in percentiles_us(hist, ps)]


def _same_layout(a: HdrHistogram, b: HdrHistogram) -> bool:
    """Same counters, possibly cut at different tops (see :func:`new_histogram`)."""
    return (
        a.unit_magnitude == b.unit_magnitude
        and a.sub_bucket_half_count_magnitude == b.sub_bucket_half_count_magnitude
        and a.word_size == b.word_size
    )


def merge(into: HdrHistogram, other: HdrHistogram) -> HdrHistogram:
    """Add ``other`` into ``into`` exactly and return ``into``.

    Not ``HdrHistogram.add``: it takes min/max from ``get_min_value()`` /
    ``get_max_value()``, i.e. bucket edges (recording 7000 µs then adding gives
    ``max_value`` 7003). Here counts, total and the raw min/max combine, so
    merging two halves equals recording the whole. Histograms with different
    layouts fall back to hdrh's (value-by-bucket) ``add``.
    """
    if not _same_layout(into, other):
        into.add(other)
        return into
    theirs = _counts_view(other)
    if other.counts_len > into.counts_len and other.total_count:
        nz = np.flatnonzero(theirs)
        if nz.size and nz[-1] >= into.counts_len:
            _grow(into, other.get_value_from_index(int(nz[-1])))
            if nz[-1] >= into.counts_len:  # a histogram not made here cannot grow
                into.add(other)
                return into
    if theirs.size > into.counts_len:
        theirs = theirs[: into.counts_len]  # zeros beyond, as checked above
    counts = _counts_view(into)[: theirs.size]
    np.add(counts, theirs, out=counts)
    into.total_count += other.total_count
    if other.total_count:
        into.min_value = min(into.min_value, other.min_value)
        into.max_value = max(into.max_value, other.max_value)
    # Same timestamp semantics as hdrh's add.
    into.start_time_stamp_msec = min(into.start_time_stamp_msec, other.start_time_stamp_msec)
    into.end_time_stamp_msec = max(into.end_time_stamp_msec, other.end_time_stamp_msec)
    return into


def encode(hist: HdrHistogram) -> bytes:
    """hdrh's compressed, base64 V2 encoding (interoperable with other HdrHistogram ports)."""
    return hist.encode()


def decode(data: bytes) -> HdrHistogram:
    """Inverse of :func:`encode`: same counts and total; min/max become bucket edges."""
    hist = HdrHistogram.decode(data)
    if _made_here(hist):
        setattr(hist, _GROWABLE, True)  # merged into, it grows like one made here
    return hist


__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_FIGURES",
    "decode",
    "encode",
    "Layout",
    "full_histogram",
    "full_layout",
    "layout_of",
    "mean_us",
    "merge",
    "new_histogram",
    "percentile_ms",
    "percentiles_ms",
    "percentile_us",
    "percentiles_us",
    "record_ns",
    "record_us",
    "summarize_ms",
]
