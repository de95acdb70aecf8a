from locust import HttpUser, task


class CheckingUser(HttpUser):
    @task
    def item(self):
        with self.client.get("/items/1", catch_response=True, name="/items/[id]") as r:  # the item page
            if r.status_code == 404:
                r.success()
            elif "price" not in r.text:
                r.failure("no price on the page")

    @task
    def accepted(self):
        with self.client.post("/jobs", json={"n": 1}, catch_response=True) as response:
            if response.status_code in (200, 202):
                response.success()
            else:
                response.failure(f"got {response.status_code}")

    @task
    def anything_goes(self):
        with self.client.get("/flaky", catch_response=True) as resp:
            resp.success()

    @task
    def no_name(self):
        with self.client.get("/health", catch_response=True):
            pass
