"""Locust suite, content generation: log in once, then ask for content and poll until it is ready.

The locustfile scenarios/content.py replaced, written the way a Locust user
writes one: the editor's work is a ``TaskSet`` (it signs in when it starts),
polls sleep with ``time.sleep`` (gevent makes that cooperative), checks are
``catch_response=True`` with ``failure()``. Same endpoints, names, weights and
checks as the scenario; tests/test_convert_corpus.py converts it and compares.

    locust -f content.py --host http://127.0.0.1:8000
"""

import csv
import itertools
import os
import random
import time

from locust import HttpUser, TaskSet, between, task
from locust.exception import StopUser

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "data", "users.csv"), newline="") as f:
    ACCOUNTS = itertools.cycle(list(csv.DictReader(f)))

PROMPTS = (
    "Subject line for the spring sale newsletter",
    "Three tweets announcing the new loyalty programme",
    "Landing page copy for the running shoes campaign",
    "Product description for a waterproof hiking jacket",
    "A short blog post on choosing the right mattress",
)

POLL_INTERVAL_S = 0.05
MAX_POLLS = 200  # a stuck job becomes one failure, not a user polling forever


class Editor(TaskSet):
    def on_start(self):
        self.account = next(ACCOUNTS)
        self.refresh_token = None
        self.log_in()

    @task(6)
    def simple(self):
        self.generate("simple")

    @task(3)
    def medium(self):
        self.generate("medium")

    @task(1)
    def complex(self):
        self.generate("complex")

    def generate(self, content_type):
        prompt = random.choice(PROMPTS)
        with self.send("POST", "/api/content", json={"type": content_type, "prompt": prompt}) as r:
            if r.status_code != 202 or r.json().get("status") != "queued" or "job_id" not in r.json():
                r.failure(f"job accepted: HTTP {r.status_code}")
                return
            job_id = r.json()["job_id"]
        for poll in range(MAX_POLLS):
            time.sleep(POLL_INTERVAL_S)
            with self.send("GET", f"/api/content/{job_id}", name="/api/content/[id]") as r:
                if r.status_code != 200 or "status" not in r.json():
                    r.failure(f"job status: HTTP {r.status_code}")
                    return
                status = r.json()["status"]
                if status == "done":
                    return
                if status == "failed":
                    r.failure("job failed")
                    return
                if poll == MAX_POLLS - 1:
                    r.failure("job did not finish")

    def send(self, method, url, **kwargs):
        """A request with a live token (renewed before it expires), to use in a ``with`` block."""
        if time.monotonic() >= self.renew_at:
            self.renew()
        return self.client.request(method, url, catch_response=True, **kwargs)

    def log_in(self):
        credentials = {"username": self.account["username"], "password": self.account["password"]}
        with self.client.post("/api/auth/login", json=credentials, catch_response=True) as r:
            if r.status_code != 200 or "access_token" not in r.json() or "refresh_token" not in r.json():
                r.failure(f"login as {self.account['username']} failed with HTTP {r.status_code}")
                raise StopUser()
        self.keep_tokens(r.json())

    def renew(self):
        with self.client.post(
            "/api/auth/refresh", json={"refresh_token": self.refresh_token}, catch_response=True
        ) as r:
            if r.status_code == 401:
                # The refresh token has expired too: sign in again. Not a failure of the target.
                r.success()
                self.log_in()
                return True
            if r.status_code != 200 or "access_token" not in r.json():
                r.failure(f"token renewed: HTTP {r.status_code}")
                return False
        self.keep_tokens(r.json())
        return True

    def keep_tokens(self, body):
        self.client.headers["Authorization"] = f"Bearer {body['access_token']}"
        self.refresh_token = body.get("refresh_token") or self.refresh_token
        self.renew_at = time.monotonic() + 0.8 * body["expires_in"]


class ContentUser(HttpUser):
    wait_time = between(0.5, 1.5)
    tasks = [Editor]
