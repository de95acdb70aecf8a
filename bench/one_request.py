from loadgen import User, task

class OneRequest(User):
    """One GET per iteration: the per-request cost of a scenario task."""
    @task
    async def get_root(self) -> None:
        await self.client.get("/")
