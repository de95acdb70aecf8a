"""Notifications of a run's findings to webhooks (``--notify``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..findings import Findings

__all__ = ["Delivery", "send_all"]


@dataclass(frozen=True)
class Delivery:
    shown: str  # the URL as it may be shown (masked)
    ok: bool
    error: str | None = None


def send_all(findings: Findings, urls: Sequence[str]) -> list[Delivery]:
    raise NotImplementedError
