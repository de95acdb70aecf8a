from locust import HttpUser, run_single_user, task, web
from locust.clients import HttpSession


class TwoHosts(HttpUser):
    def on_start(self):
        self.other = HttpSession(base_url="http://other.example", request_event=self.client.request_event, user=self)

    @task
    def both(self):
        self.client.get("/")
        self.other.get("/")


if __name__ == "__main__":
    run_single_user(TwoHosts)
