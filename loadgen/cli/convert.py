"""``loadgen convert LOCUSTFILE [-o OUT]``: a Locust locustfile as a loadgen scenario."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
from .root import app, reports_errors


@app.command("convert")
@reports_errors
def convert(
    locustfile: str = typer.Argument(..., help="The locustfile to convert.", show_default=False),
    output: Optional[str] = typer.Option(
        None, "-o", "--output", help="Write the scenario here (default: standard output).", show_default=False
    ),
) -> None:
    """Convert a Locust locustfile into a loadgen scenario; what needs hand work is listed as warnings.

    The converted file keeps the original's comments and layout. Warnings
    ("file:line: what and why") go to standard error and are also marked in
    the file with "# loadgen convert:" comments. Exit 0 when the file was
    converted, 2 when it cannot be read, does not parse or is not a locustfile.
    """
    from ..convert import convert_source

    source = _read(locustfile)
    result = convert_source(source, locustfile)
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    if output is None:
        sys.stdout.write(result.code)
        sys.stdout.flush()
        return
    try:
        Path(output).write_text(result.code, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    count = len(result.warnings)
    print(f"loadgen: wrote {output} ({count} warning{'' if count == 1 else 's'})", file=sys.stderr)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a locustfile") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
