import locust
from locust.user import task


class User(locust.HttpUser):
    wait_time = locust.between(1, 2)

    @task
    def index(self):
        self.client.get("/")


if __name__ == "__main__":
    from locust import run_single_user as once

    once(User)
