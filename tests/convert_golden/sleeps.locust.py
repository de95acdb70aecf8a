import time
import gevent
from time import sleep as nap

from locust import HttpUser, task


class SleepyUser(HttpUser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        time.sleep(0.1)  # slow set-up

    @task
    def paced(self):
        self.client.get("/a")
        time.sleep(1)
        gevent.sleep(0.5)
        nap(0.25)
