"""What the regression comparison needs of one completed run (the store builds these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

__all__ = ["EndpointStats", "RunStats"]


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint (or ``total``) over a whole run."""

    requests: int
    errors: int
    duration_s: float  #: the run's duration (throughput is requests / duration_s)
    latency: HdrHistogram  #: the endpoint's merged HDR histogram (µs) for the whole run


@dataclass(frozen=True, slots=True)
class RunStats:
    """What the comparison needs of one completed run."""

    run_id: str
    app_version: str | None
    started_at: float  #: seconds since the epoch
    scenario: str | None
    test_type: str
    #: "METHOD name" -> stats, plus "total" for the whole run.
    endpoints: Mapping[str, EndpointStats]
    #: service -> {"cpu_percent": mean CPU % over the run, "memory_bytes": peak RSS}; may be empty.
    resources: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: queue -> mean length over the run; may be empty.
    queues: Mapping[str, float] = field(default_factory=dict)
