"""POSTing one notification: a timeout per attempt, retries with back-off, a bound on the whole.

At most :data:`ATTEMPTS` attempts, each given ``timeout_s`` (``LOADGEN_NOTIFY_TIMEOUT``,
default 10 s); after a connection error, a timeout, a 5xx or a 429 the next one
follows after 1 s, then 2 s (or the ``Retry-After`` a 429 or 503 asks for, when it
fits in the time left). Any 2xx is delivered. Another 4xx is final (the URL or the
payload is wrong: trying again cannot help), and so is a redirect, which is not
followed: the payload goes to the URL given and nowhere else. The whole takes at most
:meth:`Policy.budget_s` (33 s by default).

Errors are loadgen's own words, never an exception's text as-is: urllib's can hold the
URL, whose path is the secret; what the receiver answers is shown cut short, scrubbed.
"""

from __future__ import annotations

import email.utils
import http.client
import math
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import unquote, urlsplit

from .._version import __version__
from ..errors import UsageError
from ..redact import scrub
from .text import clip

__all__ = ["TIMEOUT_ENV", "Policy", "Outcome", "post"]

TIMEOUT_ENV = "LOADGEN_NOTIFY_TIMEOUT"
ATTEMPTS = 3
BACKOFF_S = (1.0, 2.0)
_TIMEOUT_RANGE = (0.1, 120.0)
_READ_MAX = 4096  # of an answer's body: enough for a receiver's error, no more
_MIN_ATTEMPT_S = 0.5  # an attempt with less time than this left is not started
_TOKEN_MIN = 8  # a shorter path segment or query value is not taken for a token ("hooks", "1.0")


@dataclass(frozen=True)
class Policy:
    """How hard a notification is tried."""

    timeout_s: float = 10.0
    attempts: int = ATTEMPTS
    backoff_s: tuple[float, ...] = BACKOFF_S

    @property
    def budget_s(self) -> float:
        """The bound on one notification: every attempt timing out, every back-off waited."""
        return self.attempts * self.timeout_s + sum(self.backoff_s[: self.attempts - 1])

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Policy:
        """The policy ``LOADGEN_NOTIFY_TIMEOUT`` sets; a :class:`UsageError` for a value that is not
        a number of seconds from 0.1 to 120."""
        raw = environ.get(TIMEOUT_ENV, "").strip()
        if not raw:
            return cls()
        try:
            value = float(raw.removesuffix("s"))
        except ValueError:
            value = math.nan
        low, high = _TIMEOUT_RANGE
        if not low <= value <= high:  # also refuses NaN
            raise UsageError(f"{TIMEOUT_ENV} {clip(raw, 40)!r} must be a number of seconds from {low:g} to {high:g}")
        return cls(timeout_s=value)


@dataclass(frozen=True)
class Outcome:
    """What became of one notification."""

    ok: bool
    attempts: int
    status: int | None  # the last HTTP status, None: no answer
    error: str | None  # why it was not delivered, safe to show


@dataclass(frozen=True)
class _Try:
    status: int | None
    error: str | None  # None: delivered
    retry: bool
    retry_after_s: float | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect ends the delivery (an HTTPError with the 3xx): the payload is not sent elsewhere."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _secrets(url: str) -> list[str]:
    """The parts of ``url`` that must not be shown: the whole, the path and the query."""
    parts = urlsplit(url)
    return [s for s in (url, parts.path, parts.query, f"{parts.path}?{parts.query}") if len(s) > 1]


def _tokens(url: str) -> list[str]:
    """What a receiver's answer must not show of ``url``, longest first: :func:`_secrets`, and
    each path segment and query value long enough to be a token (a receiver may repeat only
    the token it did not know)."""
    parts = urlsplit(url)
    tokens = {*parts.path.split("/"), *(item.partition("=")[2] for item in parts.query.split("&"))}
    pieces = {*_secrets(url), *(t for t in tokens if len(t) >= _TOKEN_MIN)}
    pieces |= {unquote(p) for p in pieces}
    return sorted(pieces, key=len, reverse=True)


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _answer(exc: urllib.error.HTTPError, url: str) -> str:
    """``HTTP 404 Not Found: no_service``: the status and the first line of what the receiver said,
    scrubbed of ``url``'s tokens."""
    tokens = _tokens(url)
    reason = clip(scrub(str(exc.reason or ""), tokens), 60).strip()  # scrubbed before a cut can halve a token
    text = ""
    try:
        text = exc.read(_READ_MAX).decode("utf-8", "replace").strip().splitlines()[0] if exc.fp else ""
    except (OSError, IndexError, http.client.HTTPException):
        pass
    finally:
        exc.close()
    said = clip(scrub(text, tokens), 120).strip()
    return f"HTTP {exc.code}" + (f" {reason}" if reason else "") + (f": {said}" if said else "")


def _connection_error(reason: object, timeout_s: float) -> tuple[str, bool]:
    """(words, worth retrying) for what stopped a request before an answer."""
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout_s:g} s", True
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused", True
    if isinstance(reason, socket.gaierror):
        return "the host name could not be resolved", True
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS: {clip(reason.verify_message or 'the certificate could not be verified', 120)}", False
    if isinstance(reason, ssl.SSLError):
        return f"TLS: {clip(reason.reason or type(reason).__name__, 120)}", False
    if isinstance(reason, (ConnectionError, http.client.HTTPException)):
        return "the connection closed without an answer", True
    if isinstance(reason, OSError) and reason.strerror:
        return clip(reason.strerror, 120), True
    return f"the request failed ({type(reason).__name__})", True


def _attempt(opener: urllib.request.OpenerDirector, url: str, body: bytes, timeout_s: float,
             policy: Policy) -> _Try:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": f"loadgen/{__version__}"})
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read(_READ_MAX)
            return _Try(response.status, None, False)
    except urllib.error.HTTPError as exc:
        code = exc.code
        if 300 <= code < 400:
            exc.close()
            return _Try(code, f"HTTP {code}: a redirect, which is not followed (the payload goes to the URL given "
                              f"only)", False)
        retry = code == 429 or code >= 500
        after = _retry_after(exc.headers) if code in (429, 503) else None
        return _Try(code, _answer(exc, url), retry, after)
    except urllib.error.URLError as exc:
        words, retry = _connection_error(exc.reason, policy.timeout_s)
        return _Try(None, words, retry)
    except (OSError, http.client.HTTPException) as exc:
        words, retry = _connection_error(exc, policy.timeout_s)
        return _Try(None, words, retry)
    except ValueError:  # a URL urllib refuses (checked URLs should not get here)
        return _Try(None, "the URL cannot be requested", False)


def post(url: str, body: bytes, policy: Policy, deadline: float) -> Outcome:
    """POST ``body`` (JSON) to ``url`` as :data:`Policy` says, giving up at ``deadline`` (monotonic)."""
    opener = urllib.request.build_opener(_NoRedirect())
    last = _Try(None, "no attempt was made", False)
    attempts = 0
    floor = min(_MIN_ATTEMPT_S, policy.timeout_s)
    while attempts < policy.attempts:
        left = deadline - time.monotonic()
        if attempts and left < floor:
            last = _Try(last.status, f"{last.error}; no time left to try again", False)
            break
        attempts += 1
        # The last attempt may get less than the timeout: what is left of the bound.
        last = _attempt(opener, url, body, max(min(policy.timeout_s, left), floor), policy)
        if last.error is None or not last.retry or attempts >= policy.attempts:
            break
        wait = policy.backoff_s[min(attempts, len(policy.backoff_s)) - 1] if policy.backoff_s else 0.0
        if last.retry_after_s is not None:
            wait = max(wait, last.retry_after_s)
        if time.monotonic() + wait + floor > deadline:
            last = _Try(last.status, f"{last.error}; no time left to try again", False)
            break
        time.sleep(wait)
    if last.error is None:
        return Outcome(True, attempts, last.status, None)
    tries = "" if attempts <= 1 else f" (after {attempts} attempts)"
    return Outcome(False, attempts, last.status, scrub(f"{last.error}{tries}", _secrets(url)))
