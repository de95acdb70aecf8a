from locust import HttpUser, task


class Namer(HttpUser):
    @task
    def grouped(self):
        with self.client.rename_request("/orders/[id]"):  # one row for all orders
            for order_id in (1, 2, 3):
                self.client.get(f"/orders/{order_id}")
        self.client.get("/orders")

    @task
    def by_attribute(self):
        self.client.request_name = "/users/[id]"
        self.client.get("/users/1")
        self.client.get("/users/2")
        self.client.request_name = None
        self.client.get("/users")

    @task
    def queries(self):
        self.client.get("/search?q=shoes")
        self.client.get("/search", params={"q": "boots", "page": 2, "skip": None})
        self.client.get("/search?sort=asc", params={"q": "hats"})
        page = 3
        self.client.get(f"/list?page={page}")
        self.client.get("/list", params={"page": page})
        self.client.get("https://other.example/path?x=1")
