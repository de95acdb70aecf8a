"""Markdown tables and the number formats of the report."""

from __future__ import annotations

import statistics


def fmt(v: object, spec: str = ",.0f", none: str = "–") -> str:
    if v is None:
        return none
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out


def signed(x: float, spec: str = "+.2f") -> str:
    return format(x, spec).replace("-", "\u2212")


def signed_pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f} %".replace("-", "\u2212")


def ratio_cell(ratio: float | None) -> str:
    """0.995× (−0.5 %)"""
    return "–" if ratio is None else f"{ratio:.3f}× ({signed_pct(ratio)})"


def spread(values: list[float]) -> float | None:
    """(max − min) ÷ median, as a fraction."""
    return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else None
