"""Opening a CI file for writing at the run's end without waiting on it.

A path may name a regular file, or a pipe or device someone reads (``/dev/stdout``, a
FIFO a CI step tails). Opening a FIFO for writing waits until a reader comes, which may
be never: it is opened without waiting, and one with no reader is an :class:`OSError`
like any other file that cannot be written.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["open_output", "is_regular"]

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX; elsewhere opening a pipe does not wait anyway


def open_output(path: str | Path, *, append: bool = False) -> BinaryIO:
    """``path`` opened to write bytes: replaced, or ``append``-ed to; an :class:`OSError` when it
    cannot be, at once (a pipe nobody reads included)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | _NONBLOCK
    try:
        fd = os.open(Path(path).expanduser(), flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # what opening a FIFO without waiting says when it has no reader
            raise OSError(errno.ENXIO, "it is a pipe nobody reads") from None
        raise
    if _NONBLOCK:
        os.set_blocking(fd, True)  # opened without waiting; written to as any file is
    return os.fdopen(fd, "wb")


def is_regular(path: str | Path) -> bool:
    """``path`` is a regular file (not a pipe, a device, a folder, or nothing)."""
    try:
        return stat.S_ISREG(os.stat(Path(path).expanduser()).st_mode)
    except (OSError, ValueError):
        return False
