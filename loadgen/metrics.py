"""Moved to :mod:`loadgen.observe.exporter`; this name stays for the imports not yet moved."""

from .observe.exporter import MetricsExporter

__all__ = ["MetricsExporter"]
