"""The live web dashboard on the metrics port: ``/`` beside ``/metrics``.

A part of the exporter (:meth:`~loadgen.observe.exporter.MetricsExporter.add_part`):
each interval, right after ``/metrics`` has folded it, one :class:`~.frames.Frame`
is built on the event loop and handed to the :class:`~.feed.Feed`, which every
open page follows over server-sent events. The page, its script and styles are
bundled (``assets/``): it needs no network and loads nothing from elsewhere.
When the run is over the final frame says so, and stays while the port lingers.

Typical use (the session does this when ``--metrics-port`` is given)::

    exporter.start(port, addr)
    dashboard.attach(exporter, spec)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ...engine.recorder import IntervalSnapshot
from ...sinks import RunView
from ..server import MetricsServer
from ..textformat import origin
from .feed import DEFAULT_HISTORY, Feed
from .frames import FrameBuilder, RunInfo
from .handler import DashboardRoutes

if TYPE_CHECKING:
    from ...session.options import RunSpec
    from ..exporter import MetricsExporter

__all__ = ["Dashboard", "attach", "run_info"]


class Dashboard:
    """Frames of a run, their feed and the paths that serve them."""

    def __init__(self, info: RunInfo, *, history: int = DEFAULT_HISTORY) -> None:
        self.frames = FrameBuilder(info)
        self.feed = Feed(self.frames.latest, history)
        self.routes = DashboardRoutes(self.feed)
        self._broken = False

    def __call__(self, snap: IntervalSnapshot, run: RunView) -> None:
        """One interval (on the event loop): a frame built and published; never raises, since
        the exporter calls its parts inline and a failure here must not take /metrics along."""
        if self._broken:
            return
        try:
            self.feed.publish(self.frames.add(snap, run))
        except Exception as exc:  # noqa: BLE001 - the run and /metrics go on without the page
            self._broken = True
            run.warnings.append(f"the live dashboard stopped updating: {type(exc).__name__}: {exc}")

    def finish(self) -> None:
        """The run is over: the final frame (status finished, the stop reason) to every page."""
        if not self._broken:
            self.feed.finish(self.frames.final())

    def mount(self, server: MetricsServer) -> None:
        routes = self.routes
        server.mount("/", routes.page)
        server.mount("/dashboard", routes.asset)
        server.mount("/api/state", routes.state)
        server.mount("/api/events", routes.events)

    def attach(self, exporter: MetricsExporter) -> Dashboard:
        """Serve on the exporter's port and follow its intervals; returns self."""
        self.mount(exporter.server)
        exporter.add_part(self, on_finish=self.finish)
        return self


def run_info(spec: RunSpec, run_id: str) -> RunInfo:
    """The header's facts, from the run's spec (the host as an origin: no path or credentials)."""
    config = spec.config
    scenario = os.path.basename(spec.scenario.path) if spec.scenario is not None else "adhoc"
    return RunInfo(run_id=run_id, scenario=scenario, host=origin(spec.target or "") or (spec.target or ""),
                   model=config.model, app_version=config.app_version or "", test_type=config.test_type,
                   planned_s=config.duration_s)


def attach(exporter: MetricsExporter, spec: RunSpec) -> None:
    """Mount the dashboard on the exporter's port and feed it the run's intervals."""
    Dashboard(run_info(spec, exporter.run_id)).attach(exporter)
