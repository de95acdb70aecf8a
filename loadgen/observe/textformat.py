"""The Prometheus text format's (0.0.4) escaping and number spelling, and the run's origin label."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from prometheus_client.utils import floatToGoString

__all__ = ["CONTENT_TYPE", "escape", "help_text", "labels", "number", "origin"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape(value: str) -> str:
    """A label value, escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    """``k="v",...`` without the braces, so a series can add its own after a prebuilt prefix."""
    return ",".join(f'{k}="{escape(str(v))}"' for k, v in pairs)


def number(v: float | int) -> str:
    """A sample value as Prometheus spells it (integers exactly, floats as Go does)."""
    if isinstance(v, int):
        return str(v)
    return floatToGoString(v)


def help_text(doc: str) -> str:
    """A HELP line's text, escaped (quotes are allowed there)."""
    return doc.replace("\\", "\\\\").replace("\n", "\\n")


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: no path, query or credentials in a label."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
