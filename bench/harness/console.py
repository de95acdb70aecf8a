"""What the bench says: progress on stderr (stdout is the report), errors cut to one line, no passwords."""

from __future__ import annotations

import re
import sys
import time


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def redact(text: str) -> str:
    """Hide the password of any postgresql:// URL in text (logs, report, latest.json)."""
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)


def first_error_line(text: str) -> str:
    """First non-empty stderr line; for a Python traceback, its last line."""
    # rich/typer frame their errors in boxes: drop the frame characters
    lines = [ln.strip(" \t│┃|╭╮╰╯─━") for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Error", "Usage:", "Try "))] or \
        [ln for ln in lines if ln]
    if not lines:
        return ""
    if lines[0].startswith("Traceback"):
        return lines[-1][:200]
    return lines[0][:200]
