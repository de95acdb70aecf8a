"""The ``loadgen`` console script: the command group with every command, and ``main``."""

from __future__ import annotations

import sys

import typer

# Imported for their commands, in the order `loadgen --help` lists them.
from . import run as _run  # noqa: F401
from . import stored as _stored  # noqa: F401
from . import notify as _notify  # noqa: F401
from . import demo as _demo  # noqa: F401
from . import convert as _convert  # noqa: F401
from . import har as _har  # noqa: F401
from .root import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``loadgen`` console script (``argv``: the arguments, default sys.argv[1:]).

    Exits with the command's code. A command line click cannot parse (an
    unknown option, a missing value) is one line on stderr and exit 2, like
    every other usage error.
    """
    from typer import _click as click  # typer's own copy of click

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="loadgen", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError:
        sys.exit(2)  # the help is already printed
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        print(f"loadgen: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("loadgen: aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
