"""Configuration of the demo target.

One frozen value object so the CLI, the tests and the running app all agree on
what the target was asked to do; :meth:`DemoConfig.validate` turns bad values
into one-sentence :class:`~loadgen.errors.UsageError` s before anything binds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadgen.errors import UsageError

__all__ = ["CONTENT_TYPES", "DemoConfig"]

#: The content types the job queue knows, cheapest first.
CONTENT_TYPES: tuple[str, ...] = ("simple", "medium", "complex")


def _non_negative(value: float) -> bool:
    """True for finite numbers >= 0 (NaN and inf are rejected, not silently accepted)."""
    return math.isfinite(value) and value >= 0


@dataclass(frozen=True)
class DemoConfig:
    """Everything that shapes the demo target's behaviour under load."""

    host: str = "127.0.0.1"
    port: int = 8000
    latency_ms: float = 0.0  # added to every API response, to simulate a slower version
    error_rate: float = 0.0  # fraction of API requests answered 500 {"error": "injected"}
    workers: int = 4  # background job-queue workers
    token_ttl_s: float = 300.0  # access-token lifetime
    refresh_ttl_s: float = 3600.0  # refresh-token lifetime (bounds memory under login-heavy load)
    freeze_every_s: float = 0.0  # if > 0, the whole event loop blocks every freeze_every_s ...
    freeze_for_s: float = 0.0  # ... for freeze_for_s seconds, to simulate a stalled target
    seed: int | None = None  # seeds error injection and the campaign fixtures
    simple_s: float = 0.05  # processing time of a "simple" content job
    medium_s: float = 0.2  # processing time of a "medium" content job
    complex_s: float = 0.5  # processing time of a "complex" content job
    processing_scale: float = 1.0  # multiplies every processing time (speed jobs up in tests)

    @property
    def freezing(self) -> bool:
        """Whether the periodic event-loop freeze is enabled."""
        return self.freeze_every_s > 0

    def processing_time(self, content_type: str) -> float:
        """Seconds a job of ``content_type`` takes to process (KeyError if unknown)."""
        base = {"simple": self.simple_s, "medium": self.medium_s, "complex": self.complex_s}
        return base[content_type] * self.processing_scale

    def validate(self) -> None:
        """Raise UsageError on the first bad value, naming the option and the fix."""
        if not self.host:
            raise UsageError("The demo target host must not be empty.")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"The demo target port must be between 0 and 65535, got {self.port}.")
        if not _non_negative(self.latency_ms):
            raise UsageError(f"latency_ms must be a non-negative number, got {self.latency_ms}.")
        if not (math.isfinite(self.error_rate) and 0.0 <= self.error_rate <= 1.0):
            raise UsageError(f"error_rate must be between 0 and 1, got {self.error_rate}.")
        if self.workers < 1:
            raise UsageError(f"workers must be at least 1, got {self.workers}.")
        for name in ("token_ttl_s", "refresh_ttl_s"):
            value = getattr(self, name)
            if not (_non_negative(value) and value > 0):
                raise UsageError(f"{name} must be a positive number of seconds, got {value}.")
        if not _non_negative(self.freeze_every_s) or not _non_negative(self.freeze_for_s):
            raise UsageError("freeze_every_s and freeze_for_s must be non-negative numbers of seconds.")
        if self.freeze_for_s > 0 and not self.freezing:
            raise UsageError("freeze_for_s needs freeze_every_s > 0 to say how often the target freezes.")
        if self.freezing and self.freeze_for_s >= self.freeze_every_s:
            raise UsageError(
                f"freeze_for_s ({self.freeze_for_s}) must be shorter than freeze_every_s "
                f"({self.freeze_every_s}), or the target never unfreezes."
            )
        for name in ("simple_s", "medium_s", "complex_s", "processing_scale"):
            if not _non_negative(getattr(self, name)):
                raise UsageError(f"{name} must be a non-negative number, got {getattr(self, name)}.")
