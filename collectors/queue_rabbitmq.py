"""Queue state from RabbitMQ's management HTTP API (``GET /api/queues/{vhost}/{name}``).

- ``length`` = ``messages_ready`` (waiting for a consumer; unacknowledged ones are not counted);
- ``published_per_s`` = ``message_stats.publish_details.rate``;
- ``consumed_per_s`` = ``message_stats.deliver_get_details.rate`` (deliveries and basic.get);
- ``error_rate`` = redeliveries / deliveries (a redelivery means an earlier delivery
  was rejected, nacked or lost with its consumer);
- ``backlog_age_s`` from ``head_message_timestamp`` when publishers set the
  message ``timestamp`` property (classic queues report it), else None.

The rates are RabbitMQ's own, smoothed over its statistics interval (5 s by
default): its cumulative counters only move once per interval, so deltas per
1 s sample would be mostly zeros and an occasional spike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from loadgen.collectors.base import Sample, SourceFailure
from loadgen.collectors.httpget import HTTPStatusFailure
from loadgen.collectors.queue_base import HTTPQueueSource
from loadgen.collectors.spec import RabbitMQQueueSpec

from loadgen.samples import QueueSample

__all__ = ["RabbitMQQueueSource"]


def _rate(stats: Mapping[str, Any], name: str) -> float | None:
    details = stats.get(f"{name}_details")
    if isinstance(details, Mapping) and isinstance(details.get("rate"), int | float):
        return float(details["rate"])
    return None


class RabbitMQQueueSource(HTTPQueueSource[RabbitMQQueueSpec]):
    """One ``GET`` of the queue per sample."""

    reads = RabbitMQQueueSpec

    @property
    def _what(self) -> str:
        return f"the RabbitMQ management API ({self.spec.display.split('=', 1)[1]})"

    def _sample(self) -> list[Sample]:
        try:
            body = self._get(self.spec.queue_url, "application/json")
        except HTTPStatusFailure as exc:
            if exc.status == 404:
                raise SourceFailure(
                    f"RabbitMQ has no queue {self.spec.queue!r} in vhost {self.spec.vhost!r} "
                    f"(queue {self.spec.label})."
                ) from None
            raise
        ts = self._clock()
        try:
            info = json.loads(body)
        except ValueError:
            raise SourceFailure(
                f"{self._what} did not answer JSON; is it the management API's address?"
            ) from None
        if not isinstance(info, Mapping):
            raise SourceFailure(f"{self._what} answered an unexpected JSON document.")
        stats = info.get("message_stats") or {}
        deliveries = _rate(stats, "deliver_get")
        redeliveries = _rate(stats, "redeliver")
        error_rate = None
        if deliveries and redeliveries is not None:
            error_rate = min(1.0, redeliveries / deliveries)
        ready = info.get("messages_ready")
        head = info.get("head_message_timestamp")
        backlog_age = None
        if isinstance(head, int | float) and not isinstance(head, bool):
            backlog_age = max(0.0, ts - float(head))
        elif ready == 0:
            backlog_age = 0.0
        return [
            QueueSample(
                ts=ts,
                queue=self.spec.label,
                source="rabbitmq",
                length=float(ready) if isinstance(ready, int | float) else None,
                published_per_s=_rate(stats, "publish"),
                consumed_per_s=deliveries,
                error_rate=error_rate,
                backlog_age_s=backlog_age,
            )
        ]
