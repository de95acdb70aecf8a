"""What an interval sink sees of the run it watches, and may do to it.

Sinks (the live display, ``/metrics``, the store's writer, ``--abort-on-fail``)
are called once a second with the interval's snapshot and a :class:`RunView`.
The single-process :class:`~loadgen.engine.engine.Engine` and the workers'
:class:`~loadgen.scaleout.coordinator.Coordinator` both are one, structurally: a sink
cannot tell them apart, so it works the same with ``--workers``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .config import RunConfig
    from .diagnostics import WarningList
    from .engine.engine import AdHocRequest
    from .engine.recorder import IntervalSnapshot, Recorder
    from .engine.steering import Steer
    from .scenario import Scenario

__all__ = ["IntervalSink", "RunView", "scenario_label", "target_of"]


@runtime_checkable
class RunView(Protocol):
    """The run as its sinks know it: read-only members, plus stopping it, steering it and warning."""

    @property
    def model(self) -> str:
        """``open`` or ``closed``."""

    @property
    def config(self) -> RunConfig:
        """The run's resolved options."""

    @property
    def scenario(self) -> Scenario | None:
        """The scenario file's run; None in ad-hoc mode."""

    @property
    def adhoc(self) -> AdHocRequest | None:
        """The single request of ad-hoc mode (``--url``); None with a scenario."""

    @property
    def recorder(self) -> Recorder:
        """The whole run so far (``recorder.totals``) and its name cap (``recorder.max_names``)."""

    @property
    def warnings(self) -> WarningList:
        """The run's warnings so far; a sink warns by appending one line, which becomes one
        warning in the summary (a view of the run's :class:`~loadgen.diagnostics.Diagnostics`)."""

    @property
    def stopping(self) -> bool:
        """True once the run is stopping: no judgement of what is left is needed."""

    @property
    def stop_reason(self) -> str | None:
        """Why the run is stopping when it is not its schedule (a signal, an abort, the control API)."""

    def stop(self, reason: str | None = None) -> None:
        """Stop the run gracefully (in-flight requests may finish); ``reason`` is its stop reason."""

    @property
    def steering(self) -> Steer:
        """The control API's handle (from any thread): the run's control state, and changes
        (stop, rate, users) handed to the thread that owns the run."""


#: A results sink: called on the event loop (or the coordinator's thread) with each interval.
IntervalSink = Callable[["IntervalSnapshot", RunView], None]


def scenario_label(run: RunView) -> str:
    """The scenario file's name, or ``adhoc``: a label, never a path."""
    return Path(run.scenario.path).name if run.scenario is not None else "adhoc"


def target_of(run: RunView) -> str | None:
    """The target as configured: ``--host``, else the scenario's host, else the ad-hoc URL."""
    scenario_host = run.scenario.host if run.scenario is not None else None
    adhoc_url = run.adhoc.url if run.adhoc is not None else None
    return run.config.host or scenario_host or adhoc_url
