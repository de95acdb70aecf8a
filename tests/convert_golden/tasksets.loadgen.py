from loadgen import User, SequentialTaskSet, TaskSet, between, task


async def health(user):
    await user.client.get("/health")


class Checkout(SequentialTaskSet):
    async def on_start(self):
        await self.client.get("/cart")

    @task
    async def address(self):
        await self.client.post("/checkout/address", data={"zip": "12345"})

    @task
    async def pay(self):
        await self.client.post("/checkout/pay")
        self.interrupt()


class Browse(TaskSet):
    tasks = {health: 1, Checkout: 2}

    @task(5)
    async def list_items(self):
        await self.client.get("/items")

    @task
    async def leave(self):
        # loadgen convert: self.wait(): loadgen's task sets have no wait(): the wait_time runs between tasks
        self.wait()
        self.interrupt(reschedule=False)


class Shopper(User):
    wait_time = between(0.5, 2)
    tasks = [Browse]

    @task
    class Inline(TaskSet):
        @task
        async def peek(self):
            await self.client.get("/peek")
