"""``loadgen har RECORDING.har``: a browser recording (HAR 1.x) as a scenario file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..config import parse_duration
from ..errors import UsageError
from .root import app, reports_errors

_GROUPS = ("page", "pause")


@app.command("har")
@reports_errors
def har(
    recording: Path = typer.Argument(..., help="The HAR file (as a browser's devtools or a proxy exports it)."),
    out: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the scenario here (default: stdout)."),
    keep_assets: bool = typer.Option(False, "--keep-assets", help="Replay scripts, styles, images, fonts and media too."),
    keep_third_party: bool = typer.Option(
        False, "--keep-third-party", help="Replay requests to hosts other than the first page's too."
    ),
    group: Optional[str] = typer.Option(
        None, "--group", help="One step per recorded page, or split at pauses: page or pause (default: page when the HAR has pages)."
    ),
    pause: str = typer.Option("2s", "--pause", help="With --group pause, a silence longer than this starts a step."),
) -> None:
    """Convert a HAR recording into a scenario: assets and other hosts left out, tokens and ids read at run time."""
    from ..har import HarOptions, convert_har

    if group is not None and group not in _GROUPS:
        raise UsageError(f"--group must be page or pause, not {group!r}")
    pause_s = parse_duration(pause, what="--pause")
    try:
        text = recording.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {recording}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{recording} is not a HAR file: it is not UTF-8 text") from None
    options = HarOptions(keep_assets, keep_third_party, group, pause_s)  # type: ignore[arg-type]
    result = convert_har(text, str(recording), options, scenario=str(out) if out else "scenario.py")
    for warning in result.warnings:
        print(f"loadgen: warning: {warning}", file=sys.stderr)
    if out is None:
        sys.stdout.write(result.code)
        return
    try:
        out.write_text(result.code, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}", file=sys.stderr)
