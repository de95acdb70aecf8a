"""Run configuration: parsed and validated once, then immutable.

Everything a user types (durations like ``1h30m``, stage lists like
``30s:100,1m:500``, URLs) is parsed here, so a bad value is rejected with one
sentence before any connection is opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from .errors import UsageError

__all__ = [
    "Stage",
    "RunConfig",
    "parse_duration",
    "parse_stages",
    "parse_url",
    "TEST_TYPES",
]

TEST_TYPES = ("load", "stress", "soak", "spike")
Model = Literal["open", "closed"]
Arrival = Literal["constant", "poisson"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """Seconds from ``30s``, ``5m``, ``1h30m``, ``250ms`` or a bare number of seconds."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = text.strip().lower()
        try:
            value = float(s)
        except ValueError:
            pos = 0
            value = 0.0
            for m in _DURATION_PART.finditer(s):
                if m.start() != pos:
                    break
                value += float(m.group(1)) * _UNIT_S[m.group(2)]
                pos = m.end()
            if pos != len(s) or not s:
                raise UsageError(
                    f"{what} {text!r} is not a duration; use forms like 30s, 5m, 1h30m or 250ms"
                ) from None
    if value < 0 or value != value:
        raise UsageError(f"{what} {text!r} must not be negative")
    return value


@dataclass(frozen=True)
class Stage:
    """Move linearly to ``target`` (rate or users) over ``duration_s`` seconds."""

    duration_s: float
    target: float


def parse_stages(text: str) -> tuple[Stage, ...]:
    """Stages from ``30s:100,1m:500,30s:0`` (duration:target, comma separated)."""
    stages = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        dur, sep, target = part.partition(":")
        if not sep:
            raise UsageError(f"stage {part!r} must be DURATION:TARGET, for example 30s:100")
        try:
            value = float(target)
        except ValueError:
            raise UsageError(f"stage {part!r} has a target that is not a number") from None
        if value < 0:
            raise UsageError(f"stage {part!r} has a negative target")
        stages.append(Stage(parse_duration(dur, what=f"stage {part!r} duration"), value))
    if not stages:
        raise UsageError(f"--stages {text!r} holds no stage; use forms like 30s:100,1m:500,30s:0")
    return tuple(stages)


def parse_url(url: str, *, what: str = "URL") -> str:
    """Check an http(s) URL with a host; return it unchanged."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"{what} {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{what} {url!r} is not an http:// or https:// URL with a host")
    del port
    return url


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, validated; built by the CLI from options, env and scenario defaults."""

    host: str | None = None
    model: Model = "closed"
    users: int = 10
    spawn_rate: float = 10.0
    run_time_s: float = 10.0
    rate: float | None = None
    stages: tuple[Stage, ...] = ()
    arrival: Arrival = "constant"
    max_inflight: int = 1000
    preallocated_users: int | None = None  # open model: users started before the clock (None: 10 ms of the peak rate)
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    graceful_stop_s: float = 10.0
    test_type: str = "load"
    app_version: str | None = None
    seed: int | None = None
    summary_json: str | None = None
    quiet: bool = False
    # stress test: a step "breaks" when its error rate or p95 crosses these
    break_error_rate: float = 0.05
    break_p95_ms: float = 1000.0
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in ("open", "closed"):
            raise UsageError(f"model {self.model!r} must be open or closed")
        if self.users < 1:
            raise UsageError(f"--users must be at least 1, not {self.users}")
        if self.spawn_rate <= 0:
            raise UsageError(f"--spawn-rate must be positive, not {self.spawn_rate}")
        if self.run_time_s <= 0 and not self.stages:
            raise UsageError("--run-time must be longer than zero")
        if self.rate is not None and self.rate <= 0:
            raise UsageError(f"--rate must be positive, not {self.rate}")
        if self.model == "open" and self.rate is None and not self.stages:
            raise UsageError("the open model needs --rate or --stages")
        if self.arrival not in ("constant", "poisson"):
            raise UsageError(f"--arrival must be constant or poisson, not {self.arrival!r}")
        if self.max_inflight < 1:
            raise UsageError(f"--max-inflight must be at least 1, not {self.max_inflight}")
        if self.timeout_s <= 0:
            raise UsageError("--timeout must be longer than zero")
        if self.test_type not in TEST_TYPES:
            raise UsageError(
                f"--test-type {self.test_type!r} is not one of {', '.join(TEST_TYPES)}"
            )
        if self.host is not None:
            parse_url(self.host, what="--host")

    @property
    def duration_s(self) -> float:
        """Planned length of the run: the stages' sum when stages are given."""
        if self.stages:
            return sum(s.duration_s for s in self.stages)
        return self.run_time_s
