"""Row names for replayed requests: ids in a path folded, so that one endpoint is one row.

``/api/content/4f1c9a07b2d35e68`` and ``/api/content/9be0...`` are the same
endpoint: their row is ``/api/content/[hash]``. A path segment that is a
number is ``[id]``, a UUID ``[uuid]``, a hex string of 8 characters or more
(with a digit) ``[hash]``; a segment whose value is read from an earlier
response at run time is an id as well (``[id]``) unless it is one of those.
"""

from __future__ import annotations

import re

__all__ = ["segment_kind", "template"]

_NUMBER = re.compile(r"\d+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{8,}")


def segment_kind(segment: str) -> str | None:
    """``[id]``, ``[uuid]`` or ``[hash]`` for a path segment that is an identifier, else None."""
    if _NUMBER.fullmatch(segment):
        return "[id]"
    if _UUID.fullmatch(segment):
        return "[uuid]"
    # A word made of a-f letters only (``facade``, ``deadbeef``) is a name, not a hash.
    if _HEX.fullmatch(segment) and any(c.isdigit() for c in segment):
        return "[hash]"
    return None


def template(path: str, correlated: frozenset[int] = frozenset()) -> str:
    """The row name of ``path`` (no query); ``correlated``: indexes of segments read at run time."""
    segments = path.split("/")
    out = []
    for i, seg in enumerate(segments):
        kind = segment_kind(seg) if seg else None
        if kind is None and i in correlated:
            kind = "[id]"
        out.append(kind or seg)
    return "/".join(out)
