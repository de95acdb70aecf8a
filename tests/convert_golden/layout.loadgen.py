"""Comments and layout survive the conversion."""

from __future__ import annotations

import random  # the module's own imports stay where they are

from loadgen import (  # Locust's names, one a line
    User,
    between,
    task,
)


class Reader(User):  # a reader of the catalogue
    # think time
    wait_time = between(1, 2)

    @task
    async def read(self):
        # a tall call keeps its shape; Locust's name for the row is added
        await self.client.get(
            "/books?lang=en",
            headers={"Accept": "application/json"},  # JSON please
            name="/books?lang=en",
        )
        await self.client.get("/books/%d" % random.randint(1, 9),
                        name="/books/[id]")  # one row for every book
