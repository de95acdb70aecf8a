"""Tags on tasks and task sets, and the ``--tags`` / ``--exclude-tags`` selection.

``@tag("checkout", "slow")`` marks a task (an ``async def``) or a
:class:`~loadgen.TaskSet` class; a set's tags apply to every task in it. With
``--tags a,b`` only tasks carrying ``a`` or ``b`` run; ``--exclude-tags c``
drops those carrying ``c``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from .errors import ScenarioError, UsageError

__all__ = ["tag", "tags_of", "parse_tags", "selected"]

T = TypeVar("T")
_ATTR = "__loadgen_tags__"
_NAME = re.compile(r"[A-Za-z0-9_.:/-]+")


def tag(*names: str) -> Callable[[T], T]:
    """Mark a task or a TaskSet class with tags: ``@tag("checkout")``, above or below ``@task``."""
    if not names or callable(names[0]):
        raise ScenarioError("@tag needs at least one tag name: @tag('checkout')")
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ScenarioError(f"tag {name!r} must be letters, digits and _ . : / - only")

    def mark(obj: T) -> T:
        own: frozenset[str] = vars(obj).get(_ATTR, frozenset()) if hasattr(obj, "__dict__") else frozenset()
        setattr(obj, _ATTR, own | frozenset(names))
        return obj

    return mark


def tags_of(obj: object) -> frozenset[str]:
    """The tags given to a task or class (a class's include those of its bases)."""
    found = getattr(obj, _ATTR, None)
    return found if isinstance(found, frozenset) else frozenset()


def parse_tags(value: object, flag: str) -> tuple[str, ...]:
    """Tag names from ``a,b`` (command line, environment) or a list (scenario ``options``)."""
    if value is None or value == "":
        return ()
    items: Iterable[object]
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise UsageError(f"{flag} must be tag names separated by commas, not {type(value).__name__}")
    names = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name == "":
            continue
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(f"{flag}: {name!r} is not a tag name (letters, digits and _ . : / - only)")
        if name not in names:
            names.append(name)
    return tuple(names)


def selected(tags: frozenset[str], include: frozenset[str] | None, exclude: frozenset[str]) -> bool:
    """Whether a task with ``tags`` runs: it carries one of ``include`` (None: any task) and none of ``exclude``."""
    if include is not None and tags.isdisjoint(include):
        return False
    return tags.isdisjoint(exclude)
