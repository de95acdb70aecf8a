"""What the converter could not translate: warnings for the user, marker comments for the code.

Each note belongs to a statement of the original tree: the converted file
carries ``# loadgen convert: <why>`` above that statement, and the warning
list says ``file:line: <why>``, so both point at the same place.
"""

from __future__ import annotations

import libcst as cst

__all__ = ["MARK", "Notes"]

#: How a marker comment starts.
MARK = "# loadgen convert: "


class Notes:
    """Warnings of one conversion, with the statements they mark."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._warnings: dict[tuple[int, str], None] = {}  # ordered and deduplicated
        self._marks: dict[cst.CSTNode, dict[str, None]] = {}

    def warn(self, line: int, why: str, statement: cst.CSTNode | None = None) -> None:
        """Record ``why`` at ``line``; with a ``statement``, the converted code marks it too."""
        self._warnings[(line, why)] = None
        if statement is not None:
            self._marks.setdefault(statement, {})[why] = None

    def marks(self, statement: cst.CSTNode) -> list[str]:
        """The reasons to mark ``statement`` (an original node) with."""
        return list(self._marks.get(statement, ()))

    def comment_lines(self, statement: cst.CSTNode) -> list[cst.EmptyLine]:
        """``statement``'s marker comments, as lines to put above it."""
        return [cst.EmptyLine(comment=cst.Comment(MARK + _one_line(why))) for why in self.marks(statement)]

    def warnings(self) -> tuple[str, ...]:
        """``file:line: what and why``, in line order."""
        return tuple(f"{self.filename}:{line}: {why}" for line, why in sorted(self._warnings, key=lambda k: k[0]))


def _one_line(text: str) -> str:
    return " ".join(text.split())
