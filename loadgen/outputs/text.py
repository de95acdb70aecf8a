"""Text users control (endpoint names, threshold expressions, warnings), made safe for
the CI files: characters no XML or markdown reader takes out, and a bounded length."""

from __future__ import annotations

import re

__all__ = ["clean", "one_line", "clip"]

# C0 and C1 controls (not tab, LF, CR), DEL, lone surrogates (they cannot be encoded) and
# the two non-characters XML 1.0 forbids.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAKS = re.compile("[\t\r\n\u2028\u2029]+")


def clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold; tabs and line breaks stay."""
    return _FORBIDDEN.sub("", text)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def one_line(text: str, limit: int) -> str:
    """:func:`clean`, line breaks and tabs made spaces, at most ``limit`` characters: a table
    cell or a list item cannot be broken by what a user wrote."""
    return clip(_LINE_BREAKS.sub(" ", clean(text)).strip(), limit)
