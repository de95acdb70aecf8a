"""The ``loadgen`` command group and what its commands share: errors as one sentence, the console."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from .._version import __version__
from ..errors import LoadgenError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="loadgen",
    help="An async HTTP load generator with honest latencies and a regression gate.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"loadgen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """loadgen: run load tests, see honest latencies, gate CI on regressions."""


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a LoadgenError into one sentence on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LoadgenError as exc:
            error(str(exc))
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def error(text: str) -> None:
    """``loadgen: error: TEXT`` on stderr, as it is (no markup): one sentence a user reads."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"loadgen: error: {text}", markup=False, emoji=False)


def console() -> Console:
    """The console a command prints to: wide enough for tables when output is not a terminal."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)
    return out
