"""The live progress display: one refresh per interval, driven by the engine's snapshots.

rich's ``Live`` normally refreshes from a thread of its own; here it is
refreshed by hand from the interval callback, so nothing but the event loop
runs in the generator's process and the GIL is never contended on the hot
path. Without a terminal, a plain line every few seconds is printed instead.

The panel also counts the run's problems so far (its diagnostics): log records
wait until the display is gone, so this is where a failing collector shows live.
"""

from __future__ import annotations

import collections

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..diagnostics import Diagnostics
from ..engine import histogram as hdr
from ..engine.recorder import IntervalSnapshot
from ..sinks import RunView

__all__ = ["LiveDisplay"]

_WINDOW = 10  # intervals in the sliding p95
_LATEST_CHARS = 100  # of the latest problem: the panel is a glance, the summary has them all


class LiveDisplay:
    """A sink for interval snapshots that shows how the run is going."""

    def __init__(self, console: Console, duration_s: float, *, plain_every_s: float = 5.0,
                 diagnostics: Diagnostics | None = None) -> None:
        self.console = console
        self.duration_s = duration_s
        self.diagnostics = diagnostics
        self._window: collections.deque[IntervalSnapshot] = collections.deque(maxlen=_WINDOW)
        self._live: Live | None = None
        self._plain_every = plain_every_s
        self._next_plain = plain_every_s
        self._requests = 0
        self._errors = 0
        self._dropped = 0

    def __enter__(self) -> LiveDisplay:
        if self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def __call__(self, snap: IntervalSnapshot, run: RunView) -> None:
        """Show the interval; everything shown is in the snapshot, the run is not read."""
        self._window.append(snap)
        self._requests += snap.overall.requests
        self._errors += snap.overall.errors
        self._dropped += snap.dropped_iterations
        if self._live is not None:
            self._live.update(self._render(snap), refresh=True)
        elif snap.end_s >= self._next_plain:
            self._next_plain += self._plain_every
            self.console.print(self._line(snap), highlight=False)

    def _p95_ms(self) -> float:
        h = hdr.new_histogram()
        for s in self._window:
            hdr.merge(h, s.overall.latency)
        return hdr.percentile_ms(h, 95)

    def _rates(self, snap: IntervalSnapshot) -> tuple[float, float]:
        d = snap.duration_s or 1.0
        return snap.overall.requests / d, (snap.iterations / d)

    def _line(self, snap: IntervalSnapshot) -> str:
        rps, _ = self._rates(snap)
        target = f" target {snap.target_rate:,.0f}/s," if snap.target_rate is not None else ""
        sat = (" SATURATED" if snap.saturated else "") + (" STALLED" if snap.stalled else "")
        return (
            f"[{snap.end_s:6.1f}s/{self.duration_s:.0f}s] {rps:,.0f} req/s,{target} "
            f"p95 {self._p95_ms():.1f} ms, errors {self._errors:,}, users {snap.users}, "
            f"in-flight {snap.inflight}, dropped {self._dropped:,}{sat}"
        )

    def _render(self, snap: IntervalSnapshot) -> Table:
        rps, its = self._rates(snap)
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold")
        t.add_column()
        remaining = max(0.0, self.duration_s - snap.end_s)
        t.add_row("elapsed", f"{snap.end_s:.0f}s  (remaining {remaining:.0f}s)")
        if snap.target_rate is not None:
            t.add_row("rate", f"{its:,.0f}/s achieved of {snap.target_rate:,.0f}/s target")
        t.add_row("requests", f"{self._requests:,}  ({rps:,.0f}/s)")
        t.add_row("p95 (10s)", f"{self._p95_ms():.2f} ms")
        t.add_row("errors", f"{self._errors:,}")
        t.add_row("users / in-flight", f"{snap.users} / {snap.inflight}")
        t.add_row("dropped", f"{self._dropped:,}")
        t.add_row("generator CPU", f"{snap.cpu_percent:.0f} %")
        if snap.saturated:
            t.add_row("[red]warning[/red]", "[red]the generator is saturated: numbers are suspect[/red]")
        if snap.stalled:
            cause = f" ({escape(snap.stall_cause)})" if snap.stall_cause else ""
            t.add_row("[red]stall[/red]", f"[red]the event loop stalled: numbers are suspect{cause}[/red]")
        problems = self._problems()
        if problems:
            t.add_row("[yellow]problems[/yellow]", problems)
        return t

    def _problems(self) -> str | None:
        """How many problems the run has reported so far, and the latest one."""
        d = self.diagnostics
        latest = d.latest if d is not None else None
        if d is None or latest is None:
            return None
        text = latest.text.partition("\n")[0]  # a log record's traceback stays for the end
        text = text if len(text) <= _LATEST_CHARS else text[:_LATEST_CHARS - 1] + "…"
        return f"{len(d):,}; latest: {escape(text)}"
