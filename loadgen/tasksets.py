"""Task sets: groups of tasks a user enters, runs for a while, and leaves.

While a user is in a :class:`TaskSet`, each of its iterations is one task of
that set, picked by weight (in order for a :class:`SequentialTaskSet`); a
task of a set may be another set, entered in turn. ``self.interrupt()``
leaves the set, back to its parent. :class:`SetRunner` is how the engine
walks one user through its sets: it is the "task" the engine calls for a
user whose class has sets, so users without sets run as they always did.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Union

from .control import InterruptTaskSet, RescheduleTask

if TYPE_CHECKING:
    import random

    from .http.client import Client
    from .scenario import User
    from .tasks import Pool

__all__ = ["TaskSet", "SequentialTaskSet", "SetRunner", "RUNNER", "leave_sets"]

#: Where a user with task sets keeps its SetRunner.
RUNNER = "_loadgen_sets"


class TaskSet:
    """A set of tasks a user runs while it is in the set; subclass it in a scenario file.

    Tasks are ``@task`` ``async`` methods (called with the set as ``self``) or a
    ``tasks`` list/dict of ``async def f(taskset)`` functions and nested TaskSet
    classes. ``self.user`` is the User, ``self.client`` its client, ``self.parent``
    the set or user this one was entered from. ``wait_time`` (optional) is the
    think time while in the set, else the user's. ``on_start``/``on_stop`` run
    when the user enters and leaves the set.
    """

    tasks: ClassVar[Any] = None
    wait_time: ClassVar[Any] = None

    def __init__(self, parent: User | TaskSet) -> None:
        self.parent = parent
        self.user: User = parent.user if isinstance(parent, TaskSet) else parent
        self.client: Client = self.user.client

    async def on_start(self) -> None:
        """Runs when the user enters the set, before its first task."""

    async def on_stop(self) -> None:
        """Runs when the user leaves the set (``interrupt()``, StopUser, the end of the run)."""

    def interrupt(self, reschedule: bool = True) -> NoReturn:
        """Leave this set, back to the parent; ``reschedule=False`` waits the think time first."""
        raise InterruptTaskSet(reschedule)


class SequentialTaskSet(TaskSet):
    """A TaskSet whose tasks run in the order declared (a task of weight n, n times), wrapping around."""


Entry = Union[Callable[[Any], Coroutine[Any, Any, Any]], "Pool"]


class _Frame:
    """A set (or the user itself, at the bottom) the user is in, and where it is in a sequence."""

    __slots__ = ("holder", "pool", "pos")

    def __init__(self, holder: Any, pool: Pool) -> None:
        self.holder = holder
        self.pool = pool
        self.pos = 0

    def next(self, rng: random.Random) -> Entry:
        entries = self.pool.entries
        if self.pool.sequential:
            entry = entries[self.pos % len(entries)]
            self.pos += 1
            return entry
        return entries[0] if len(entries) == 1 else entries[int(rng.random() * len(entries))]


class SetRunner:
    """One user's way through its task sets: called by the engine as the user's task, one iteration a call."""

    __slots__ = ("root", "stack", "skip_wait", "_frame", "_task", "_doing")

    def __init__(self, user: User, root: Pool) -> None:
        self.root = _Frame(user, root)
        self.stack: list[_Frame] = []  # the sets entered, innermost last
        self.skip_wait = False  # interrupt(reschedule=True): the next iteration starts at once
        self._frame = self.root
        self._task: Any = None
        self._doing: str | None = None  # on_start / on_stop of a set, when that is what runs

    @property
    def task_name(self) -> str:
        """What the iteration ran, for a failed iteration: ``task`` or ``SetClass.task``."""
        if self._doing is not None:
            return self._doing
        name = getattr(self._task, "__name__", "task")
        return name if self._frame is self.root else f"{self._frame.pool.owner.__name__}.{name}"

    async def __call__(self, user: User) -> None:
        self._doing = None
        frame = self.stack[-1] if self.stack else self.root
        entry = frame.next(user.random)
        while not callable(entry):  # a nested set: enter it, then run its first task
            entered = await self._enter(entry, frame)
            if entered is None:
                return
            frame = entered
            entry = frame.next(user.random)
        self._frame, self._task = frame, entry
        try:
            await entry(frame.holder)
        except InterruptTaskSet as exc:
            self.skip_wait = exc.reschedule
            if self.stack:
                await self._leave()
        except RescheduleTask:
            pass

    async def _enter(self, pool: Pool, parent: _Frame) -> _Frame | None:
        instance = pool.owner(parent.holder)
        frame = _Frame(instance, pool)
        self.stack.append(frame)
        self._doing = f"{pool.owner.__name__}.on_start"
        try:
            await instance.on_start()
        except InterruptTaskSet as exc:
            self.stack.pop()
            self.skip_wait = exc.reschedule
            return None
        except BaseException:
            self.stack.pop()  # never entered: no on_stop
            raise
        self._doing = None
        return frame

    async def _leave(self) -> None:
        frame = self.stack.pop()
        self._doing = f"{frame.pool.owner.__name__}.on_stop"
        await frame.holder.on_stop()
        self._doing = None

    def wait(self, user: User, user_wait: Callable[..., float] | None) -> float:
        """The think time after an iteration: none after ``interrupt()``, else the set's, else the user's."""
        if self.skip_wait:
            self.skip_wait = False
            return 0.0
        if self.stack:
            own = self.stack[-1].holder.wait_time
            if own is not None:
                return float(own() if inspect.ismethod(own) else own(user))
        return float(user_wait(user)) if user_wait is not None else 0.0


async def leave_sets(user: object, report: Callable[[BaseException], None]) -> None:
    """The user stops: every set it is in runs its ``on_stop``, innermost first; exceptions are reported."""
    runner = user.__dict__.get(RUNNER) if hasattr(user, "__dict__") else None
    if runner is None:
        return
    while runner.stack:
        frame = runner.stack.pop()
        try:
            await frame.holder.on_stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            report(exc)
