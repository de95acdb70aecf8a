"""From specs to sources."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from loadgen.collectors.base import Source
from loadgen.collectors.queue_base import QueueSource
from loadgen.collectors.queue_prometheus import PrometheusQueueSource
from loadgen.collectors.queue_rabbitmq import RabbitMQQueueSource
from loadgen.collectors.queue_redis import RedisQueueSource
from loadgen.collectors.resources import ResourceSource, own_lineage
from loadgen.collectors.spec import QueueSpec, ServiceSpec, generator_service

__all__ = ["build_sources", "queue_source"]

#: One source class per kind of queue spec (each names the spec it ``reads``).
QUEUE_SOURCES: tuple[type[QueueSource[Any]], ...] = (
    PrometheusQueueSource,
    RedisQueueSource,
    RabbitMQQueueSource,
)


def queue_source(spec: QueueSpec, *, timeout_s: float = 2.0) -> Source:
    """The source that reads ``spec``."""
    for source in QUEUE_SOURCES:
        if isinstance(spec, source.reads):
            return source(spec, timeout_s=timeout_s)
    raise TypeError(f"not a queue spec: {spec!r}")


def build_sources(
    services: Iterable[ServiceSpec] = (),
    queues: Iterable[QueueSpec] = (),
    *,
    include_generator: bool = True,
    generator_pid: int | None = None,
    timeout_s: float = 2.0,
) -> list[Source]:
    """One source per service and queue, the built-in "generator" service first (unless excluded).

    ``generator_pid`` is loadgen's process (default: this one; a collector
    child process passes its parent's). ``timeout_s`` bounds each network read
    of a queue source.
    """
    exclude = own_lineage()
    specs = list(services)
    if include_generator:
        specs.insert(0, generator_service(generator_pid if generator_pid is not None else os.getpid()))
    sources: list[Source] = [ResourceSource(spec, exclude=exclude) for spec in specs]
    sources.extend(queue_source(spec, timeout_s=timeout_s) for spec in queues)
    return sources
