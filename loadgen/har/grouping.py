"""Recorded requests in groups (one per page, or split at pauses) and the pauses between them.

A group becomes one step of the replay. By page: HAR ``pages`` (a page load
and everything it fetched until the next one). By pause: a new group starts
where the recording went quiet for longer than ``pause_s`` (the user read,
typed or thought). The pause before a request, measured from the end of the
requests before it, is the recorded think time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import Exchange, Page

__all__ = ["Group", "group", "pauses"]

GroupBy = Literal["page", "pause"]


@dataclass(frozen=True)
class Group:
    """Consecutive requests replayed as one step; ``title`` names it (a page title or "")."""

    title: str
    entries: tuple[Exchange, ...]


def pauses(entries: tuple[Exchange, ...]) -> list[float]:
    """Seconds of silence before each request: from the end of every request before it (0 for the first)."""
    out = []
    busy_until = None
    for e in entries:
        out.append(0.0 if busy_until is None else max(0.0, e.started - busy_until))
        busy_until = e.ended if busy_until is None else max(busy_until, e.ended)
    return out


def group(entries: tuple[Exchange, ...], pages: tuple[Page, ...], by: GroupBy, pause_s: float) -> list[Group]:
    """Split ``entries`` (in order) into groups, by page or at pauses longer than ``pause_s``."""
    if not entries:
        return []
    titles = {p.id: p.title for p in pages}
    gaps = pauses(entries)
    groups: list[list[Exchange]] = []
    keys: list[str | None] = []
    for e, gap in zip(entries, gaps):
        # An entry without a pageref stays with the page before it.
        key = (e.page or (keys[-1] if keys else None)) if by == "page" else None
        new = not groups or (key != keys[-1] if by == "page" else gap > pause_s)
        if new:
            groups.append([])
            keys.append(key)
        groups[-1].append(e)
    return [Group(titles.get(k or "", "") if by == "page" else "", tuple(g)) for k, g in zip(keys, groups)]
