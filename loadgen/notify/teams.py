"""The Microsoft Teams message: an adaptive card (schema version 1.4, which Teams
workflows and the older connectors both render) in a message's ``attachments``.

The card holds a headline, what the run did, its facts (a FactSet), the failed
thresholds and regressions (a FactSet each, at most :data:`ITEMS_MAX` rows and then
"and N more"), and a small-print line. Teams refuses a message much above 28 KB; with
the lists and every text capped the card stays far below it. Adaptive cards read
markdown in text, so the user's text has markdown's characters escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..findings import Findings
from .text import Item, clip, facts, footer, headline, regression_item, summary_line, threshold_item

__all__ = ["teams_message", "CARD_VERSION", "CONTENT_TYPE", "ITEMS_MAX", "md"]

CARD_VERSION = "1.4"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ITEMS_MAX = 20
_TEXT_MAX = 400
_COLOUR = {"pass": "Good", "fail": "Attention", "regression": "Attention", "error": "Attention"}
_MARKDOWN = frozenset("\\`*_~[]")  # a link needs "[", a list or heading starts a line


def md(text: str, limit: int = _TEXT_MAX) -> str:
    """User text as an adaptive card's markdown shows it literally: one line, at most ``limit``
    characters before escaping, each markdown character behind a backslash."""
    return "".join(f"\\{c}" if c in _MARKDOWN else c for c in clip(text, limit))


def _text(text: str, **style: object) -> dict[str, object]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _fact_set(facts: Sequence[tuple[str, str]]) -> dict[str, object]:
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]}


def _listing(title: str, items: Sequence[Item]) -> list[dict[str, object]]:
    shown = items[:ITEMS_MAX]
    out = [_text(title, weight="Bolder", spacing="Medium"),
           _fact_set([(md(i.name, 120), md(i.detail, 200)) for i in shown])]
    if len(items) > len(shown):
        out.append(_text(f"…and {len(items) - len(shown)} more", isSubtle=True))
    return out


def teams_message(f: Findings) -> dict[str, object]:
    """The message a Teams workflow (or connector) webhook takes for the findings ``f``."""
    intro = (f"The run could not be carried out: {md(f.error or 'unknown error', 1000)}" if f.verdict == "error"
             else summary_line(f))
    body: list[dict[str, object]] = [
        _text(md(headline(f)), size="Large", weight="Bolder", color=_COLOUR[f.verdict]),
        _text(intro),
        _fact_set([(x.title, md(x.value, 120) if x.user_text else x.value) for x in facts(f)]),
    ]
    if f.failed_thresholds:
        body += _listing("Failed thresholds", [threshold_item(t) for t in f.failed_thresholds])
    if f.regressions:
        body += _listing("Regressions", [regression_item(c) for c in f.regressions])
    body.append(_text(footer(f, lambda s: md(s, 300)), size="Small", isSubtle=True, spacing="Medium"))
    card = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": CARD_VERSION, "body": body,
            "msteams": {"width": "Full"}}
    return {"type": "message", "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card}]}
