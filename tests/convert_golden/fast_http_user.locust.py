from locust import FastHttpUser, constant, task


class ApiUser(FastHttpUser):
    wait_time = constant(0.5)
    network_timeout = 5.0
    insecure = True

    @task
    def search(self):
        # FastHttpUser names a request by the URL as written
        self.client.get("/search?q=shoes")
        self.client.get("/search", params={"q": "boots"})
        self.client.get("https://cdn.example/logo.png")
        self.client.post("/items", "raw body")
