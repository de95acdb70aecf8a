"""Every change the converter makes to a locustfile, keyed by the original tree's nodes.

The analysis (analysis.py, decide.py, imports.py) fills a :class:`Plan`; the
transformer (locust.py) applies it and decides nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .notes import Notes

__all__ = ["CallFix", "WithFix", "Plan"]


@dataclass(eq=False)
class CallFix:
    """How one call of the client changes: positional arguments named, keywords dropped, ``name=``/``expect=`` added."""

    #: Position of an argument after the URL -> the keyword it becomes.
    keywords: dict[int, str] = field(default_factory=dict)
    #: Keywords removed (catch_response=, stream=, context=).
    dropped: set[str] = field(default_factory=set)
    #: ``name=`` to add (the request is named as Locust names it), an expression of the original tree or new.
    name: cst.BaseExpression | None = None
    #: Status codes of 400 and above the call expects (a ``r.success()`` under ``if r.status_code == 404``).
    expect: set[int] = field(default_factory=set)


@dataclass(eq=False)
class WithFix:
    """A ``with`` that goes: ``with client.get(...) as r:`` -> ``r = await client.get(...)``; ``rename_request`` unwrapped."""

    target: cst.BaseAssignTargetExpression | None  # what ``as`` names, if anything
    unwrap: bool = False  # rename_request: the block's statements, without the `with`


@dataclass(eq=False)
class Plan:
    """The changes of one conversion."""

    notes: Notes
    #: Functions that become ``async def``.
    async_defs: set[cst.FunctionDef] = field(default_factory=set)
    #: Calls wrapped in ``await``.
    awaited: set[cst.Call] = field(default_factory=set)
    #: ``time.sleep(x)``/``gevent.sleep(x)`` calls that become ``await asyncio.sleep(x)``.
    sleeps: set[cst.Call] = field(default_factory=set)
    #: Calls of the user's HTTP client and how their arguments change.
    client_calls: dict[cst.Call, CallFix] = field(default_factory=dict)
    withs: dict[cst.With, WithFix] = field(default_factory=dict)
    #: Small statements removed (``r.success()``, ``self.client.request_name = ...``).
    dropped: set[cst.BaseSmallStatement] = field(default_factory=set)
    #: Names renamed (a Locust name to loadgen's).
    renames: dict[cst.Name, str] = field(default_factory=dict)
    #: Expressions replaced whole (``locust.HttpUser`` -> ``User``, ``isinstance(env.runner, MasterRunner)`` -> ``False``).
    replaced: dict[cst.CSTNode, cst.BaseExpression] = field(default_factory=dict)
    #: ``r.failure`` -> ``r.fail``, ``cookies.get_dict`` -> ``cookies.as_dict``.
    attribute_renames: dict[cst.Attribute, str] = field(default_factory=dict)
    #: Decorators removed (listeners of events loadgen does not have).
    dropped_decorators: set[cst.Decorator] = field(default_factory=set)
    #: ``__init__`` methods whose Locust arguments become ``*args, **kwargs``, and their ``super().__init__`` calls.
    init_rewrites: set[cst.FunctionDef] = field(default_factory=set)
    super_inits: set[cst.Call] = field(default_factory=set)
    #: Import statements replaced by others (an empty list removes one).
    imports: dict[cst.BaseSmallStatement, list[cst.BaseSmallStatement]] = field(default_factory=dict)
    #: Imports moved into an ``if __name__ == "__main__":`` block (they are only needed there).
    main_imports: dict[cst.If, list[cst.BaseSmallStatement]] = field(default_factory=dict)
    #: ``import asyncio`` is needed (asyncio.sleep).
    needs_asyncio: bool = False
