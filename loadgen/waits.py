"""Think times: how long a user waits after each task in the closed model.

A wait time is called with the user after each iteration and returns seconds;
``between`` and ``constant`` draw or return a number, ``constant_pacing`` and
``constant_throughput`` subtract the time the iteration took, so that each
iteration *starts* a fixed time after the previous one started. The open
model ignores them: its arrivals decide when iterations start.
"""

from __future__ import annotations

import random
from time import perf_counter
from typing import Protocol

from .errors import ScenarioError

__all__ = ["WaitTime", "between", "constant", "constant_pacing", "constant_throughput"]

#: Where pacing keeps, on each user, the planned start of the iteration that is running.
_PACED_FROM = "_loadgen_paced_from"
#: Where a user keeps when it was created: the first paced iteration counts from there (as Locust).
BORN = "_loadgen_born"


class _HasRandom(Protocol):
    random: random.Random


class WaitTime(Protocol):
    """What a ``wait_time`` class attribute is: called with the user, returns seconds."""

    def __call__(self, user: object = None) -> float: ...


class between:
    """Think time drawn uniformly between ``low`` and ``high`` seconds (closed model)."""

    def __init__(self, low: float, high: float) -> None:
        if low < 0 or high < low:
            raise ScenarioError(f"between({low}, {high}) needs 0 <= low <= high")
        self.low, self.high = low, high
        self._rng = random.Random()

    def seed(self, seed: int | None) -> None:
        self._rng.seed(seed)

    def __call__(self, user: object = None) -> float:
        # Each user's own generator (seeded from --seed) keeps think times reproducible per user.
        rng = getattr(user, "random", None) or self._rng
        return rng.uniform(self.low, self.high)

    def __repr__(self) -> str:
        return f"between({self.low}, {self.high})"


class constant:
    """A fixed think time of ``seconds`` (closed model)."""

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ScenarioError(f"constant({seconds}) must not be negative")
        self.seconds = seconds

    def seed(self, seed: int | None) -> None:
        pass

    def __call__(self, user: object = None) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return f"constant({self.seconds})"


class constant_pacing:
    """Each iteration starts ``seconds`` after the previous one started: the wait is what is left.

    An iteration longer than ``seconds`` is followed by no wait at all (the
    pace is then the iteration's length). Per user; the first iteration counts
    from the user's creation, its ``on_start`` included.
    """

    def __init__(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ScenarioError(f"constant_pacing({seconds}) must not be negative")
        self.seconds = seconds

    def seed(self, seed: int | None) -> None:
        pass

    def __call__(self, user: object = None) -> float:
        if user is None:
            return self.seconds
        now = perf_counter()
        state = user.__dict__
        started = state.get(_PACED_FROM)
        if started is None:
            started = state.get(BORN, now)
        wait = started + self.seconds - now
        wait = wait if wait > 0 else 0.0
        state[_PACED_FROM] = now + wait  # when the next iteration is due to start
        return wait

    def __repr__(self) -> str:
        return f"constant_pacing({self.seconds})"


class constant_throughput(constant_pacing):
    """``per_second`` iterations a second per user at most: ``constant_pacing(1 / per_second)``."""

    def __init__(self, per_second: float) -> None:
        if not per_second > 0:
            raise ScenarioError(f"constant_throughput({per_second}) needs a rate above 0")
        super().__init__(1.0 / per_second)
        self.per_second = per_second

    def __repr__(self) -> str:
        return f"constant_throughput({self.per_second})"
