"""Samples the collectors take beside a run: a service's resources, a queue's state.

Plain frozen values, so a collector thread can hand them to the store writer,
the metrics endpoint and the comparison without sharing anything mutable.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResourceSample", "QueueSample"]


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One reading of one service's resources (a service may be several processes, summed)."""

    ts: float  #: wall clock, seconds since the epoch
    service: str  #: the label the user gave the service ("generator" for loadgen itself)
    pids: tuple[int, ...]  #: the processes summed into this reading
    cpu_percent: float  #: % of one core, over the time since the previous sample
    rss_bytes: int
    threads: int
    #: Cumulative counters as the OS reports them (per process, summed).
    disk_read_bytes: int | None
    disk_write_bytes: int | None
    net_sent_bytes: int | None
    net_recv_bytes: int | None
    #: "process" when the network counters are the process's own, "system" when host-wide.
    net_scope: str = "process"


@dataclass(frozen=True, slots=True)
class QueueSample:
    """One reading of one queue; a field is None when its source cannot tell."""

    ts: float  #: wall clock, seconds since the epoch
    queue: str  #: the queue's name as the user labelled it
    source: str  #: "prometheus", "redis" or "rabbitmq"
    length: float | None = None  #: messages waiting
    processing_time_s: float | None = None  #: mean time to process one message, over the last sample period
    published_per_s: float | None = None
    consumed_per_s: float | None = None
    error_rate: float | None = None  #: failed / processed over the last sample period
    backlog_age_s: float | None = None  #: age of the oldest waiting message
