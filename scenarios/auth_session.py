"""Authentication and sessions: many signed-in users keeping their sessions alive.

What it models: the auth service behind a busy platform, where most traffic
is other services checking a bearer token (``GET /api/auth/verify``, 10 in 14
iterations), clients renew their access tokens (``POST /api/auth/refresh``,
3 in 14) and now and then someone signs out and back in (1 in 14). The cost
of auth grows with the number of live sessions, not with request rate alone,
so this scenario is meant for many users (200 and up) with long think times
(1-3 s) rather than few users hammering.

Run it against the demo target, in two terminals:

    loadgen demo-target                      # listens on 127.0.0.1:8000
    loadgen run scenarios/auth_session.py    # 200 users for 30 s, from `options` below

The command line (and the environment) override ``options``, e.g.
``loadgen run scenarios/auth_session.py --users 1000 --spawn-rate 100 --run-time 10m``.
Accounts come from ``data/users.csv``, next to this file; with more users than
rows, accounts are shared, and each login is still a session of its own.
"""

from __future__ import annotations

import time
from typing import Any

from loadgen import CSVFeeder, User, between, task

options = {
    "host": "http://127.0.0.1:8000",
    "users": 200,
    # Logins arrive as a steady ramp (4 s to 200 users) rather than one burst at t=0,
    # which would measure a thundering herd instead of the steady state.
    "spawn_rate": 50,
    "run_time": "30s",
}

ACCOUNTS = CSVFeeder("data/users.csv")


class SessionUser(User):
    wait_time = between(1, 3)

    async def on_start(self) -> None:
        self.account = ACCOUNTS.next()
        await self._log_in()

    @task(10)
    async def verify(self) -> None:
        # Renew before the token expires, as a real client does, so that expiry never
        # shows up as a 401: in this scenario every 401 is a genuine failure.
        if time.monotonic() >= self.renew_at:
            await self.refresh()
        r = await self.client.get("/api/auth/verify")
        r.check(status=200, json={"valid": True, "username": self.account["username"]}, name="token valid")
        if r.status == 401:
            # The server lost the session (counted above); sign in again to go on.
            await self._log_in()

    @task(3)
    async def refresh(self) -> None:
        r = await self.client.post("/api/auth/refresh", json={"refresh_token": self.refresh_token})
        if r.check(status=200, json={"access_token": ...}, name="token renewed"):
            self._keep_tokens(r.json())
        elif r.status == 401:
            await self._log_in()

    @task(1)
    async def sign_out_and_in(self) -> None:
        r = await self.client.post("/api/auth/logout")
        r.check(status=204, name="signed out")
        # The revoked token must not go out again, not even with the login request.
        del self.client.headers["Authorization"]
        await self._log_in()

    async def _log_in(self) -> None:
        r = await self.client.post(
            "/api/auth/login",
            json={"username": self.account["username"], "password": self.account["password"]},
        )
        if not r.check(status=200, json={"access_token": ..., "refresh_token": ...}, name="logged in"):
            # Stop this user with one clear exception in the summary instead of a 401 per task.
            raise RuntimeError(f"login as {self.account['username']} failed with HTTP {r.status}")
        self._keep_tokens(r.json())

    def _keep_tokens(self, body: dict[str, Any]) -> None:
        self.client.headers["Authorization"] = f"Bearer {body['access_token']}"
        # A server that rotates refresh tokens sends a new one; keep the newest.
        self.refresh_token = body.get("refresh_token") or self.refresh_token
        self.renew_at = time.monotonic() + 0.8 * body["expires_in"]
