"""Locust file for bench/run.py: one GET / per iteration, no think time.

FastHttpUser (geventhttpclient) is Locust's fastest client; wait_time
constant(0) makes it a closed loop like wrk, k6 constant-vus and loadgen's
--users mode.
"""

from locust import FastHttpUser, constant, task


class OneRequest(FastHttpUser):
    wait_time = constant(0)

    @task
    def get_root(self) -> None:
        self.client.get("/")
