"""Locust suite, authentication and sessions: many signed-in users keeping their sessions alive.

The locustfile scenarios/auth_session.py replaced, written the way a Locust
user writes one: the session's life is a ``TaskSet`` whose tasks are listed in
a ``tasks`` dict of plain functions, the sign-in happens in the user's
``on_start``, checks are ``catch_response=True`` with ``failure()``/``success()``.
Same endpoints, names, weights and checks as the scenario;
tests/test_convert_corpus.py converts it and compares the two.

    locust -f auth_session.py --host http://127.0.0.1:8000 -u 200 -r 50
"""

import csv
import itertools
import os
import time

from locust import HttpUser, TaskSet, between
from locust.exception import StopUser

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "data", "users.csv"), newline="") as f:
    ACCOUNTS = itertools.cycle(list(csv.DictReader(f)))


def verify(ts):
    # Renew before the token expires, so that every 401 here is a genuine failure.
    if time.monotonic() >= ts.user.renew_at:
        refresh(ts)
    with ts.client.get("/api/auth/verify", catch_response=True) as r:
        if r.status_code != 200:
            r.failure(f"token valid: HTTP {r.status_code}")
        elif r.json().get("valid") is not True or r.json().get("username") != ts.user.account["username"]:
            r.failure("token valid: wrong answer")
    if r.status_code == 401:
        # The server lost the session (counted above); sign in again to go on.
        ts.user.log_in()


def refresh(ts):
    with ts.client.post(
        "/api/auth/refresh", json={"refresh_token": ts.user.refresh_token}, catch_response=True
    ) as r:
        if r.status_code == 200 and "access_token" in r.json():
            ts.user.keep_tokens(r.json())
        else:
            r.failure(f"token renewed: HTTP {r.status_code}")
    if r.status_code == 401:
        ts.user.log_in()


def sign_out_and_in(ts):
    with ts.client.post("/api/auth/logout", catch_response=True) as r:
        if r.status_code == 204:
            r.success()
        else:
            r.failure(f"signed out: HTTP {r.status_code}")
    # The revoked token must not go out again, not even with the login request.
    ts.client.headers.pop("Authorization", None)
    ts.user.log_in()


class LiveSession(TaskSet):
    tasks = {verify: 10, refresh: 3, sign_out_and_in: 1}


class SessionUser(HttpUser):
    wait_time = between(1, 3)
    tasks = [LiveSession]

    def on_start(self):
        self.account = next(ACCOUNTS)
        self.refresh_token = None
        self.log_in()

    def log_in(self):
        credentials = {"username": self.account["username"], "password": self.account["password"]}
        with self.client.post("/api/auth/login", json=credentials, catch_response=True) as r:
            if r.status_code != 200 or "access_token" not in r.json() or "refresh_token" not in r.json():
                r.failure(f"login as {self.account['username']} failed with HTTP {r.status_code}")
                raise StopUser()
        self.keep_tokens(r.json())

    def keep_tokens(self, body):
        self.client.headers["Authorization"] = f"Bearer {body['access_token']}"
        self.refresh_token = body.get("refresh_token") or self.refresh_token
        self.renew_at = time.monotonic() + 0.8 * body["expires_in"]
