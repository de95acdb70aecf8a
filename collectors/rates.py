"""Turning cumulative counters into per-period increases."""

from __future__ import annotations

__all__ = ["CounterDelta"]


class CounterDelta:
    """The increase of one counter between consecutive readings.

    None on the first reading, when the counter is missing, and when it went
    down (the process behind it restarted: the increase over that period is unknown).
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: float | None = None

    def update(self, value: float | None) -> float | None:
        """Record ``value`` and return its increase since the previous reading."""
        last, self._last = self._last, value
        if value is None or last is None or value < last:
            return None
        return value - last
