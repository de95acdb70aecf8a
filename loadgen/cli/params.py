"""typer's parameters for ``loadgen run``, generated from the option table (typer reads a signature)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Optional, TypeVar

import typer

from .options import Option

F = TypeVar("F", bound=Callable[..., object])


def _parameter(option: Option[object]) -> inspect.Parameter:
    # Without a typer default the value stays None when not given, so the scenario's can apply.
    default = option.default if option.typer_default or option.kind == "flag" else None
    annotation: object = Optional[str] if default is None else str
    if option.kind == "list":
        default, annotation = [], list[str]
    elif option.kind == "flag":
        annotation = bool
    envvar = option.env[0] if len(option.env) == 1 else list(option.env) or None
    info = typer.Option(default, *option.flags, envvar=envvar, help=option.help)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


def takes_options(options: Sequence[Option[object]]) -> Callable[[F], F]:
    """Give a command taking ``**given`` one keyword parameter per option, in the table's order."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        parameters = [*fixed, *map(_parameter, options)]
        fn.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return fn

    return decorate
