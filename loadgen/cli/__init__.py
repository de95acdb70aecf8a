"""The ``loadgen`` command line.

:mod:`.options` holds the options of ``loadgen run`` and their one precedence
rule; :mod:`.run` carries a run out from them; :mod:`.stored` and :mod:`.demo`
hold the other commands; :mod:`.entry` is the console script. Every
:class:`~loadgen.errors.LoadgenError` ends as one sentence on stderr and its
exit code; nothing a user can cause ends in a traceback.

``app`` and ``main`` load typer on first use: worker processes import the
option table (through scenario loading) and should not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .entry import app, main

__all__ = ["app", "main"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from . import entry

        return getattr(entry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
