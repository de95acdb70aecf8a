from loadgen import User, task

names = ["ann", "bob"]


class Named(User):
    def __init__(self, *args, **kwargs):
        self.name = names.pop()
        super().__init__(*args, **kwargs)

    @task
    async def hello(self):
        await self.client.get(f"/hello/{self.name}", name="/hello/[name]")
