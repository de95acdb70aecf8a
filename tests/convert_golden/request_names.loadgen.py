from loadgen import User, task


class Namer(User):
    @task
    async def grouped(self):
        # one row for all orders
        for order_id in (1, 2, 3):
            await self.client.get(f"/orders/{order_id}", name="/orders/[id]")
        await self.client.get("/orders")

    @task
    async def by_attribute(self):
        await self.client.get("/users/1", name="/users/[id]")
        await self.client.get("/users/2", name="/users/[id]")
        await self.client.get("/users")

    @task
    async def queries(self):
        await self.client.get("/search?q=shoes", name="/search?q=shoes")
        await self.client.get("/search", params={"q": "boots", "page": 2, "skip": None}, name="/search?q=boots&page=2")
        await self.client.get("/search?sort=asc", params={"q": "hats"}, name="/search?sort=asc&q=hats")
        page = 3
        await self.client.get(f"/list?page={page}", name=f"/list?page={page}")
        # loadgen convert: self.client.get("/list", params={"page": page}): Locust names this request with its query string (params=); loadgen names it by its path: add name= to keep Locust's row
        await self.client.get("/list", params={"page": page})
        await self.client.get("https://other.example/path?x=1", name="/path?x=1")
