"""A scenario making the common mistake: a unique path per request and no name=."""

import itertools

from loadgen import User, task

_ids = itertools.count()


class UniqueUser(User):
    @task
    async def read(self) -> None:
        await self.client.get(f"/api/campaigns/{next(_ids)}")
