"""``loadgen notify RUN``: send a stored run's findings to webhooks, whatever its verdict."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import EXIT_OK, EXIT_RUN, UsageError
from . import options as o
from .parsers import webhooks
from .root import app, console, error, reports_errors
from .stored import DB_OPTION, finished_summary


@app.command("notify")
@reports_errors
def notify_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    notify: Optional[list[str]] = typer.Option(
        None, "--notify", envvar="LOADGEN_NOTIFY", show_envvar=True, metavar="URL",
        help=o.NOTIFY.help),
    db: Optional[str] = DB_OPTION,
) -> None:
    """Send a stored run's findings to webhooks; exit 3 when one could not be delivered."""
    from rich.markup import escape

    from ..findings import findings_of
    from ..notify import send_all

    urls = webhooks(notify or (), "--notify")
    if not urls:
        raise UsageError("give a webhook to notify: --notify URL (or LOADGEN_NOTIFY)")
    run, summary = finished_summary(db, run_ref, "so it has nothing to tell")
    findings = findings_of(summary)
    out = console()
    failed = 0
    for delivery in send_all(findings, urls):
        if delivery.ok:
            out.print(f"notified {escape(delivery.shown)} of run {escape(run['id'])} ({findings.verdict})")
        else:
            failed += 1
            error(f"the notification to {delivery.shown} could not be delivered: {delivery.error or 'unknown error'}")
    raise typer.Exit(EXIT_RUN if failed else EXIT_OK)
