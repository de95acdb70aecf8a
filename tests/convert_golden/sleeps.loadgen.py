import asyncio
import time
from time import sleep as nap

from loadgen import User, task


class SleepyUser(User):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # loadgen convert: time.sleep(0.1) blocks loadgen's event loop in SleepyUser.__init__ (SleepyUser.__init__ is called by Python and cannot be async): await asyncio.sleep() in on_start or a task instead
        time.sleep(0.1)  # slow set-up

    @task
    async def paced(self):
        await self.client.get("/a")
        await asyncio.sleep(1)
        await asyncio.sleep(0.5)
        await asyncio.sleep(0.25)
