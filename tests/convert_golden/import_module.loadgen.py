from loadgen import User as LoadgenUser, between
from loadgen import task


class User(LoadgenUser):
    wait_time = between(1, 2)

    @task
    async def index(self):
        await self.client.get("/")


if __name__ == "__main__":
    from locust import run_single_user as once

    # loadgen convert: once: loadgen has no run_single_user: run `loadgen run FILE --users 1` instead
    once(User)
