"""Scenario files: plain Python modules with :class:`User` classes and ``@task`` methods.

A scenario file is loaded by path. Everything wrong with it (a syntax error,
a failing import, no tasks, a task that is not ``async``) becomes one
:class:`~loadgen.errors.ScenarioError` naming ``file:line``, because a load
test that dies with a traceback at minute one teaches nobody anything.

Loading collects each User class's tasks (:mod:`loadgen.tasks`, task sets
included), the file's :class:`~loadgen.shape.LoadShape` if it has one, and the
hook listeners it added (:mod:`loadgen.events`: they are the scenario's, taken
off the global hooks until a run installs them). :meth:`Scenario.prepare`
applies a run's tag selection.
"""

from __future__ import annotations

import importlib.util
import inspect
import random
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Union

from . import events
from .errors import ScenarioError, UsageError
from .events import Environment, Listeners
from .http.session import HTTP2_MODES
from .shape import LoadShape
from .tasks import Pool, Task, TaskFn, TaskTable, collect, select, task
from .tags import tags_of
from .waits import BORN, between, constant

if TYPE_CHECKING:
    from .convert import Conversion
    from .config import RunConfig
    from .http.client import Client

__all__ = [
    "User",
    "task",
    "between",
    "constant",
    "Scenario",
    "UserTasks",
    "load_scenario",
]


class User:
    """A simulated user. Subclass it in a scenario file.

    Class attributes: ``host`` (default target, overridden by ``--host``),
    ``wait_time`` (think time between tasks in the closed model, e.g.
    ``between(1, 3)``), ``weight`` (how often this class is picked when a
    file defines several), ``fixed_count`` (closed model: exactly this many
    users of the class, started before the weighted classes share the rest),
    ``tasks`` (a list or ``{task: weight}`` dict of ``async def f(user)``
    functions and TaskSet classes, besides ``@task`` methods), ``abstract``
    (True: a base class for others, never run itself), ``http2`` (this
    class's HTTP/2: ``"h2"``, ``"h2c"``, ``"off"`` or True/False; None takes
    ``--http2``). Per-user state lives on ``self``; ``on_start`` runs once
    before the user's first task (log in, keep the token), ``on_stop`` once at
    the end. ``self.client`` is the user's HTTP client; ``self.environment``
    the run's (see :class:`loadgen.events.Environment`).
    """

    host: str | None = None
    wait_time: Callable[..., float] | None = None
    weight: int = 1
    fixed_count: int = 0
    tasks: ClassVar[Any] = None
    abstract: ClassVar[bool] = False
    http2: str | bool | None = None
    environment: Environment | None = None

    def __init__(self, client: Client, index: int) -> None:
        self.client = client
        self.index = index  #: 0-based number of this user in the run
        self.random = random.Random(index)  #: per-user random numbers, reseeded from --seed
        setattr(self, BORN, perf_counter())  # constant_pacing's first iteration counts from here

    async def on_start(self) -> None:
        """Runs once before the first task."""

    async def on_stop(self) -> None:
        """Runs once when the user stops."""


@dataclass(frozen=True)
class UserTasks:
    """A User class with the tasks it runs, expanded by weight for O(1) picks.

    A class with task sets among its tasks is run through a per-user
    :class:`~loadgen.tasksets.SetRunner`: ``pick`` returns it, and ``wait``
    asks it for the think time of the set the user is in.
    """

    user_class: type[User]
    tasks: tuple[Union[TaskFn, Pool], ...]  # each task repeated `weight` times
    names: tuple[str, ...]
    table: TaskTable | None = None  # as declared, before tags: what select() starts from
    #: The think time after an iteration, called with the user (None: no think time).
    wait: Callable[..., float] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if any(isinstance(t, Pool) for t in self.tasks):
            from .tasksets import RUNNER, SetRunner

            root = Pool(self.user_class, self.tasks)
            user_wait = self.user_class.wait_time

            def enter(user: Any) -> SetRunner:
                runner: SetRunner | None = user.__dict__.get(RUNNER)
                if runner is None:
                    runner = user.__dict__[RUNNER] = SetRunner(user, root)
                return runner

            def wait(user: Any) -> float:
                return enter(user).wait(user, user_wait)

            object.__setattr__(self, "pick", enter)
            object.__setattr__(self, "wait", wait)
        else:
            object.__setattr__(self, "wait", self.user_class.wait_time)

    def pick(self, user: Any) -> TaskFn:
        t = self.tasks
        return t[0] if len(t) == 1 else t[int(user.random.random() * len(t))]  # type: ignore[return-value]

    def declared(self) -> TaskTable:
        """The tasks as declared (one entry per task of a table built by hand)."""
        if self.table is not None:
            return self.table
        return TaskTable(self.user_class, tuple(Task(t, 1, tags_of(t)) for t in self.tasks if callable(t)))


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario file: its user classes (``task_sets``), their weights, its ``options``,
    its load shape class and the hook listeners it added while loading."""

    path: str
    task_sets: tuple[UserTasks, ...]
    weights: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    shape: type[LoadShape] | None = None
    listeners: Listeners = Listeners()
    #: A locustfile run as it is: what its conversion could not translate (``file:line: what and why``).
    conversion_warnings: tuple[str, ...] = ()

    @property
    def host(self) -> str | None:
        h = self.options.get("host")
        if h:
            return str(h)
        for ts in self.task_sets:
            if ts.user_class.host:
                return ts.user_class.host
        return None

    def select(self, tags: tuple[str, ...], exclude_tags: tuple[str, ...]) -> tuple[Scenario, tuple[str, ...]]:
        """The scenario with only the tasks ``--tags``/``--exclude-tags`` let run, and warnings
        naming the classes left with none (they are dropped); :class:`UsageError` when nothing is left."""
        if not tags and not exclude_tags:
            return self, ()
        include = frozenset(tags) or None
        exclude = frozenset(exclude_tags)
        kept: list[UserTasks] = []
        weights: list[int] = []
        warnings: list[str] = []
        for ut, weight in zip(self.task_sets, self.weights):
            table = ut.declared()
            pool = select(table, include, exclude)
            if pool is None:
                warnings.append(f"{ut.user_class.__name__} has no task left by the tag selection; it does not run")
                continue
            kept.append(UserTasks(ut.user_class, pool.entries, pool.names, table))
            weights.append(weight)
        if not kept:
            chosen = (f" --tags {','.join(tags)}" if tags else "") + (
                f" --exclude-tags {','.join(exclude_tags)}" if exclude_tags else "")
            raise UsageError(f"{self.path}: no task is left to run with{chosen}")
        return Scenario(self.path, tuple(kept), tuple(weights), self.options, self.shape, self.listeners,
                        self.conversion_warnings), tuple(warnings)

    def prepare(self, config: RunConfig) -> tuple[Scenario, tuple[str, ...]]:
        """The scenario as ``config`` runs it (:meth:`select` by its tags), checked against it: a
        LoadShape drives the closed model's users, so the open model or ``--stages`` with one is a
        :class:`UsageError`. The engine calls it; the CLI calls it first, so the error comes before
        anything starts."""
        scenario, warnings = self.select(config.tags, config.exclude_tags)
        if self.shape is not None:
            name = self.shape.__name__
            if config.model == "open":
                raise UsageError(f"{self.path}: {name} shapes the closed model's users; drop --rate/--model open "
                                 "or the shape")
            if config.stages:
                raise UsageError(f"{self.path}: {name} and --stages both shape the run; drop one")
        return scenario, warnings


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
    """Import a scenario file by path and collect its users, tasks, load shape and hook listeners."""
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
    saved = events.snapshot()  # what the file adds to the hooks is its own, taken back below
    try:
        try:
            converted = _converted(path, shown)
            if converted is None:
                spec.loader.exec_module(module)
            else:
                exec(compile(converted.code, str(path), "exec"), module.__dict__)  # noqa: S102 - the user's file
        except SyntaxError as exc:
            raise ScenarioError(f"{shown}:{exc.lineno}: syntax error: {exc.msg}") from None
        except ScenarioError as exc:
            raise ScenarioError(f"{_where(path, exc).replace(str(path), str(shown))}: {exc}") from None
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # SystemExit or KeyboardInterrupt at import (an exit() left in, a stray raise) would end
            # the process with a traceback or a silent exit 0: it is a broken scenario like any other.
            raise _broken(path, shown, exc, "loading the scenario") from None
        finally:
            if added:
                try:
                    sys.path.remove(parent)
                except ValueError:
                    pass
        options = _options(module, shown)
        task_sets, weights = _users(module, shown)
        shape = _shape(module, shown)
        scenario = Scenario(str(shown), task_sets, weights, dict(options), shape)
        _init(scenario, [fn for fn in events.init.listeners if fn not in dict(saved)[events.init]], path, shown)
    finally:
        listeners = events.taken_since(saved)
    return Scenario(scenario.path, task_sets, weights, scenario.options, shape, listeners,
                    converted.warnings if converted is not None else ())


def _converted(path: Path, shown: Path) -> Conversion | None:
    """A locustfile (it imports locust) converted in memory, as ``loadgen convert`` would; else None."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the import reports what is wrong with the file
    from .convert import is_locustfile

    if not is_locustfile(source):
        return None
    from .convert import convert_source

    try:
        return convert_source(source, str(shown))
    except UsageError as exc:
        raise ScenarioError(str(exc)) from None


def _broken(path: Path, shown: Path, exc: BaseException, doing: str) -> ScenarioError:
    where = _where(path, exc).replace(str(path), str(shown))
    detail = f": {exc}" if str(exc) else ""
    return ScenarioError(f"{where}: {type(exc).__name__}{detail} raised while {doing}")


def _users(module: object, shown: Path) -> tuple[tuple[UserTasks, ...], tuple[int, ...]]:
    """The file's own User classes with tasks, and their weights."""
    task_sets = []
    weights = []
    for obj in vars(module).values():
        if not (inspect.isclass(obj) and issubclass(obj, User) and obj is not User):
            continue
        if obj.__module__ != getattr(module, "__name__", None) or vars(obj).get("abstract", False):
            continue  # imported from elsewhere, or a base class for others (Locust's abstract = True)
        table = collect(obj, str(shown))
        pool = select(table, None, frozenset())
        if pool is None:
            continue  # a base class, or a class that is not a user
        for hook in ("on_start", "on_stop"):
            fn = getattr(obj, hook)
            if not inspect.iscoroutinefunction(fn):
                line = fn.__code__.co_firstlineno
                raise ScenarioError(f"{shown}:{line}: {obj.__name__}.{hook} must be 'async def'")
        if not isinstance(obj.weight, int) or isinstance(obj.weight, bool) or obj.weight < 1:
            raise ScenarioError(f"{shown}: {obj.__name__}.weight must be a positive integer")
        fixed = obj.fixed_count
        if not isinstance(fixed, int) or isinstance(fixed, bool) or fixed < 0:
            raise ScenarioError(f"{shown}: {obj.__name__}.fixed_count must be a whole number, 0 or more")
        if obj.http2 is not None and obj.http2 not in (True, False, *HTTP2_MODES):
            # Checked here: a client built in the middle of a run could only fail that run.
            raise ScenarioError(f"{shown}: {obj.__name__}.http2 must be one of {', '.join(HTTP2_MODES)}, True, "
                                f"False or None, not {obj.http2!r}")
        task_sets.append(UserTasks(obj, pool.entries, pool.names, table))
        weights.append(obj.weight)
    if not task_sets:
        raise ScenarioError(
            f"{shown}: no tasks found; define a class deriving from loadgen.User "
            "with at least one '@task async def' method"
        )
    return tuple(task_sets), tuple(weights)


def _shape(module: object, shown: Path) -> type[LoadShape] | None:
    """The file's LoadShape subclass, if it defines one (two are one too many)."""
    found = [obj for obj in vars(module).values()
             if inspect.isclass(obj) and issubclass(obj, LoadShape) and obj is not LoadShape
             and obj.__module__ == getattr(module, "__name__", None)]
    if len(found) > 1:
        raise ScenarioError(f"{shown}: defines {len(found)} load shapes ({', '.join(c.__name__ for c in found)}); "
                            "a scenario has at most one")
    if found and found[0].tick is LoadShape.tick:
        raise ScenarioError(f"{shown}: {found[0].__name__} must define tick(), returning (users, spawn_rate) or None")
    return found[0] if found else None


def _init(scenario: Scenario, listeners: list[Callable[..., Any]], path: Path, shown: Path) -> None:
    """Fire ``events.init`` for the listeners the file added; one that raises makes the file broken."""
    if not listeners:
        return
    env = Environment(scenario.host, MappingProxyType(dict(scenario.options)))
    for fn in listeners:
        try:
            events.run_sync(fn, environment=env)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            raise _broken(path, shown, exc, "running its events.init listener") from None
