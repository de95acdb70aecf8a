"""HAR recording -> scenario source: read, filter, group, correlate, plan, write."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from ..errors import UsageError
from .calls import call_of
from .correlate import Correlator, is_credential
from .filters import select
from .grouping import Group, group, pauses
from .model import Exchange, read_har
from .names import segment_kind
from .plan import Call, Plan, Step
from .source import write

__all__ = ["HarConversion", "HarOptions", "convert_har"]

#: Shorter silences are the browser and the page's script at work, not a person thinking.
MIN_THINK_S = 0.5
#: A longer recorded pause (the person left for coffee) is replayed this long.
MAX_THINK_S = 60.0
#: Think time between iterations when the recording has no pause between steps to take it from.
_DEFAULT_WAIT = (1.0, 3.0)


@dataclass(frozen=True)
class HarOptions:
    """What ``loadgen har`` keeps and how it groups (its command-line flags)."""

    keep_assets: bool = False
    keep_third_party: bool = False
    group: Literal["page", "pause"] | None = None  #: None: by page when the HAR has pages, else by pause
    pause_s: float = 2.0  #: a silence longer than this starts a new group (grouping by pause)


@dataclass(frozen=True)
class HarConversion:
    """The scenario's source and what the conversion left out or could not do, one sentence each."""

    code: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _think(gap: float) -> float:
    return min(round(gap, 1), MAX_THINK_S) if gap >= MIN_THINK_S else 0.0


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")[:30].strip("_")


def _step_name(i: int, g: Group, first: Exchange, taken: set[str]) -> str:
    """``step_<i>_<page title>``, else ``step_<i>_<method>_<resource>`` of its first request."""
    slug = _slug(g.title) if g.title and "://" not in g.title else ""
    if not slug:
        segs = [s for s in urlsplit(first.url).path.split("/") if s and segment_kind(s) is None]
        slug = _slug(f"{first.method} {segs[-1] if segs else 'root'}")
    name = f"step_{i}_{slug}" if slug else f"step_{i}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _describe(g: Group, row: list[Call]) -> str:
    """A step's docstring: its page, else its first request."""
    if g.title:
        return f"The page {g.title}."
    first = row[0]
    url = "".join(p if isinstance(p, str) else "{" + p.var + "}" for p in first.url)
    more = f" and {len(row) - 1} more request(s)" if len(row) > 1 else ""
    return f"{first.method} {first.name or url}{more}."


def _login_end(calls: list[Call]) -> int | None:
    """Index of the last call of a group that reads a credential (a login), if any."""
    end = None
    for i, c in enumerate(calls):
        if any(is_credential(var) for var, _ in c.reads):
            end = i
    return end


def convert_har(
    text: str, shown: str, options: HarOptions = HarOptions(), *, scenario: str = "scenario.py"
) -> HarConversion:
    """Convert HAR text (``shown`` names it in messages) into a scenario's source
    (``scenario``: the name it will be saved under, for its docstring).

    Raises UsageError when the text is not HAR 1.x or nothing in it can be replayed.
    """
    recording = read_har(text, shown)
    warnings = list(recording.warnings)
    sel = select(recording, keep_assets=options.keep_assets, keep_third_party=options.keep_third_party)
    warnings += sel.warnings
    if not sel.kept:
        raise UsageError(
            f"{shown} has no request left to replay ({len(recording.entries)} recorded); "
            "--keep-assets and --keep-third-party keep more."
        )
    by = options.group or ("page" if recording.pages else "pause")
    if by == "page" and not any(e.page for e in sel.kept):
        warnings.append("the recording has no pages to group by; grouped at pauses instead")
        by = "pause"
    groups = group(sel.kept, recording.pages, by, options.pause_s)
    corr = Correlator(sel.kept)
    pos_of = {id(e): i for i, e in enumerate(sel.kept)}
    positions = [[pos_of[id(e)] for e in g.entries] for g in groups]
    made = [[call_of(corr, pos, sel.kept[pos], sel.origin, warnings) for pos in row] for row in positions]
    # What each response must give back is known only now, once every request has asked for its values.
    gaps = pauses(sel.kept)
    calls = [
        [dataclasses.replace(c, reads=tuple(corr.reads_after(pos)), think_s=_think(gaps[pos]) if j else 0.0)
         for j, (pos, c) in enumerate(zip(row, made_row))]
        for row, made_row in zip(positions, made)
    ]
    if any(g > MAX_THINK_S for g in gaps):
        n = sum(g > MAX_THINK_S for g in gaps)
        warnings.append(f"{n} recorded pause(s) longer than {MAX_THINK_S:g} s replayed as {MAX_THINK_S:g} s")

    on_start: list[Call] = []
    end = _login_end(calls[0])
    if end is not None and (end + 1 < len(calls[0]) or len(calls) > 1):
        # The login goes to on_start (once per user); what followed it in its group stays a step,
        # and the pause before that is the one between on_start and the step, not inside it.
        on_start, calls[0], positions[0] = calls[0][: end + 1], calls[0][end + 1 :], positions[0][end + 1 :]
        if calls[0]:
            calls[0][0] = dataclasses.replace(calls[0][0], think_s=0.0)
    steps: list[Step] = []
    taken: set[str] = set()
    for g, row, pos_row in zip(groups, calls, positions):
        if row:
            name = _step_name(len(steps) + 1, g, sel.kept[pos_row[0]], taken)
            steps.append(Step(name, _describe(g, row), tuple(row), _think(gaps[pos_row[0]])))
    between_steps = [s.pause_s for s in steps[1:] if s.pause_s > 0]
    plan = Plan(
        source=shown,
        scenario=scenario,
        creator=recording.creator,
        host=sel.origin,
        on_start=tuple(on_start),
        steps=tuple(steps),
        wait=(min(between_steps), max(between_steps)) if between_steps else _DEFAULT_WAIT,
        kept=len(sel.kept),
        dropped=sel.dropped,
    )
    return HarConversion(write(plan), tuple(warnings))
