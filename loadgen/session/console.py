"""The session's messages and the summary as a person reads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from ..summary import RunSummary, print_summary

if TYPE_CHECKING:
    from ..judgement.evaluation import CriterionResult

__all__ = ["say", "show_summary"]


def say(console: Console, text: str) -> None:
    """One message line: never wrapped, since it carries paths, URLs and commands to copy."""
    console.print(text, soft_wrap=True)


def show_summary(summary: RunSummary, console: Console, criteria: Sequence[CriterionResult] = ()) -> None:
    """The endpoint table, the headline figures, then each threshold's verdict."""
    print_summary(summary.to_json(), console)
    if criteria:
        from ..judgement.render import render_criteria as render

        render(list(criteria), console)
