"""CI outputs of a run's findings: the markdown summary (``--markdown``, appended to GitHub's
step summary when ``GITHUB_STEP_SUMMARY`` is set) and JUnit XML (``--junit``).

Both read only a :class:`~loadgen.findings.Findings`; writing raises :class:`OSError` when
the file cannot be written, which the session turns into a warning.
"""

from __future__ import annotations

from .junit import render_junit, write_junit
from .markdown import MAX_CHARS, render_markdown, write_markdown

__all__ = ["MAX_CHARS", "render_junit", "render_markdown", "write_junit", "write_markdown"]
