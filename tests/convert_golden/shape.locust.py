from locust import HttpUser, LoadTestShape, constant, task


class Visitor(HttpUser):
    wait_time = constant(1)

    @task
    def home(self):
        self.client.get("/")


class Steps(LoadTestShape):
    """Ten more users every 30 s, for five minutes."""

    def tick(self):
        run_time = self.get_run_time()
        if run_time > 300:
            return None
        return (10 * (int(run_time // 30) + 1), 10)


class Waves(LoadTestShape):
    def tick(self):
        if self.get_current_user_count() < 5:
            return (5, 5, [Visitor])
        return None
