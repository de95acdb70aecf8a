"""Locust suite, API load: browse, read and create campaigns, with the odd health check.

The locustfile scenarios/api.py replaced, written the way a Locust user
writes one: ``HttpUser``, ``catch_response=True`` with ``failure()``, the token
in ``self.client.headers``. Same endpoints, names, weights and checks as the
scenario; tests/test_convert_corpus.py converts it and compares the two.

    locust -f api.py --host http://127.0.0.1:8000
"""

import csv
import itertools
import os
import random
import time

from locust import HttpUser, between, task
from locust.exception import StopUser

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "data", "users.csv"), newline="") as f:
    ACCOUNTS = itertools.cycle(list(csv.DictReader(f)))

# The target starts with campaigns 1..50; ids created during the run are unknown to the others.
SEEDED_CAMPAIGNS = 50
PAGE_SIZES = (10, 20, 50)


class ApiUser(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self):
        self.account = next(ACCOUNTS)
        self.created = 0
        self.log_in()

    @task(5)
    def list_campaigns(self):
        limit = random.choice(PAGE_SIZES)
        offset = limit * random.randrange(SEEDED_CAMPAIGNS // limit)
        # Without name= Locust would report every page under its own query string.
        with self.client.get(
            "/api/campaigns",
            params={"limit": limit, "offset": offset},
            name="/api/campaigns",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"campaign page: HTTP {r.status_code}")
            elif "items" not in r.json() or "total" not in r.json():
                r.failure("campaign page: no items or total")

    @task(3)
    def read_campaign(self):
        campaign_id = random.randint(1, SEEDED_CAMPAIGNS)
        with self.client.get(
            f"/api/campaigns/{campaign_id}", name="/api/campaigns/[id]", catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"campaign: HTTP {r.status_code}")
            elif r.json().get("id") != campaign_id:
                r.failure(f"campaign: asked for {campaign_id}, got {r.json().get('id')}")

    @task(1)
    def create_campaign(self):
        # Log in again before the token expires (5 minutes on the demo).
        if time.monotonic() >= self.token_good_until:
            self.log_in()
        self.created += 1
        payload = {
            "name": f"Load test {id(self)}-{self.created}",
            "budget": random.randrange(500, 50_000, 50),
        }
        with self.client.post("/api/campaigns", json=payload, catch_response=True) as r:
            if r.status_code != 201:
                r.failure(f"campaign created: HTTP {r.status_code}")
            else:
                body = r.json()
                if "id" not in body or body.get("status") != "draft":
                    r.failure("campaign created: not a draft with an id")
                elif body.get("owner") != self.account["username"]:
                    r.failure(f"campaign created: owner {body.get('owner')}")

    @task(1)
    def health(self):
        with self.client.get("/health", catch_response=True) as r:
            if r.status_code != 200 or r.json().get("status") != "ok":
                r.failure("not healthy")

    def log_in(self):
        credentials = {"username": self.account["username"], "password": self.account["password"]}
        with self.client.post("/api/auth/login", json=credentials, catch_response=True) as r:
            if r.status_code != 200 or "access_token" not in r.json() or "expires_in" not in r.json():
                r.failure(f"login as {self.account['username']} failed with HTTP {r.status_code}")
                ok = False
            else:
                ok = True
        if not ok:
            raise StopUser()
        body = r.json()
        self.client.headers.update({"Authorization": f"Bearer {body['access_token']}"})
        self.token_good_until = time.monotonic() + 0.8 * body["expires_in"]
