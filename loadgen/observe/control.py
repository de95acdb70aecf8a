"""The control API on the metrics port (being built: issue 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .exporter import MetricsExporter

__all__ = ["attach"]


def attach(exporter: MetricsExporter, *, token: str | None) -> None:
    """Mount /api/control on the exporter's port."""
