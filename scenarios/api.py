"""General API load: browse, read and create campaigns, with the odd health check.

What it models: the platform's dashboard and its API clients, whose traffic is
mostly reads: campaign list pages (5 in 10 requests), single campaigns (3 in
10), a few creations (1 in 10) and the health checks a load balancer or a
status page sends (1 in 10). Think times are short (0.1-0.5 s) because API
clients, unlike people, do not pause to read. Creating a campaign needs a
bearer token, so every user logs in once at start.

Run it against the demo target, in two terminals:

    loadgen demo-target              # listens on 127.0.0.1:8000
    loadgen run scenarios/api.py     # 20 users for 30 s, from `options` below

The command line (and the environment) override ``options``, e.g.
``loadgen run scenarios/api.py --host https://staging.example.com --users 200 --run-time 10m``.
Accounts come from ``data/users.csv``, next to this file.
"""

from __future__ import annotations

import time

from loadgen import CSVFeeder, User, between, task

options = {
    "host": "http://127.0.0.1:8000",
    "users": 20,
    "spawn_rate": 10,
    "run_time": "30s",
}

ACCOUNTS = CSVFeeder("data/users.csv")

# The demo target starts with campaigns 1..50. Reading only those keeps every read a hit:
# ids created during the run are not known to the other users.
SEEDED_CAMPAIGNS = 50
PAGE_SIZES = (10, 20, 50)


class ApiUser(User):
    wait_time = between(0.1, 0.5)

    async def on_start(self) -> None:
        self.account = ACCOUNTS.next()
        self.created = 0
        await self._log_in()

    @task(5)
    async def list_campaigns(self) -> None:
        limit = self.random.choice(PAGE_SIZES)
        offset = limit * self.random.randrange(SEEDED_CAMPAIGNS // limit)
        # Different pages cost the server differently, so vary them; the query string
        # never becomes part of the row, but name= says so to the reader.
        r = await self.client.get(
            "/api/campaigns", params={"limit": limit, "offset": offset}, name="/api/campaigns"
        )
        r.check(status=200, json={"items": ..., "total": ...}, name="campaign page")

    @task(3)
    async def read_campaign(self) -> None:
        campaign_id = self.random.randint(1, SEEDED_CAMPAIGNS)
        # One row for all ids; the raw URL would open 50 rows of a handful of requests each.
        r = await self.client.get(f"/api/campaigns/{campaign_id}", name="/api/campaigns/[id]")
        r.check(status=200, json={"id": campaign_id}, name="campaign")

    @task(1)
    async def create_campaign(self) -> None:
        # Log in again shortly before the token expires (5 minutes on the demo), so that a
        # long run never counts an expired token as an error of the target.
        if time.monotonic() >= self.token_good_until:
            await self._log_in()
        self.created += 1
        r = await self.client.post(
            "/api/campaigns",
            json={
                "name": f"Load test {self.index}-{self.created}",
                "budget": self.random.randrange(500, 50_000, 50),
            },
        )
        r.check(
            status=201,
            json={"id": ..., "status": "draft", "owner": self.account["username"]},
            name="campaign created",
        )

    @task(1)
    async def health(self) -> None:
        r = await self.client.get("/health")
        r.check(status=200, json={"status": "ok"}, name="healthy")

    async def _log_in(self) -> None:
        r = await self.client.post(
            "/api/auth/login",
            json={"username": self.account["username"], "password": self.account["password"]},
        )
        if not r.check(status=200, json={"access_token": ..., "expires_in": ...}, name="logged in"):
            # Stop this user with one clear exception in the summary instead of a 401 per creation.
            raise RuntimeError(f"login as {self.account['username']} failed with HTTP {r.status}")
        body = r.json()
        self.client.headers["Authorization"] = f"Bearer {body['access_token']}"
        self.token_good_until = time.monotonic() + 0.8 * body["expires_in"]
