"""Test data for scenarios: rows of a CSV file handed out to users in turn."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

from .errors import ScenarioError

__all__ = ["CSVFeeder"]


class CSVFeeder:
    """Rows of a CSV file (with a header line) as dicts, one per ``next()`` call.

    Rows are handed out round-robin across all users (``shuffle=True`` draws
    them in a seeded random order instead) and start again from the top when
    they run out, unless ``cycle=False``, in which case ``next()`` raises
    :class:`LookupError`. A relative path is taken relative to the scenario
    file that creates the feeder, so a scenario runs from any directory.
    """

    def __init__(self, path: str | Path, *, cycle: bool = True, shuffle: bool = False,
                 seed: int | None = None) -> None:
        p = Path(path)
        if not p.is_absolute():
            caller = sys._getframe(1).f_globals.get("__file__")
            if caller:
                p = Path(caller).resolve().parent / p
        try:
            with open(p, newline="", encoding="utf-8") as fh:
                self.rows: list[dict[str, str]] = list(csv.DictReader(fh))
        except OSError as exc:
            raise ScenarioError(f"data file {path} cannot be read: {exc.strerror}") from None
        if not self.rows:
            raise ScenarioError(f"data file {path} has no rows after its header line")
        if shuffle:
            random.Random(seed).shuffle(self.rows)
        self.cycle = cycle
        self._next = 0

    def next(self) -> dict[str, str]:
        """The next row."""
        i = self._next
        if i >= len(self.rows):
            if not self.cycle:
                raise LookupError("the data file has no rows left (cycle=False)")
            i = 0
        self._next = i + 1
        return self.rows[i]

    def __len__(self) -> int:
        return len(self.rows)
