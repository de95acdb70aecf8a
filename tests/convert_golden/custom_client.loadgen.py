import time

from loadgen import User, events, task


class KVClient:
    def __init__(self, host):
        self.host = host

    def get(self, key):
        start = time.perf_counter()
        value = key.upper()
        # loadgen convert: events.request.fire() reports a result to Locust's statistics: loadgen records only the requests its client makes, so this is not counted
        events.request.fire(request_type="kv", name="get", response_time=(time.perf_counter() - start) * 1000,
                            response_length=len(value), exception=None)
        return value


# loadgen convert: KVUser sets its own self.client (a custom client): loadgen's User has an HTTP client and records only the requests that client makes, so this user needs hand work
class KVUser(User):
    abstract = True

    # loadgen convert: KVUser.__init__ takes Locust's arguments (environment): loadgen creates each user as KVUser(client, index); move this code to on_start
    def __init__(self, environment):
        super().__init__(environment)
        self.client = KVClient(environment.host)


class Reader(KVUser):
    @task
    async def read(self):
        self.client.get("answer")
