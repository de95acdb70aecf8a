"""The Slack message: Block Kit blocks (a header, the run's facts, the failed thresholds
and regressions, a context line) and a top-level ``text``, which Slack shows in
notifications and where blocks cannot be shown.

Within Slack's limits whatever the run: a header's text is at most 150 characters, a
section's 3000, a field's 2000, at most 10 fields and 50 blocks; a long list ends with
"and N more". User text (endpoint names, thresholds, versions, the error) is escaped
as Slack asks (``&``, ``<``, ``>`` as entities, so it can make no link or mention) and
set in inline code, where mrkdwn's ``*bold*`` and ``_italic_`` do not apply.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..findings import Findings
from .text import Item, clip, facts, fallback, footer, headline, regression_item, summary_line, threshold_item

__all__ = ["slack_message", "escape", "code", "HEADER_MAX", "SECTION_MAX", "FIELDS_MAX", "BLOCKS_MAX"]

HEADER_MAX = 150
SECTION_MAX = 3000
FIELDS_MAX = 10
BLOCKS_MAX = 50
_TEXT_MAX = 3000  # the top-level text: Slack cuts it far later, a notification shows far less
_NAME_MAX = 300  # one piece of user text, escaped and quoted
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: str, limit: int = SECTION_MAX) -> str:
    """``text`` as mrkdwn shows it literally (its three control characters as entities), on one
    line, at most ``limit`` characters escaped (an ellipsis marks a cut; no entity is cut)."""
    out: list[str] = []
    size = 0
    for c in clip(text, limit):
        piece = _ENTITIES.get(c, c)
        if size + len(piece) > limit - 1:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def code(text: str, limit: int = _NAME_MAX) -> str:
    """User text in inline code, escaped, at most ``limit`` characters; no backquote closes the span early."""
    if not text.strip():
        return "–"
    return f"`{escape(text.replace('`', chr(0x2018)), limit - 2)}`"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _listing(title: str, items: Sequence[Item]) -> str:
    """``*title*`` and a line per item, cut with "and N more" to stay within a section's limit."""
    text = f"*{title}*"
    for i, item in enumerate(items):
        line = f"\n• {code(item.name)} {escape(item.detail, 300)}"
        more = f"\n…and {len(items) - i} more"
        if len(text) + len(line) + len(more) > SECTION_MAX:  # room is kept for the "more" line
            return text + more
        text += line
    return text


def slack_message(f: Findings) -> dict[str, object]:
    """The message Slack's incoming webhook takes for the findings ``f``."""
    intro = (f"*The run could not be carried out:* {code(f.error or 'unknown error', 2500)}"
             if f.verdict == "error" else escape(summary_line(f)))
    fields = [_mrkdwn(f"*{x.title}*\n" + (code(x.value) if x.user_text else escape(x.value, 500)))
              for x in facts(f)][:FIELDS_MAX]
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(headline(f), HEADER_MAX), "emoji": False}},
        {"type": "section", "text": _mrkdwn(intro), "fields": fields},
    ]
    if f.failed_thresholds:
        blocks.append({"type": "section",
                       "text": _mrkdwn(_listing("Failed thresholds", [threshold_item(t) for t in f.failed_thresholds]))})
    if f.regressions:
        blocks.append({"type": "section",
                       "text": _mrkdwn(_listing("Regressions", [regression_item(c) for c in f.regressions]))})
    blocks.append({"type": "context", "elements": [_mrkdwn(footer(f, code))]})
    return {"text": clip(fallback(f, code), _TEXT_MAX), "blocks": blocks[:BLOCKS_MAX]}
