"""Collectors that sample beside a run: services' resources and queues. Installed as ``loadgen.collectors``.

Typical use, beside a run (sampling in a child process, sinks called in a relay thread here)::

    from loadgen.collectors import BufferSink, ProcessCollectorRunner, parse_monitors, parse_queues

    services = parse_monitors(["api=pid:1234"])
    queues = parse_queues(["content=prometheus:http://127.0.0.1:8000/metrics"])
    buffer = BufferSink()
    with ProcessCollectorRunner(services, queues, [buffer], interval_s=1.0) as runner:
        ...                      # the run; buffer.drain() from any thread
    runner.errors                # sources that failed: first message, count, still failing?

``CollectorRunner(build_sources(services, queues), sinks)`` does the same in a
thread of this process (fine when this process is mostly idle).
"""

from loadgen.collectors.base import Sample, Source, SourceFailure
from loadgen.collectors.build import build_sources, queue_source
from loadgen.collectors.metric_map import PRESETS, MetricSelector, QueueMetricMap, parse_selector
from loadgen.collectors.process_runner import ProcessCollectorRunner
from loadgen.collectors.queue_prometheus import PrometheusQueueSource
from loadgen.collectors.queue_rabbitmq import RabbitMQQueueSource
from loadgen.collectors.queue_redis import RedisQueueSource
from loadgen.collectors.resources import ResourceSource, resolve_processes
from loadgen.collectors.runner import BufferSink, CollectorRunner, Sink, SourceError
from loadgen.collectors.spec import (
    GENERATOR_LABEL,
    PrometheusQueueSpec,
    QueueSpec,
    RabbitMQQueueSpec,
    RedisQueueSpec,
    ServiceSpec,
    generator_service,
    parse_monitor,
    parse_monitors,
    parse_queue,
    parse_queues,
    queue_from_option,
)

__all__ = [
    "GENERATOR_LABEL",
    "PRESETS",
    "BufferSink",
    "CollectorRunner",
    "MetricSelector",
    "ProcessCollectorRunner",
    "PrometheusQueueSource",
    "PrometheusQueueSpec",
    "QueueMetricMap",
    "QueueSpec",
    "RabbitMQQueueSource",
    "RabbitMQQueueSpec",
    "RedisQueueSource",
    "RedisQueueSpec",
    "ResourceSource",
    "Sample",
    "ServiceSpec",
    "Sink",
    "Source",
    "SourceError",
    "SourceFailure",
    "build_sources",
    "generator_service",
    "parse_monitor",
    "parse_monitors",
    "parse_queue",
    "parse_queues",
    "parse_selector",
    "queue_from_option",
    "queue_source",
    "resolve_processes",
]
