"""Comments and layout survive the conversion."""

from __future__ import annotations

import random  # the module's own imports stay where they are

from locust import (  # Locust's names, one a line
    HttpUser,
    between,
    task,
)


class Reader(HttpUser):  # a reader of the catalogue
    # think time
    wait_time = between(1, 2)

    @task
    def read(self):
        # a tall call keeps its shape; Locust's name for the row is added
        self.client.get(
            "/books?lang=en",
            headers={"Accept": "application/json"},  # JSON please
        )
        self.client.get("/books/%d" % random.randint(1, 9),
                        name="/books/[id]")  # one row for every book
