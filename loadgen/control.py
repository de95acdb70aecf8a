"""Exceptions a task raises to steer its user rather than to report a failure.

None of them counts as a failed iteration or a scenario exception: they say
what the user does next, as Locust's do.
"""

from __future__ import annotations

__all__ = ["TaskControl", "StopUser", "RescheduleTask", "InterruptTaskSet"]


class TaskControl(Exception):
    """Base of the exceptions that steer a user; the engine tests for it only when a task raised."""


class StopUser(TaskControl):
    """The user stops for good: its task sets' and its own ``on_stop`` run, and it is not replaced."""


class RescheduleTask(TaskControl):
    """End this iteration now; the user waits its think time and goes on with its next task."""


class InterruptTaskSet(TaskControl):
    """Leave the task set the user is in, back to its parent (what ``TaskSet.interrupt()`` raises).

    ``reschedule=True``: the parent's next task starts at once; False: after the think time.
    """

    def __init__(self, reschedule: bool = True) -> None:
        super().__init__(reschedule)
        self.reschedule = reschedule
