"""A plain HttpUser: tasks, weights, on_start and think time."""

from loadgen import User, between, task


class ShopUser(User):
    host = "http://shop.example"
    wait_time = between(1, 3)  # seconds between tasks

    async def on_start(self):
        # log in once per user
        await self.client.post("/login", json={"user": "ann", "password": "secret"})

    @task(3)
    async def browse(self):
        await self.client.get("/products")
        await self.client.get("/products/7", name="/products/[id]")

    @task
    async def cart(self):
        r = await self.client.get("/cart")
        if r.status_code == 200:
            print(len(r.json()["items"]))

    async def on_stop(self):
        await self.client.post("/logout")
