"""Webhook URLs: which kind each is, checked once, never shown whole.

A webhook URL's path and query are its secret (Slack's and Teams' URLs carry their
token there), so a URL is only ever shown as ``scheme://host[:port]/***``.

The kind comes from the host: ``hooks.slack.com`` is Slack; the hosts of Teams
workflows (Power Automate, Logic Apps) and of Office 365 connectors are Teams; any
other URL gets the JSON document. A prefix on the scheme forces a kind whatever the
host: ``slack+https://…``, ``teams+https://…``, ``json+https://…`` (``+http`` too, for
a receiver on a private address); the prefix is not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from ..errors import UsageError

__all__ = ["Kind", "KINDS", "Webhook", "parse_webhook", "check_webhook", "masked"]

Kind = Literal["slack", "teams", "json"]
KINDS: tuple[Kind, ...] = ("slack", "teams", "json")

_SLACK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
# Teams workflow webhooks ("Post to a channel when a webhook request is received") are
# Power Automate flows: Logic Apps hosts (prod-NN.REGION.logic.azure.com), moving to
# ENV.environment.api.powerplatform.com; the older Office 365 connectors are
# NAME.webhook.office.com. All of them take the adaptive-card message.
_TEAMS_SUFFIXES = (".logic.azure.com", ".logic.azure.us", ".powerplatform.com", ".powerautomate.com",
                   ".webhook.office.com")
_MAX_LENGTH = 4096


@dataclass(frozen=True)
class Webhook:
    """A checked webhook: where to POST (a secret, kept out of ``repr``), its kind, how it is shown."""

    url: str = field(repr=False)  # without the kind prefix
    kind: Kind
    shown: str


def _parts(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parts


def masked(url: str) -> str:
    """A webhook URL as it may be shown: scheme and host, the rest hidden (the path is the secret)."""
    parts = _parts(url)
    if parts is None or "://" not in url or not parts.scheme:
        return "***"
    host = parts.hostname or "?"
    if not host.isprintable() or len(host) > 100:
        host = "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}/***"


def _kind_of_host(host: str) -> Kind:
    if host in _SLACK_HOSTS:
        return "slack"
    if any(host.endswith(suffix) for suffix in _TEAMS_SUFFIXES):
        return "teams"
    return "json"


def parse_webhook(url: str, flag: str = "--notify") -> Webhook:
    """The webhook ``url`` names; a :class:`UsageError` (one sentence, the secret hidden) if it is not one."""
    shown = masked(url)
    if not url.isprintable() or any(c.isspace() for c in url) or len(url) > _MAX_LENGTH:
        raise UsageError(f"{flag} {shown} is not a URL: it holds spaces or control characters, "
                         f"or is longer than {_MAX_LENGTH} characters")
    parts = _parts(url)
    if parts is None:
        raise UsageError(f"{flag} {shown} is not a URL: its host or port cannot be read")
    forced, plus, base = parts.scheme.lower().rpartition("+")
    if "://" not in url or base not in ("http", "https") or (plus and forced not in KINDS):
        raise UsageError(f"{flag} {shown} is not an http or https URL "
                         f"(a prefix may choose its kind: slack+https://, teams+https://, json+https://)")
    if not parts.hostname:
        raise UsageError(f"{flag} {parts.scheme}:// has no host")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{flag} {shown} holds a user name or password; a webhook's secret belongs in its "
                         f"path or query")
    target = url[len(forced) + 1:] if plus else url
    kind: Kind = forced if plus else _kind_of_host(parts.hostname)  # type: ignore[assignment]
    return Webhook(url=target, kind=kind, shown=shown)


def check_webhook(url: str, flag: str) -> str:
    """``url`` if it is a webhook :func:`parse_webhook` accepts (the option table's parser calls this,
    before the run). The delivery's setting (``LOADGEN_NOTIFY_TIMEOUT``) is checked here too, so a bad
    one is a usage error before the run rather than a surprise after it."""
    import os

    from .deliver import Policy

    parse_webhook(url, flag)
    Policy.from_env(os.environ)
    return url
