"""Reading the Prometheus text exposition format (via prometheus_client's parser)."""

from __future__ import annotations

import math
from collections import defaultdict

from loadgen.collectors.metric_map import MetricSelector
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Exposition"]


class Exposition:
    """One scrape's samples, indexed by sample name (``x_total``, ``h_sum``, ``h_count``, ``g``)."""

    def __init__(self, text: str) -> None:
        """Parse ``text``; raises ValueError when it is not the text exposition format."""
        self._series: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self._series[sample.name].append((sample.labels, float(sample.value)))

    def __contains__(self, name: str) -> bool:
        return name in self._series

    def total(self, selector: MetricSelector, suffix: str = "") -> float | None:
        """Sum of the series ``selector.name + suffix`` whose labels match; None when none does.

        NaN samples (a summary with no observations, say) are skipped.
        """
        series = self._series.get(selector.name + suffix)
        if not series:
            return None
        values = [v for labels, v in series if selector.matches(labels) and not math.isnan(v)]
        return math.fsum(values) if values else None

    def sum_of(self, selectors: tuple[MetricSelector, ...], suffix: str = "") -> float | None:
        """Sum over several selectors; None when none of them matches anything."""
        found = [v for s in selectors if (v := self.total(s, suffix)) is not None]
        return math.fsum(found) if found else None
