"""Queue state from a Prometheus endpoint, through a QueueMetricMap."""

from __future__ import annotations

import time
from collections.abc import Callable

from loadgen.collectors.base import Sample, Source, SourceFailure
from loadgen.collectors.httpget import http_get
from loadgen.collectors.metric_map import MetricSelector
from loadgen.collectors.prometheus_text import Exposition
from loadgen.collectors.rates import CounterDelta
from loadgen.collectors.spec import PrometheusQueueSpec

from loadgen.samples import QueueSample

__all__ = ["PrometheusQueueSource"]

_ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"


class PrometheusQueueSource(Source):
    """Scrapes ``spec.url`` each sample; gauges are read as they are, counters as deltas over the period."""

    def __init__(
        self,
        spec: PrometheusQueueSpec,
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(f"queue:{spec.label}", secrets=[spec.password or ""])
        self.spec = spec
        self._timeout_s = timeout_s
        self._clock = clock
        self._what = f"the metrics endpoint {spec.display.split(':', 1)[1]} of queue {spec.label}"
        self._last_mono: float | None = None
        self._published = CounterDelta()
        self._consumed = CounterDelta()
        self._failed = CounterDelta()
        self._time_sum = CounterDelta()
        self._time_count = CounterDelta()

    def _sample(self) -> list[Sample]:
        body = http_get(
            self.spec.url,
            username=self.spec.username,
            password=self.spec.password,
            timeout_s=self._timeout_s,
            accept=_ACCEPT,
            what=self._what,
        )
        mono, ts = time.monotonic(), self._clock()
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

        elapsed = None if self._last_mono is None else mono - self._last_mono
        self._last_mono = mono
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
                published_per_s=_per_second(published, elapsed),
                consumed_per_s=_per_second(consumed, elapsed),
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


def _per_second(delta: float | None, elapsed: float | None) -> float | None:
    if delta is None or not elapsed or elapsed <= 0:
        return None
    return delta / elapsed
