"""Scenario files: plain Python modules with :class:`User` classes and ``@task`` methods.

A scenario file is loaded by path. Everything wrong with it (a syntax error,
a failing import, no tasks, a task that is not ``async``) becomes one
:class:`~loadgen.errors.ScenarioError` naming ``file:line``, because a load
test that dies with a traceback at minute one teaches nobody anything.
"""

from __future__ import annotations

import importlib.util
import inspect
import random
import sys
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ScenarioError

if TYPE_CHECKING:
    from .http.client import Client

__all__ = [
    "User",
    "task",
    "between",
    "constant",
    "Scenario",
    "TaskSet",
    "load_scenario",
]

TaskFn = Callable[[Any], Coroutine[Any, Any, Any]]
F = TypeVar("F", bound=Callable[..., Any])

def task(weight: int | F = 1) -> Any:
    """Mark an ``async`` method of a :class:`User` as a task, optionally weighted: ``@task(3)``."""
    if callable(weight):
        weight.__loadgen_weight__ = 1  # type: ignore[attr-defined]
        return weight

    def mark(fn: F) -> F:
        if not isinstance(weight, int) or weight < 1:
            raise ScenarioError(f"@task weight must be a positive integer, not {weight!r}")
        fn.__loadgen_weight__ = weight  # type: ignore[attr-defined]
        return fn

    return mark


class between:
    """Think time drawn uniformly between ``low`` and ``high`` seconds (closed model)."""

    def __init__(self, low: float, high: float) -> None:
        if low < 0 or high < low:
            raise ScenarioError(f"between({low}, {high}) needs 0 <= low <= high")
        self.low, self.high = low, high
        self._rng = random.Random()

    def seed(self, seed: int | None) -> None:
        self._rng.seed(seed)

    def __call__(self, user: Any = None) -> float:
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

    def __call__(self, user: Any = None) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return f"constant({self.seconds})"


class User:
    """A simulated user. Subclass it in a scenario file.

    Class attributes: ``host`` (default target, overridden by ``--host``),
    ``wait_time`` (think time between tasks in the closed model, e.g.
    ``between(1, 3)``), ``weight`` (how often this class is picked when a
    file defines several), ``http2`` (this class's HTTP/2: ``"h2"``,
    ``"h2c"``, ``"off"`` or True/False; None takes ``--http2``). Per-user state lives on ``self``; ``on_start``
    runs once before the user's first task (log in, keep the token),
    ``on_stop`` once at the end. ``self.client`` is the user's HTTP client.
    """

    host: str | None = None
    wait_time: Callable[..., float] | None = None
    weight: int = 1
    http2: str | bool | None = None

    def __init__(self, client: Client, index: int) -> None:
        self.client = client
        self.index = index  #: 0-based number of this user in the run
        self.random = random.Random(index)  #: per-user random numbers, reseeded from --seed

    async def on_start(self) -> None:
        """Runs once before the first task."""

    async def on_stop(self) -> None:
        """Runs once when the user stops."""


@dataclass(frozen=True)
class TaskSet:
    """A User class with its tasks, expanded by weight for O(1) picks."""

    user_class: type[User]
    tasks: tuple[TaskFn, ...]  # each task repeated `weight` times
    names: tuple[str, ...]

    def pick(self, rng: random.Random) -> TaskFn:
        t = self.tasks
        return t[0] if len(t) == 1 else t[int(rng.random() * len(t))]


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario file."""

    path: str
    task_sets: tuple[TaskSet, ...]
    weights: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        h = self.options.get("host")
        if h:
            return str(h)
        for ts in self.task_sets:
            if ts.user_class.host:
                return ts.user_class.host
        return None


def _where(path: Path, exc: BaseException) -> str:
    """``file:line`` of the innermost traceback frame inside the scenario file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path:
            line = frame.lineno
    return f"{path}:{line}" if line else str(path)


def _options(module: object, shown: Path) -> dict[str, Any]:
    """The file's ``options``: defaults for the keys the option table gives a scenario key."""
    from .cli.options import OPTION_KEYS  # the table lives with the command line; loaded only when needed

    options = getattr(module, "options", {}) or {}
    if not isinstance(options, dict):
        raise ScenarioError(f"{shown}: options must be a dict, not {type(options).__name__}")
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise ScenarioError(
            f"{shown}: options has unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(OPTION_KEYS))}"
        )
    return options


def load_scenario(file: str | Path) -> Scenario:
    """Import a scenario file by path and collect its users and tasks."""
    path = Path(file).resolve()
    shown = Path(file)
    if not path.is_file():
        raise ScenarioError(f"scenario file {shown} does not exist")
    mod_name = f"loadgen_scenario_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{shown}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    # Let a scenario import its sibling modules, as a locustfile can.
    parent = str(path.parent)
    added = parent not in sys.path
    if added:
        sys.path.insert(0, parent)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ScenarioError(f"{shown}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ScenarioError as exc:
        raise ScenarioError(f"{_where(path, exc).replace(str(path), str(shown))}: {exc}") from None
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        # SystemExit or KeyboardInterrupt at import (an exit() left in, a stray raise) would end
        # the process with a traceback or a silent exit 0: it is a broken scenario like any other.
        where = _where(path, exc).replace(str(path), str(shown))
        detail = f": {exc}" if str(exc) else ""
        raise ScenarioError(f"{where}: {type(exc).__name__}{detail} raised while loading the scenario") from None
    finally:
        if added:
            try:
                sys.path.remove(parent)
            except ValueError:
                pass

    options = _options(module, shown)

    task_sets = []
    weights = []
    for obj in vars(module).values():
        if not (inspect.isclass(obj) and issubclass(obj, User) and obj is not User):
            continue
        if obj.__module__ != module.__name__:
            continue  # imported from elsewhere
        tasks: list[TaskFn] = []
        names: list[str] = []
        for attr, fn in inspect.getmembers(obj, predicate=inspect.isfunction):
            w = getattr(fn, "__loadgen_weight__", None)
            if w is None:
                continue
            if not inspect.iscoroutinefunction(fn):
                line = fn.__code__.co_firstlineno
                raise ScenarioError(f"{shown}:{line}: task {obj.__name__}.{attr} must be 'async def'")
            tasks.extend([fn] * w)
            names.append(attr)
        if not tasks:
            continue
        for hook in ("on_start", "on_stop"):
            fn = getattr(obj, hook)
            if not inspect.iscoroutinefunction(fn):
                line = fn.__code__.co_firstlineno
                raise ScenarioError(f"{shown}:{line}: {obj.__name__}.{hook} must be 'async def'")
        if not isinstance(obj.weight, int) or obj.weight < 1:
            raise ScenarioError(f"{shown}: {obj.__name__}.weight must be a positive integer")
        task_sets.append(TaskSet(obj, tuple(tasks), tuple(names)))
        weights.append(obj.weight)
    if not task_sets:
        raise ScenarioError(
            f"{shown}: no tasks found; define a class deriving from loadgen.User "
            "with at least one '@task async def' method"
        )
    return Scenario(str(shown), tuple(task_sets), tuple(weights), dict(options))
