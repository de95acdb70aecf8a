from locust import HttpUser, SequentialTaskSet, TaskSet, between, task


def health(user):
    user.client.get("/health")


class Checkout(SequentialTaskSet):
    def on_start(self):
        self.client.get("/cart")

    @task
    def address(self):
        self.client.post("/checkout/address", data={"zip": "12345"})

    @task
    def pay(self):
        self.client.post("/checkout/pay")
        self.interrupt()


class Browse(TaskSet):
    tasks = {health: 1, Checkout: 2}

    @task(5)
    def list_items(self):
        self.client.get("/items")

    @task
    def leave(self):
        self.wait()
        self.interrupt(reschedule=False)


class Shopper(HttpUser):
    wait_time = between(0.5, 2)
    tasks = [Browse]

    @task
    class Inline(TaskSet):
        @task
        def peek(self):
            self.client.get("/peek")
