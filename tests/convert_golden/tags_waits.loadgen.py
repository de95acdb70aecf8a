from loadgen import User, constant_pacing, constant_throughput, tag, task


class Reader(User):
    weight = 3
    wait_time = constant_pacing(2)

    @tag("read", "smoke")
    @task
    async def read(self):
        await self.client.get("/articles")


class Writer(User):
    fixed_count = 1
    wait_time = constant_throughput(0.5)

    @task
    @tag("write")
    async def write(self):
        await self.client.post("/articles", json={"title": "t"})


class Idle(User):
    abstract = True
