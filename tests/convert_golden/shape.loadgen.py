from loadgen import User, LoadShape, constant, task


class Visitor(User):
    wait_time = constant(1)

    @task
    async def home(self):
        await self.client.get("/")


class Steps(LoadShape):
    """Ten more users every 30 s, for five minutes."""

    def tick(self):
        run_time = self.get_run_time()
        if run_time > 300:
            return None
        return (10 * (int(run_time // 30) + 1), 10)


class Waves(LoadShape):
    def tick(self):
        # loadgen convert: self.get_current_user_count(): loadgen's LoadShape has no get_current_user_count(): a shape says the users it wants
        if self.get_current_user_count() < 5:
            # loadgen convert: a 3-tuple in tick(): Locust's third item picks the user classes of a stage; loadgen's LoadShape.tick() returns (users, spawn_rate) and runs every user class
            return (5, 5, [Visitor])
        return None
