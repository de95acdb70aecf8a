"""Notifications of a run's findings to webhooks (``--notify``, ``loadgen notify RUN``).

:mod:`.targets` tells a URL's kind and how it is shown; :mod:`.slack`, :mod:`.teams`
and :mod:`.document` build the three payloads from :class:`~loadgen.findings.Findings`
(:mod:`.text` holds their shared words); :mod:`.deliver` POSTs one with retries.
:func:`send_all` sends to every URL at once and waits at most one notification's
bound (Ctrl-C ends the wait): it never raises, and a failure is a :class:`Delivery` to warn of.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from ..errors import UsageError
from ..findings import Findings
from .deliver import Outcome, Policy, post
from .document import document
from .slack import slack_message
from .targets import Kind, Webhook, masked, parse_webhook
from .teams import teams_message

__all__ = ["Delivery", "send_all", "payload"]

_GRACE_S = 1.0  # past the bound, for a thread that is just finishing


@dataclass(frozen=True)
class Delivery:
    """What became of the notification to one URL (``shown``: the URL masked)."""

    shown: str
    ok: bool
    error: str | None = None
    kind: str | None = None  # slack, teams or json; None: the URL was not one
    attempts: int = 0
    status: int | None = None  # the receiver's last HTTP status


_PAYLOADS: dict[Kind, Callable[[Findings], object]] = {"slack": slack_message, "teams": teams_message,
                                                       "json": document}


def payload(kind: Kind, findings: Findings) -> object:
    """What a webhook of ``kind`` is sent (a JSON-ready value)."""
    return _PAYLOADS[kind](findings)


def send_all(findings: Findings, urls: Sequence[str], *, policy: Policy | None = None) -> list[Delivery]:
    """Send the findings to every URL, all at once; one :class:`Delivery` per URL, in order."""
    if policy is None:
        try:
            policy = Policy.from_env(os.environ)
        except UsageError:  # checked with the URLs before the run; a later change gets the default
            policy = Policy()
    hooks: list[Webhook | Delivery] = []
    for url in urls:
        try:
            hooks.append(parse_webhook(url))
        except UsageError as exc:
            hooks.append(Delivery(masked(url), False, str(exc)))
    bodies: dict[Kind, bytes | str] = {}  # a str: why the message could not be built
    for hook in hooks:
        if isinstance(hook, Webhook) and hook.kind not in bodies:
            bodies[hook.kind] = _body(hook.kind, findings)
    deadline = time.monotonic() + policy.budget_s
    results: list[Delivery | None] = [h if isinstance(h, Delivery) else None for h in hooks]
    threads: list[tuple[int, Webhook, threading.Thread]] = []
    for i, hook in enumerate(hooks):
        if not isinstance(hook, Webhook):
            continue
        body = bodies[hook.kind]
        if isinstance(body, str):
            results[i] = Delivery(hook.shown, False, body, hook.kind)
            continue
        thread = threading.Thread(target=_send, args=(results, i, hook, body, policy, deadline), daemon=True,
                                  name="loadgen-notify")
        thread.start()
        threads.append((i, hook, thread))
    try:
        for _, _, thread in threads:
            thread.join(max(deadline + _GRACE_S - time.monotonic(), 0.0))
        late = f"no answer within {policy.budget_s:g} s"  # a receiver that trickles its answer
    except KeyboardInterrupt:  # Ctrl-C: wait no longer; the run's outcome is already decided
        late = "interrupted (Ctrl-C) before an answer"
    for i, hook, _ in threads:
        if results[i] is None:
            results[i] = Delivery(hook.shown, False, late, hook.kind)
    return [r for r in results if r is not None]


def _body(kind: Kind, findings: Findings) -> bytes | str:
    """The JSON a webhook of ``kind`` is sent, or why it could not be built."""
    try:
        return orjson.dumps(payload(kind, findings))
    except Exception as exc:  # noqa: BLE001 - a bug here must not end the run: it is warned of
        return f"the message could not be built ({type(exc).__name__})"


def _send(results: list[Delivery | None], i: int, hook: Webhook, body: bytes, policy: Policy,
          deadline: float) -> None:
    try:
        outcome = post(hook.url, body, policy, deadline)
    except Exception as exc:  # noqa: BLE001 - as in _body: warned of, never raised into the run
        outcome = Outcome(False, 0, None, f"the request failed ({type(exc).__name__})")
    results[i] = Delivery(hook.shown, outcome.ok, outcome.error, hook.kind, outcome.attempts, outcome.status)
