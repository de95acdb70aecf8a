from loadgen import User, TaskSet, task
from loadgen import InterruptTaskSet, RescheduleTask, StopUser


class Flow(TaskSet):
    @task
    async def step(self):
        r = await self.client.get("/step")
        if r.status_code == 429:
            raise RescheduleTask()
        if r.status_code == 410:
            raise InterruptTaskSet(reschedule=False)
        if r.status_code == 503:
            # loadgen convert: RescheduleTaskImmediately became RescheduleTask: loadgen still waits the user's wait_time before the next task
            raise RescheduleTask()


class Worker(User):
    tasks = [Flow]

    @task
    async def quit_when_done(self):
        if (await self.client.get("/done")).status_code == 200:
            raise StopUser()
