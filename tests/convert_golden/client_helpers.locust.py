"""The client handed to helpers, and what is read from responses."""

from locust import HttpUser, task


def register_device(client, device):
    with client.post("/devices", json=device, catch_response=True) as response:
        if response.elapsed.total_seconds() > 1:
            response.failure("slow registration")
    return response


def lookup(cache, key):
    return cache.get(key)  # a dict's get, not a request


class Phone(HttpUser):
    @task
    def setup(self):
        register_device(self.client, {"id": 1})
        self.ping(self.client)
        print(lookup({"k": 1}, "k"))

    @task
    def read(self):
        r = self.client.get("/status")
        print(r.elapsed.total_seconds(), r.reason)
        for line in r.iter_lines():
            print(line)

    def ping(self, session):
        session.head("/ping")
