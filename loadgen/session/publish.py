"""Telling people what the run found, once it is judged: the HTML report, the markdown
summary (and GitHub's step summary), JUnit XML, and the webhooks.

Each is built from one :class:`~loadgen.findings.Findings`. None of them changes the
run's verdict or exit code: a file that cannot be written or a webhook that cannot be
reached is a warning on the console, and the run's outcome stands.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..findings import Findings, findings_of
from .console import say
from .options import PublishOptions

__all__ = ["publish", "wants_notification"]


def wants_notification(findings: Findings, notify_on: str) -> bool:
    """``--notify-on``: ``always``; ``regression``: the comparison found one; ``fail`` (the
    default): a failed threshold, a regression, or a run that could not be carried out."""
    if notify_on == "always":
        return True
    if notify_on == "regression":
        return bool(findings.regressions)
    return findings.verdict != "pass"


def publish(summary: Mapping[str, object], options: PublishOptions, console: Console, *,
            report: str | None = None, error: str | None = None) -> Findings:
    """Write the CI files and send the notifications of one run; ``report``: where its
    HTML report was written; ``error``: why the run could not be carried out."""
    findings = findings_of(summary, report=report, error=error)
    _write_ci_files(findings, options, console)
    if options.notify and wants_notification(findings, options.notify_on):
        _notify(findings, options, console)
    return findings


def _write_ci_files(findings: Findings, options: PublishOptions, console: Console) -> None:
    if not (options.markdown or options.step_summary or options.junit):
        return
    from ..outputs import write_junit, write_markdown

    markdown = options.markdown
    if markdown and options.step_summary and _same_file(markdown, options.step_summary):
        markdown = None  # --markdown "$GITHUB_STEP_SUMMARY": appended to, as the step summary is, once
    for path, append in ((markdown, False), (options.step_summary, True)):
        if path:
            _written(console, "the markdown summary", path, partial(write_markdown, findings, path, append=append))
    if options.junit:
        _written(console, "the JUnit XML", options.junit, partial(write_junit, findings, options.junit))


def _same_file(a: str, b: str) -> bool:
    first, second = Path(a).expanduser(), Path(b).expanduser()
    try:
        return os.path.samefile(first, second)
    except OSError:  # one does not exist (yet): the same path, then
        return os.path.realpath(first) == os.path.realpath(second)


def _written(console: Console, what: str, path: str, write: Callable[[], None]) -> None:
    try:
        write()
    except OSError as exc:
        say(console, f"[yellow]warning:[/yellow] {what} could not be written to {escape(path)}: "
                     f"{escape(exc.strerror or str(exc))}")


def _notify(findings: Findings, options: PublishOptions, console: Console) -> None:
    from ..notify import send_all

    for delivery in send_all(findings, options.notify):
        if delivery.ok:
            say(console, f"notified {escape(delivery.shown)}")
        else:
            say(console, f"[yellow]warning:[/yellow] the notification to {escape(delivery.shown)} could not be "
                         f"delivered: {escape(delivery.error or 'unknown error')}")
