"""What a User or TaskSet class runs: its tasks as declared, and as selected by tags.

Tasks come from ``@task`` / ``@task(weight)`` members (``async def`` methods,
or TaskSet classes declared inside the class) and from a ``tasks`` attribute:
a list (equal weights) or a dict ``{task: weight}`` of ``async def`` functions
and TaskSet classes. :func:`collect` reads a class into a :class:`TaskTable`
once, at load, checking everything a user could get wrong; :func:`select`
applies ``--tags`` / ``--exclude-tags`` and expands weights into a
:class:`Pool` the engine picks from in O(1).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union

from .errors import ScenarioError
from .tags import selected, tags_of
from .tasksets import SequentialTaskSet, TaskSet

__all__ = ["task", "TaskFn", "Task", "TaskTable", "Pool", "collect", "select"]

TaskFn = Callable[[Any], Coroutine[Any, Any, Any]]
F = TypeVar("F", bound=Callable[..., Any])
_WEIGHT = "__loadgen_weight__"


def task(weight: int | F = 1) -> Any:
    """Mark an ``async`` method (or a TaskSet class) as a task, optionally weighted: ``@task(3)``."""
    if callable(weight):
        setattr(weight, _WEIGHT, 1)
        return weight

    def mark(fn: F) -> F:
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise ScenarioError(f"@task weight must be a positive integer, not {weight!r}")
        setattr(fn, _WEIGHT, weight)
        return fn

    return mark


@dataclass(frozen=True, eq=False)
class Task:
    """One declared task: a function or a nested set's table, its weight and its tags (a set's included)."""

    run: Union[TaskFn, TaskTable]
    weight: int
    tags: frozenset[str]


@dataclass(frozen=True, eq=False)
class TaskTable:
    """A User or TaskSet class's tasks as declared, before tag selection."""

    owner: type
    tasks: tuple[Task, ...]
    sequential: bool = False


@dataclass(frozen=True, eq=False)
class Pool:
    """The tasks selected to run, each repeated by its weight; nested sets are pools too."""

    owner: type
    entries: tuple[Union[TaskFn, Pool], ...]
    sequential: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """Each distinct task's name (a nested set's class name), in order."""
        seen: dict[str, None] = {}
        for e in self.entries:
            seen[e.owner.__name__ if isinstance(e, Pool) else getattr(e, "__name__", "task")] = None
        return tuple(seen)

    @property
    def nested(self) -> bool:
        return any(isinstance(e, Pool) for e in self.entries)


def _where(obj: object, shown: str) -> str:
    """``file:line`` of a function or class, the scenario file shown as the user gave it."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        file, line = code.co_filename, code.co_firstlineno
    elif inspect.isclass(obj):
        # inspect cannot find a class of a module loaded by path (it is not in sys.modules): read the file.
        file, line = shown, 0
        pattern = re.compile(rf"\s*class\s+{re.escape(obj.__name__)}\b")
        try:
            for n, text in enumerate(Path(shown).read_text().splitlines(), 1):
                if pattern.match(text):
                    line = n
                    break
        except (OSError, UnicodeDecodeError):
            pass
        if not line:
            return shown
    else:
        return shown
    same = Path(file).resolve() == Path(shown).resolve()
    return f"{shown if same else file}:{line}"


def _declared(cls: type, ordered: bool) -> list[tuple[str, object]]:
    """The class's ``@task`` members and its ``tasks`` attribute, as (name, value).

    ``ordered``: in the order written (base classes first), as a sequence runs
    them; else by name, which is what a seeded pick has always used.
    """
    found: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, TaskSet, SequentialTaskSet):
            continue
        for key, value in vars(klass).items():
            if key == "tasks" or (inspect.isfunction(value) and hasattr(value, _WEIGHT)) or (
                inspect.isclass(value) and _WEIGHT in vars(value)
            ):
                found[key] = value  # an override keeps the place of what it overrides
    items = list(found.items())
    if ordered:
        return items
    members = sorted((k, v) for k, v in items if k != "tasks")
    return members + [(k, v) for k, v in items if k == "tasks"]


def _listed(owner: type, value: object, shown: str) -> list[tuple[object, int]]:
    """A ``tasks`` attribute as (task, weight) pairs."""
    if value is None:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = [(t, 1) for t in value]
    else:
        raise ScenarioError(f"{_where(owner, shown)}: {owner.__name__}.tasks must be a list or a dict "
                            f"{{task: weight}}, not {type(value).__name__}")
    for t, w in pairs:
        if not isinstance(w, int) or isinstance(w, bool) or w < 1:
            raise ScenarioError(f"{_where(owner, shown)}: {owner.__name__}.tasks gives "
                                f"{getattr(t, '__name__', t)!r} the weight {w!r}; a weight is a positive integer")
    return pairs


def collect(cls: type, shown: str, _inside: tuple[type, ...] = ()) -> TaskTable:
    """Read a User or TaskSet class's tasks, checking each; nested sets are read in turn."""
    if cls in _inside:
        raise ScenarioError(f"{_where(cls, shown)}: TaskSet {cls.__name__} contains itself")
    is_set = issubclass(cls, TaskSet)
    sequential = issubclass(cls, SequentialTaskSet)
    if is_set:
        for hook in ("on_start", "on_stop"):
            fn = getattr(cls, hook)
            if not inspect.iscoroutinefunction(fn):
                raise ScenarioError(f"{_where(fn, shown)}: {cls.__name__}.{hook} must be 'async def'")
    pairs: list[tuple[object, int]] = []
    for key, value in _declared(cls, sequential):
        if key == "tasks":
            pairs += _listed(cls, value, shown)
        else:
            pairs.append((value, getattr(value, _WEIGHT)))
    tasks = []
    for run, weight in pairs:
        if inspect.isclass(run) and issubclass(run, TaskSet):
            table = collect(run, shown, _inside + (cls,))
            tasks.append(Task(table, weight, tags_of(run)))
        elif inspect.iscoroutinefunction(run):
            tasks.append(Task(run, weight, tags_of(run)))  # type: ignore[arg-type]
        elif callable(run) and not inspect.isclass(run):
            name = getattr(run, "__name__", repr(run))
            raise ScenarioError(f"{_where(run, shown)}: task {cls.__name__}.{name} must be 'async def'")
        else:
            raise ScenarioError(f"{_where(cls, shown)}: {cls.__name__}.tasks holds {run!r}, which is neither an "
                                "'async def' function nor a TaskSet class")
    if is_set and not tasks:
        raise ScenarioError(f"{_where(cls, shown)}: TaskSet {cls.__name__} has no tasks; add '@task async def' "
                            "methods or a tasks list")
    return TaskTable(cls, tuple(tasks), sequential)


def select(table: TaskTable, include: frozenset[str] | None, exclude: frozenset[str],
           outer: frozenset[str] = frozenset()) -> Pool | None:
    """The tasks that run under the tag selection, expanded by weight; None when none does.

    A set's tags apply to its tasks; a set with no task left is dropped.
    """
    entries: list[Union[TaskFn, Pool]] = []
    for t in table.tasks:
        tags = t.tags | outer
        if isinstance(t.run, TaskTable):
            pool = select(t.run, include, exclude, tags)
            if pool is not None:
                entries += [pool] * t.weight
        elif selected(tags, include, exclude):
            entries += [t.run] * t.weight
    return Pool(table.owner, tuple(entries), table.sequential) if entries else None
