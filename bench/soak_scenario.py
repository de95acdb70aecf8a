"""The soak's scenario: a session's worth of API calls against bench's nginx.

nginx answers every path with 200 "ok" (bench/nginx.conf.template), so the
checks look at status only; what matters is that the run exercises what a
real scenario does for an hour: a login per user, weighted tasks, ids folded
into names, query strings, JSON and form bodies, headers changed mid-run.
"""

from loadgen import User, task


class ApiUser(User):
    async def on_start(self) -> None:
        r = await self.client.post("/api/auth/login", json={"username": f"user{self.index}", "password": "pw"})
        if r.check(status=200):
            self.client.headers["Authorization"] = f"Bearer token-{self.index}"

    @task(5)
    async def read_item(self) -> None:
        item = self.random.randint(1, 10_000)
        r = await self.client.get(f"/api/items/{item}", name="/api/items/[id]")
        r.check(status=200)

    @task(3)
    async def list_items(self) -> None:
        r = await self.client.get("/api/items", params={"page": self.random.randint(1, 50), "size": 20})
        r.check(status=200, contains="ok")

    @task(2)
    async def create_content(self) -> None:
        kind = self.random.choice(("simple", "medium", "complex"))
        r = await self.client.post("/api/content", json={"kind": kind, "prompt": "x" * 200})
        r.check(status=200)

    @task(1)
    async def search(self) -> None:
        r = await self.client.post("/api/search", data={"q": "campaign", "limit": "10"})
        r.check(status=200)

    @task(1)
    async def health(self) -> None:
        await self.client.get("/health")
