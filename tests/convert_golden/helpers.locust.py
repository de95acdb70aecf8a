from locust import HttpUser, TaskSet, task


def login(user, name):
    """A module-level helper: it makes a request, so it becomes async."""
    return user.client.post("/login", json={"name": name}).json()["token"]


def label(item):
    return f"item {item}"  # no request: stays as it is


class Browse(TaskSet):
    @task
    def open_item(self):
        token = self.user.fetch_token()
        data = self.client.get("/items/1", headers={"Authorization": token}).json()
        print(label(data["id"]))
        sizes = sorted(["s", "m"], key=lambda s: self.client.get(f"/sizes/{s}").status_code)


class Shopper(HttpUser):
    tasks = [Browse]

    def on_start(self):
        self.token = login(self, "ann")

    def fetch_token(self):
        if not self.token:
            self.refresh()
        return self.token

    def refresh(self):
        self.token = self.client.post("/refresh").json()["token"]
