"""Which User class each new user is: ``fixed_count`` classes first, the rest by weight.

In the closed model a class with ``fixed_count = n`` has exactly ``n`` users
(this part's share of them with ``--workers``) whenever the run has that many,
started before the weighted classes share what is left, as Locust does. The
open model starts users as arrivals need them and picks every class by weight.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..scenario import Scenario, UserTasks

__all__ = ["UserMix"]


class UserMix:
    """Picks the class of each new user; told when a user ends, so a fixed class is refilled."""

    def __init__(self, scenario: Scenario, rng: random.Random, share: Callable[[int], int], closed: bool) -> None:
        self._sets = scenario.task_sets
        self._weights = scenario.weights
        self._rng = rng
        self._fixed: dict[int, int] = {}  # id(UserTasks) -> users it must have
        if closed:
            for ts in self._sets:
                n = ts.user_class.fixed_count
                if n > 0:
                    self._fixed[id(ts)] = share(n)
        self._live: dict[int, int] = dict.fromkeys(self._fixed, 0)
        self._weighted = [(ts, w) for ts, w in zip(self._sets, self._weights) if id(ts) not in self._fixed]
        #: The most users the run can have when every class is fixed; None when a weighted class takes the rest.
        self.capacity: int | None = sum(self._fixed.values()) if self._fixed and not self._weighted else None

    def pick(self) -> UserTasks:
        sets = self._sets
        if not self._fixed:
            # The draw a seeded run has always made.
            return sets[0] if len(sets) == 1 else self._rng.choices(sets, self._weights)[0]
        for ts in sets:
            key = id(ts)
            if key in self._fixed and self._live[key] < self._fixed[key]:
                self._live[key] += 1
                return ts
        if not self._weighted:  # past the capacity (the engine caps the count): the first class
            return sets[0]
        if len(self._weighted) == 1:
            return self._weighted[0][0]
        return self._rng.choices([ts for ts, _ in self._weighted], [w for _, w in self._weighted])[0]

    def release(self, ts: UserTasks) -> None:
        """A user of ``ts`` ended."""
        key = id(ts)
        if key in self._live and self._live[key] > 0:
            self._live[key] -= 1
