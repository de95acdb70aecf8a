"""Moved to :mod:`loadgen.observe.display`; this name stays for the imports not yet moved."""

from .observe.display import LiveDisplay

__all__ = ["LiveDisplay"]
