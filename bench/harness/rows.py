"""One measured row of the report: a tool's own figures from one run, or why there are none."""

from __future__ import annotations

from dataclasses import dataclass, field

from .console import log
from .processes import ChildRun


@dataclass
class Row:
    tool: str
    model: str
    ok: bool = False
    error: str = ""
    requests: int | None = None
    duration_s: float | None = None
    rps: float | None = None
    errors: int | None = None
    cpu_s: float | None = None
    us_per_req: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    server_cpu_pct: float | None = None
    extra: dict = field(default_factory=dict)
    command: str = ""

    def fill(self, run: ChildRun, requests: int, duration_s: float) -> None:
        self.ok = True
        self.requests = requests
        self.duration_s = duration_s
        self.rps = requests / duration_s if duration_s else None
        self.cpu_s = run.cpu_s
        if run.cpu_s is not None and requests:
            self.us_per_req = run.cpu_s / requests * 1e6
        if run.rc not in (0, None):
            self.extra["note"] = f"exit code {run.rc}"

    def add_note(self, note: str) -> None:
        self.extra["note"] = (self.extra["note"] + "; " if self.extra.get("note") else "") + note


def fail(row: Row, why: str) -> Row:
    row.ok = False
    row.error = why
    log(f"  -> {row.tool} ({row.model}) FAILED: {why}")
    return row
