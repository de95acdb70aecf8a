"""CI outputs of a run's findings: the markdown summary and JUnit XML (being built: issue 14)."""

from __future__ import annotations

from ..findings import Findings

__all__ = ["write_markdown", "write_junit"]


def write_markdown(findings: Findings, path: str, *, append: bool = False) -> None:
    raise NotImplementedError


def write_junit(findings: Findings, path: str) -> None:
    raise NotImplementedError
