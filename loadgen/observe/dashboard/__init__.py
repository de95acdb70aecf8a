"""The live web dashboard on the metrics port (being built: issue 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...session.options import RunSpec
    from ..exporter import MetricsExporter

__all__ = ["attach"]


def attach(exporter: MetricsExporter, spec: RunSpec) -> None:
    """Mount the dashboard on the exporter's port and feed it the run's intervals."""
