from locust import HttpUser, TaskSet, task
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser


class Flow(TaskSet):
    @task
    def step(self):
        r = self.client.get("/step")
        if r.status_code == 429:
            raise RescheduleTask()
        if r.status_code == 410:
            raise InterruptTaskSet(reschedule=False)
        if r.status_code == 503:
            raise RescheduleTaskImmediately()


class Worker(HttpUser):
    tasks = [Flow]

    @task
    def quit_when_done(self):
        if self.client.get("/done").status_code == 200:
            raise StopUser()
