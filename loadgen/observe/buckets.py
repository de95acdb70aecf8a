"""Prometheus histogram buckets filled from HDR histograms, a whole interval at a time.

A bucket ``le=B`` counts the values HDR cannot tell from ``<= B``: every HDR
counter whose lowest value is ``<= B``. That is exact for bounds up to
2.047 ms (HDR keeps single microseconds there) and within HDR's 3 significant
figures (0.1 %) above. The sum is the sum of counter midpoints, as hdrh's mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prometheus_client.utils import floatToGoString

from ..engine.histogram import Layout

__all__ = ["BucketBounds", "CumulativeBuckets"]


@dataclass(frozen=True, eq=False)
class BucketBounds:
    """One histogram family's bounds: as ``le`` labels, and as segments of HDR counters."""

    layout: Layout
    #: ``le="..."`` of each bound, then ``le="+Inf"``.
    labels: tuple[str, ...]
    #: ``[0, idx(b0) + 1, idx(b1) + 1, ...]``: ``reduceat`` segments ending at each bound's counter.
    edges: np.ndarray

    @classmethod
    def of(cls, bounds_s: Sequence[float], layout: Layout) -> BucketBounds:
        bounds = sorted(bounds_s)
        idx = [layout.index_of_us(round(b * 1e6)) for b in bounds]
        if any(b >= a for a, b in zip(idx[1:], idx)):
            raise ValueError(f"bucket bounds {bounds} are not distinct at HDR resolution")
        labels = tuple(f'le="{floatToGoString(b)}"' for b in bounds) + ('le="+Inf"',)
        return cls(layout, labels, np.array([0, *(i + 1 for i in idx)], dtype=np.intp))


class CumulativeBuckets:
    """A cumulative Prometheus histogram (buckets, count, sum) fed from HDR histograms."""

    __slots__ = ("bounds", "le", "count", "sum_us")

    def __init__(self, bounds: BucketBounds) -> None:
        self.bounds = bounds
        self.le = np.zeros(len(bounds.labels) - 1, dtype=np.int64)  # cumulative: values <= each bound
        self.count = 0
        self.sum_us = 0

    def add(self, counts: np.ndarray, total: int) -> None:
        """Add one histogram, given as its counts prefix (see :meth:`Layout.prefix`)."""
        if not total:
            return
        edges = self.bounds.edges
        k = int(np.searchsorted(edges, counts.size, side="left")) - 1  # bounds inside the prefix
        if k > 0:
            seg = np.add.reduceat(counts, edges[: k + 1])  # k+1 segments; the last runs to the end
            self.le[:k] += np.cumsum(seg[:k]).astype(np.int64)
        self.le[k:] += total
        self.count += total
        # The midpoints are never negative: read as uint64 they keep the dot product integral.
        self.sum_us += int(np.dot(counts, self.bounds.layout.midpoints[: counts.size].view(np.uint64)))
