"""A plain HttpUser: tasks, weights, on_start and think time."""

from locust import HttpUser, between, task


class ShopUser(HttpUser):
    host = "http://shop.example"
    wait_time = between(1, 3)  # seconds between tasks

    def on_start(self):
        # log in once per user
        self.client.post("/login", json={"user": "ann", "password": "secret"})

    @task(3)
    def browse(self):
        self.client.get("/products")
        self.client.get("/products/7", name="/products/[id]")

    @task
    def cart(self):
        r = self.client.get("/cart")
        if r.status_code == 200:
            print(len(r.json()["items"]))

    def on_stop(self):
        self.client.post("/logout")
