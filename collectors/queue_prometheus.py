"""Queue state from a Prometheus endpoint, through a QueueMetricMap."""

from __future__ import annotations

from typing import Unpack

from loadgen.collectors.base import Sample, SourceFailure
from loadgen.collectors.metric_map import MetricSelector
from loadgen.collectors.prometheus_text import Exposition
from loadgen.collectors.queue_base import HTTPQueueSource, Period, QueueOptions, per_second
from loadgen.collectors.rates import CounterDelta
from loadgen.collectors.spec import PrometheusQueueSpec

from loadgen.samples import QueueSample

__all__ = ["PrometheusQueueSource"]

_ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"


class PrometheusQueueSource(HTTPQueueSource[PrometheusQueueSpec]):
    """Scrapes ``spec.url`` each sample; gauges are read as they are, counters as deltas over the period."""

    reads = PrometheusQueueSpec

    def __init__(self, spec: PrometheusQueueSpec, **options: Unpack[QueueOptions]) -> None:
        super().__init__(spec, **options)
        self._period = Period()
        self._published = CounterDelta()
        self._consumed = CounterDelta()
        self._failed = CounterDelta()
        self._time_sum = CounterDelta()
        self._time_count = CounterDelta()

    @property
    def _what(self) -> str:
        return f"the metrics endpoint {self.spec.display.split(':', 1)[1]} of queue {self.spec.label}"

    def _sample(self) -> list[Sample]:
        body = self._get(self.spec.url, _ACCEPT)
        ts = self._clock()
        try:
            exposition = Exposition(body.decode("utf-8", errors="replace"))
        except (ValueError, TypeError, IndexError) as exc:
            detail = " ".join(str(exc).split())
            detail = detail if len(detail) <= 100 else detail[:97] + "..."
            raise SourceFailure(f"{self._what} is not in the Prometheus text format ({detail}).") from None
        metrics = self.spec.metrics
        if not any(self._present(exposition, s) for s in metrics.selectors()):
            names = ", ".join(sorted({s.name for s in metrics.selectors()}))
            raise SourceFailure(
                f"{self._what} exposes none of {names}; is it the right endpoint, or does it need "
                f"its own mapping (#length=...&published=...)?"
            )

        elapsed = self._period.next()
        published = self._published.update(exposition.sum_of(metrics.published))
        consumed = self._consumed.update(exposition.sum_of(metrics.consumed))
        failed = self._failed.update(exposition.sum_of(metrics.failed))
        return [
            QueueSample(
                ts=ts,
                queue=self.spec.label,
                source="prometheus",
                length=exposition.sum_of(metrics.length),
                processing_time_s=self._processing_time(exposition, metrics.processing_time),
                published_per_s=per_second(published, elapsed),
                consumed_per_s=per_second(consumed, elapsed),
                error_rate=(failed / consumed) if failed is not None and consumed else None,
                backlog_age_s=exposition.sum_of(metrics.backlog_age),
            )
        ]

    def _processing_time(self, exposition: Exposition, selectors: tuple[MetricSelector, ...]) -> float | None:
        """Mean over the period from histogram/summary _sum and _count; a plain gauge is taken as is."""
        if not selectors:
            return None
        if all(s.name + "_count" in exposition for s in selectors):
            total = self._time_sum.update(exposition.sum_of(selectors, "_sum"))
            count = self._time_count.update(exposition.sum_of(selectors, "_count"))
            if total is None or not count:
                return None  # first reading, a reset, or nothing processed in the period
            return total / count
        if len(selectors) == 1:
            return exposition.total(selectors[0])
        return None

    @staticmethod
    def _present(exposition: Exposition, selector: MetricSelector) -> bool:
        return any(selector.name + suffix in exposition for suffix in ("", "_count"))
