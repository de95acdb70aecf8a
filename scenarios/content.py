"""Content generation: log in once, then ask for content and wait until it is ready.

What it models: an editor on the marketing platform who signs in and keeps
generating content: mostly short copy (``simple``), sometimes a longer piece
(``medium``), now and then a ``complex`` one. Generation is asynchronous:
``POST /api/content`` answers 202 at once with a job id while the work waits
on the server's queue, and the editor polls ``GET /api/content/{id}`` until
the job is done. The POST alone stays fast however long the queue grows; the
polls are what make a backlog visible (more polls per job, and a "job did not
finish" failure once the queue stops draining).

Run it against the demo target, in two terminals:

    loadgen demo-target                  # listens on 127.0.0.1:8000
    loadgen run scenarios/content.py     # 20 users for 30 s, from `options` below

The command line (and the environment) override ``options``, e.g.
``loadgen run scenarios/content.py --host https://staging.example.com --users 100 --run-time 5m``.
Accounts come from ``data/users.csv``, next to this file.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loadgen import CSVFeeder, Response, User, between, task

options = {
    "host": "http://127.0.0.1:8000",
    "users": 20,
    "spawn_rate": 10,
    "run_time": "30s",
}

# One feeder for the whole run hands rows to users in turn: 20 users are 20 distinct
# accounts, and more users than rows share accounts (each login is its own session).
ACCOUNTS = CSVFeeder("data/users.csv")

PROMPTS = (
    "Subject line for the spring sale newsletter",
    "Three tweets announcing the new loyalty programme",
    "Landing page copy for the running shoes campaign",
    "Product description for a waterproof hiking jacket",
    "A short blog post on choosing the right mattress",
)

POLL_INTERVAL_S = 0.05
# Bounded so that a stuck job becomes one counted failure instead of a user polling
# forever: 200 polls are at least 10 s, 20 times the slowest job on an idle demo target.
MAX_POLLS = 200


class ContentUser(User):
    wait_time = between(0.5, 1.5)

    async def on_start(self) -> None:
        self.account = ACCOUNTS.next()
        await self._log_in()

    @task(6)
    async def simple(self) -> None:
        await self._generate("simple")

    @task(3)
    async def medium(self) -> None:
        await self._generate("medium")

    @task(1)
    async def complex(self) -> None:
        await self._generate("complex")

    async def _generate(self, content_type: str) -> None:
        prompt = self.random.choice(PROMPTS)
        r = await self._send("POST", "/api/content", json={"type": content_type, "prompt": prompt})
        if not r.check(status=202, json={"job_id": ..., "status": "queued"}, name="job accepted"):
            return
        job_id = r.json()["job_id"]
        for _ in range(MAX_POLLS):
            # A job is never ready the instant it is accepted; asking at once would only add load.
            await asyncio.sleep(POLL_INTERVAL_S)
            # name= puts every job's polls in one row; the raw URL would open a row per job id.
            r = await self._send("GET", f"/api/content/{job_id}", name="/api/content/[id]")
            if not r.check(status=200, json={"status": ...}, name="job status"):
                return
            status = r.json()["status"]
            if status == "done":
                return
            if status == "failed":
                r.fail("job failed")
                return
        r.fail("job did not finish")

    # -- the bearer token ----------------------------------------------------

    async def _send(self, method: str, url: str, **kw: Any) -> Response:
        """A request with a live token: renewed before it expires, and once more on a 401."""
        if time.monotonic() >= self.renew_at:
            await self._renew()
        r = await self.client.request(method, url, **kw)
        # Tokens are renewed ahead of expiry, so a 401 means the server dropped the session
        # (a restart, a revocation). It stays counted as an error, since it is one, but the
        # user recovers instead of failing every request until the end of the run.
        if r.status == 401 and await self._renew():
            r = await self.client.request(method, url, **kw)
        return r

    async def _log_in(self) -> None:
        r = await self.client.post(
            "/api/auth/login",
            json={"username": self.account["username"], "password": self.account["password"]},
        )
        if not r.check(status=200, json={"access_token": ..., "refresh_token": ...}, name="logged in"):
            # Without a token every task would fail: stop this user with one clear
            # exception in the summary rather than thousands of 401s.
            raise RuntimeError(f"login as {self.account['username']} failed with HTTP {r.status}")
        self._keep_tokens(r.json())

    async def _renew(self) -> bool:
        r = await self.client.post("/api/auth/refresh", json={"refresh_token": self.refresh_token})
        if r.status == 401:
            # The refresh token has expired as well (after an hour on the demo): sign in again.
            await self._log_in()
            return True
        if not r.check(status=200, json={"access_token": ...}, name="token renewed"):
            return False
        self._keep_tokens(r.json())
        return True

    def _keep_tokens(self, body: dict[str, Any]) -> None:
        self.client.headers["Authorization"] = f"Bearer {body['access_token']}"
        # A server that rotates refresh tokens sends a new one; one that does not, may omit it.
        self.refresh_token = body.get("refresh_token") or self.refresh_token
        # Renew at 80 % of the lifetime, as OAuth clients do: every request then carries a
        # token with time to spare, and expiry never shows up as a 401 in the results.
        self.renew_at = time.monotonic() + 0.8 * body["expires_in"]
