import time

from locust import User, events, task


class KVClient:
    def __init__(self, host):
        self.host = host

    def get(self, key):
        start = time.perf_counter()
        value = key.upper()
        events.request.fire(request_type="kv", name="get", response_time=(time.perf_counter() - start) * 1000,
                            response_length=len(value), exception=None)
        return value


class KVUser(User):
    abstract = True

    def __init__(self, environment):
        super().__init__(environment)
        self.client = KVClient(environment.host)


class Reader(KVUser):
    @task
    def read(self):
        self.client.get("answer")
