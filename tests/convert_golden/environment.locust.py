from locust import HttpUser, task


class Configured(HttpUser):
    def on_start(self):
        print("testing", self.environment.host)
        self.client.headers.update({"X-Tenant": "acme"})
        self.client.auth = ("ann", "secret")

    @task
    def t(self):
        size = self.environment.parsed_options.num_users
        self.client.get("/", headers={"X-Size": str(size)})
        print(self.client.cookies.get_dict())
