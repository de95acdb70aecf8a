"""Lifecycle hooks a scenario listens to: ``from loadgen import events``.

``events.init`` fires once when the scenario file is loaded; ``test_start``
and ``test_stop`` once per run, in the process that runs the users (each
worker with ``--workers``), before the first user starts and after the last
one stopped; ``request`` after every request, only while it has listeners.
Listeners are added with ``add_listener`` (also a decorator) and may be plain
or ``async`` functions; they get keyword arguments (see each hook). An
exception in a listener is counted as a scenario exception; it does not stop
the run.

Listeners a scenario file adds while it loads belong to that scenario
(:class:`Listeners`): the engine installs them for its run and takes them
away after, so loading two scenarios in one process does not mix them.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, TypeVar

from .control import TaskControl

__all__ = [
    "EventHook",
    "Environment",
    "Listeners",
    "init",
    "test_start",
    "test_stop",
    "request",
    "HOOKS",
    "snapshot",
    "restore",
    "taken_since",
    "install",
    "notify",
    "run_sync",
    "RequestFailed",
]

L = TypeVar("L", bound=Callable[..., Any])
Report = Callable[[BaseException], None]


class EventHook:
    """A named hook: listeners are called in the order they were added."""

    __slots__ = ("name", "listeners")

    def __init__(self, name: str) -> None:
        self.name = name
        self.listeners: list[Callable[..., Any]] = []

    def add_listener(self, listener: L) -> L:
        """Add a listener; returns it, so this works as a decorator."""
        if not callable(listener):
            raise TypeError(f"events.{self.name}.add_listener needs a function, not {listener!r}")
        self.listeners.append(listener)
        return listener

    def remove_listener(self, listener: Callable[..., Any]) -> None:
        """Remove a listener added before (ValueError if it was not)."""
        self.listeners.remove(listener)

    def fire(self, **kwargs: Any) -> None:
        """Call every listener now (as Locust's ``fire``); an ``async`` listener is scheduled on the
        running loop. Exceptions reach the caller, except that the engine counts those of its own calls."""
        for listener in list(self.listeners):
            result = listener(**kwargs)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)

    def __repr__(self) -> str:
        return f"<EventHook {self.name}: {len(self.listeners)} listener(s)>"


#: Fired once when a scenario file has been loaded: ``environment``.
init = EventHook("init")
#: Fired once per run before the first user starts: ``environment``.
test_start = EventHook("test_start")
#: Fired once per run after the users stopped: ``environment``.
test_stop = EventHook("test_stop")
#: Fired after each request while it has listeners: ``request_type, name, response_time`` (ms),
#: ``response_length`` (bytes), ``response``, ``context``, ``exception`` (None, or why it failed),
#: ``start_time`` (epoch seconds), ``url``.
request = EventHook("request")
HOOKS: tuple[EventHook, ...] = (init, test_start, test_stop, request)


class RequestFailed(Exception):
    """The ``exception`` a request listener gets for a failed request: its error kind or status."""


@dataclass(frozen=True)
class Environment:
    """What hook listeners (and ``User.environment``) see of the run.

    ``host``: the target; ``options``: the run's settings (the RunConfig's fields
    over the scenario's ``options``; read-only); ``runner``: always None (there is
    no Locust runner); ``events``: this module, as Locust's ``environment.events``.
    """

    host: str | None
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    runner: None = None

    @property
    def events(self) -> ModuleType:
        return sys.modules[__name__]


@dataclass(frozen=True)
class Listeners:
    """Listeners per hook name, as a scenario file added them while it loaded."""

    by_hook: tuple[tuple[str, tuple[Callable[..., Any], ...]], ...] = ()

    def of(self, hook: EventHook) -> tuple[Callable[..., Any], ...]:
        for name, fns in self.by_hook:
            if name == hook.name:
                return fns
        return ()

    def __bool__(self) -> bool:
        return any(fns for _, fns in self.by_hook)


Snapshot = tuple[tuple[EventHook, list[Callable[..., Any]]], ...]


def snapshot() -> Snapshot:
    """Every hook's listeners now."""
    return tuple((h, list(h.listeners)) for h in HOOKS)


def restore(saved: Snapshot) -> None:
    """Put every hook's listeners back as they were at ``saved``."""
    for hook, fns in saved:
        hook.listeners[:] = fns


def taken_since(saved: Snapshot) -> Listeners:
    """The listeners added since ``saved``, taken off the hooks (which are restored)."""
    added = []
    for hook, before in saved:
        new = tuple(fn for fn in hook.listeners if fn not in before)
        if new:
            added.append((hook.name, new))
    restore(saved)
    return Listeners(tuple(added))


def install(listeners: Listeners) -> Snapshot:
    """Add a scenario's listeners to the hooks for its run; returns what :func:`restore` undoes."""
    saved = snapshot()
    for hook in HOOKS:
        hook.listeners.extend(listeners.of(hook))
    return saved


async def notify(hook: EventHook, report: Report, **kwargs: Any) -> None:
    """Call the hook's listeners in turn, awaiting ``async`` ones; an exception is reported, not raised
    (control exceptions such as StopUser are raised: they steer the user)."""
    for listener in list(hook.listeners):
        try:
            result = listener(**kwargs)
            if inspect.isawaitable(result):
                await result
        except TaskControl:
            raise
        except Exception as exc:
            report(exc)


def run_sync(listener: Callable[..., Any], **kwargs: Any) -> None:
    """Call a listener outside any run (``init``): an ``async`` one runs to its end on a loop of its own."""
    result = listener(**kwargs)
    if inspect.isawaitable(result):
        async def wait(aw: Awaitable[Any]) -> None:
            await aw

        asyncio.run(wait(result))
