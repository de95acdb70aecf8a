"""Webhook URLs: checked once, never shown whole."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import UsageError

__all__ = ["check_webhook", "masked"]


def masked(url: str) -> str:
    """A webhook URL as it may be shown: scheme and host, the rest hidden (the path is the secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "***"
    port = f":{parts.port}" if _port(parts) else ""
    return f"{parts.scheme}://{host}{port}/***"


def _port(parts: object) -> int | None:
    try:
        return parts.port  # type: ignore[attr-defined,no-any-return]
    except ValueError:
        return None


def check_webhook(url: str, flag: str) -> str:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(f"{flag} {masked(url)} is not an http or https URL with a host")
    return url
