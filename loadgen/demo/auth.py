"""Opaque bearer tokens for the demo target.

Tokens are random strings held in memory: a load test needs realistic
login / verify / refresh traffic, not cryptography. Expired entries are
dropped lazily on lookup and swept periodically, so a login-heavy run does not
grow memory without bound.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Session", "TokenStore", "credentials_ok"]

#: Sweep expired tokens after this many issued tokens (amortises the O(n) scan).
_SWEEP_EVERY = 4096


def credentials_ok(username: object, password: object) -> bool:
    """Demo rule: any non-empty username with password "password" or equal to the username."""
    return (
        isinstance(username, str)
        and bool(username)
        and isinstance(password, str)
        and password in ("password", username)
    )


@dataclass(slots=True)
class Session:
    """One login: an access token, the refresh token that renews it, and their deadlines."""

    username: str
    access_token: str
    refresh_token: str
    access_expires_at: float
    refresh_expires_at: float


class TokenStore:
    """Issues, verifies, refreshes and revokes tokens; the clock is injectable for tests."""

    def __init__(
        self,
        access_ttl_s: float,
        refresh_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._access_ttl = access_ttl_s
        self._refresh_ttl = refresh_ttl_s
        self._clock = clock
        self._by_access: dict[str, Session] = {}
        self._by_refresh: dict[str, Session] = {}
        self._issued_since_sweep = 0

    @property
    def access_ttl_s(self) -> float:
        """Lifetime of a freshly issued access token."""
        return self._access_ttl

    def __len__(self) -> int:
        """Number of live sessions (including not-yet-swept expired ones)."""
        return len(self._by_refresh)

    def expires_in(self, session: Session) -> float:
        """Seconds until the session's access token expires (never negative)."""
        return max(0.0, session.access_expires_at - self._clock())

    def login(self, username: str) -> Session:
        """Start a new session for ``username``."""
        now = self._clock()
        session = Session(
            username=username,
            access_token=secrets.token_urlsafe(24),
            refresh_token=secrets.token_urlsafe(32),
            access_expires_at=now + self._access_ttl,
            refresh_expires_at=now + self._refresh_ttl,
        )
        self._by_access[session.access_token] = session
        self._by_refresh[session.refresh_token] = session
        self._maybe_sweep(now)
        return session

    def verify(self, access_token: str) -> Session | None:
        """The live session of ``access_token``, or None if unknown, revoked or expired."""
        session = self._by_access.get(access_token)
        if session is None:
            return None
        if session.access_expires_at <= self._clock():
            del self._by_access[access_token]
            return None
        return session

    def refresh(self, refresh_token: str) -> Session | None:
        """Replace the session's access token with a fresh one; None if the refresh token is not live.

        The refresh token itself is kept (not rotated) so that concurrent
        virtual users sharing a login do not invalidate each other.
        """
        session = self._by_refresh.get(refresh_token)
        now = self._clock()
        if session is None:
            return None
        if session.refresh_expires_at <= now:
            self._forget(session)
            return None
        self._by_access.pop(session.access_token, None)
        session.access_token = secrets.token_urlsafe(24)
        session.access_expires_at = now + self._access_ttl
        self._by_access[session.access_token] = session
        self._maybe_sweep(now)
        return session

    def logout(self, session: Session) -> None:
        """Revoke both tokens of ``session``."""
        self._forget(session)

    def _forget(self, session: Session) -> None:
        self._by_access.pop(session.access_token, None)
        self._by_refresh.pop(session.refresh_token, None)

    def _maybe_sweep(self, now: float) -> None:
        self._issued_since_sweep += 1
        if self._issued_since_sweep < _SWEEP_EVERY:
            return
        self._issued_since_sweep = 0
        for token in [t for t, s in self._by_access.items() if s.access_expires_at <= now]:
            del self._by_access[token]
        for session in [s for s in self._by_refresh.values() if s.refresh_expires_at <= now]:
            self._forget(session)
