from locust import HttpUser, User, constant_pacing, constant_throughput, tag, task


class Reader(HttpUser):
    weight = 3
    wait_time = constant_pacing(2)

    @tag("read", "smoke")
    @task
    def read(self):
        self.client.get("/articles")


class Writer(HttpUser):
    fixed_count = 1
    wait_time = constant_throughput(0.5)

    @task
    @tag("write")
    def write(self):
        self.client.post("/articles", json={"title": "t"})


class Idle(User):
    abstract = True
