"""The client handed to helpers, and what is read from responses."""

from loadgen import User, task


async def register_device(client, device):
    response = await client.post("/devices", json=device)
    if (response.elapsed_ms / 1000) > 1:
        response.fail("slow registration")
    return response


def lookup(cache, key):
    return cache.get(key)  # a dict's get, not a request


class Phone(User):
    @task
    async def setup(self):
        await register_device(self.client, {"id": 1})
        await self.ping(self.client)
        print(lookup({"k": 1}, "k"))

    @task
    async def read(self):
        r = await self.client.get("/status")
        # loadgen convert: r.reason: loadgen's Response has no 'reason': use r.status
        print((r.elapsed_ms / 1000), r.reason)
        # loadgen convert: r.iter_lines: loadgen's Response has no 'iter_lines': the body is read whole: use r.text.splitlines()
        for line in r.iter_lines():
            print(line)

    async def ping(self, session):
        await session.head("/ping")
