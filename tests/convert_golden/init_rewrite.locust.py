from locust import HttpUser, task

names = ["ann", "bob"]


class Named(HttpUser):
    def __init__(self, parent):
        self.name = names.pop()
        super().__init__(parent)

    @task
    def hello(self):
        self.client.get(f"/hello/{self.name}", name="/hello/[name]")
