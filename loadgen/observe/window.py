"""Latency quantiles over a sliding window of intervals, merged exactly.

Each interval's histogram is kept as its non-zero counters only
(:class:`SparseCounts`), so a window of N intervals costs what was recorded,
not N full histograms; the merged counts are updated by adding the newest and
subtracting the oldest. The quantiles are hdrh's percentiles of that merge,
clamped to the recorded min and max as in the summary.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engine.histogram import Layout

__all__ = ["LatencyWindow", "SparseCounts"]

_EMPTY_I = np.empty(0, dtype=np.intp)
_EMPTY_U = np.empty(0, dtype=np.uint64)


@dataclass(frozen=True, eq=False, slots=True)
class SparseCounts:
    """One interval's histogram as its non-zero counters, with its count and extremes (µs)."""

    index: np.ndarray  # ascending counter indices
    counts: np.ndarray  # uint64, one per index
    total: int
    min_us: int
    max_us: int

    @classmethod
    def of(cls, prefix: np.ndarray, total: int, min_us: int, max_us: int) -> SparseCounts:
        """From a counts prefix (see :meth:`Layout.prefix`)."""
        index = np.flatnonzero(prefix != 0)
        return cls(index, prefix[index], total, min_us, max_us)

    @classmethod
    def merged(cls, parts: Sequence[SparseCounts]) -> SparseCounts:
        """Several endpoints' histograms of one interval as one (names folded into ``__other__``)."""
        if len(parts) == 1:
            return parts[0]
        live = [p for p in parts if p.total]
        if not live:
            return EMPTY
        index, inverse = np.unique(np.concatenate([p.index for p in live]), return_inverse=True)
        counts = np.zeros(index.size, dtype=np.uint64)
        np.add.at(counts, inverse, np.concatenate([p.counts for p in live]))
        total = sum(p.total for p in live)
        return cls(index, counts, total, min(p.min_us for p in live), max(p.max_us for p in live))


EMPTY = SparseCounts(_EMPTY_I, _EMPTY_U, 0, 0, 0)


class LatencyWindow:
    """The last N intervals of one endpoint's latencies, merged exactly."""

    __slots__ = ("entries", "counts", "total")

    def __init__(self, size: int) -> None:
        self.entries: deque[SparseCounts] = deque(maxlen=size)  # empty intervals keep their place
        self.counts = np.zeros(0, dtype=np.uint64)
        self.total = 0

    def push(self, part: SparseCounts) -> bool:
        """Add an interval (dropping the oldest); returns whether the merged histogram changed."""
        changed = False
        if len(self.entries) == self.entries.maxlen:
            old = self.entries[0]
            if old.total:
                self.counts[old.index] -= old.counts
                self.total -= old.total
                changed = True
        self.entries.append(part)
        if part.total:
            need = int(part.index[-1]) + 1
            if need > self.counts.size:
                grown = np.zeros(max(need, 2 * self.counts.size), dtype=np.uint64)
                grown[: self.counts.size] = self.counts
                self.counts = grown
            self.counts[part.index] += part.counts
            self.total += part.total
            changed = True
        return changed

    def quantiles_s(self, layout: Layout, percents: Sequence[float]) -> list[float] | None:
        """The window's percentiles in seconds, clamped to its extremes; None when it is empty."""
        if not self.total:
            return None
        live = [e for e in self.entries if e.total]
        limit = max(int(e.index[-1]) for e in live) + 1
        lo = min(e.min_us for e in live)
        hi = max(e.max_us for e in live)
        cumulative = np.cumsum(self.counts[:limit])
        return [min(max(v, lo), hi) / 1e6 for v in layout.values_at(cumulative, self.total, percents)]
