from locust import HttpUser, task


class Base(HttpUser):
    abstract = True

    def on_start(self):
        super().on_start()
        self.token = "t0"

    def send(self, method, url, **kwargs):
        """Every request with the token; the caller checks the response in a `with` block."""
        kwargs.setdefault("headers", {})["Authorization"] = self.token
        return self.client.request(method, url, catch_response=True, **kwargs)


class Orders(Base):
    @task
    def order(self):
        with self.send("POST", "/orders", json={"sku": 1}) as r:
            if r.status_code == 409:
                r.success()  # already ordered: fine
            elif r.status_code != 201:
                r.failure(f"HTTP {r.status_code}")

        def poll():
            return self.client.get("/orders/latest", name="/orders/latest")

        latest = poll()
        print(latest.json())
