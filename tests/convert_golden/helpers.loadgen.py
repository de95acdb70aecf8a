from loadgen import User, TaskSet, task


async def login(user, name):
    """A module-level helper: it makes a request, so it becomes async."""
    return (await user.client.post("/login", json={"name": name})).json()["token"]


def label(item):
    return f"item {item}"  # no request: stays as it is


class Browse(TaskSet):
    @task
    async def open_item(self):
        token = await self.user.fetch_token()
        data = (await self.client.get("/items/1", headers={"Authorization": token})).json()
        print(label(data["id"]))
        # loadgen convert: self.client.get(f"/sizes/{s}") cannot be awaited in a lambda: loadgen's client is async, so make this request in on_start or a task
        sizes = sorted(["s", "m"], key=lambda s: self.client.get(f"/sizes/{s}").status_code)


class Shopper(User):
    tasks = [Browse]

    async def on_start(self):
        self.token = await login(self, "ann")

    async def fetch_token(self):
        if not self.token:
            await self.refresh()
        return self.token

    async def refresh(self):
        self.token = (await self.client.post("/refresh")).json()["token"]
