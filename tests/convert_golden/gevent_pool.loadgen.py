import asyncio
from gevent.pool import Pool

from loadgen import User, task


class Parallel(User):
    @task
    async def fan_out(self):
        # loadgen convert: gevent does not run under loadgen (asyncio): Pool needs hand work (asyncio.create_task, asyncio.gather, asyncio.Lock or asyncio.Event)
        pool = Pool(3)
        for path in ("/a", "/b", "/c"):
            pool.spawn(self.fetch, path)
        pool.join()
        await asyncio.sleep(0.1)

    async def fetch(self, path):
        await self.client.get(path)
