"""The one channel between loadgen and a child process it starts: spawn, framed messages, stop or kill.

``--workers`` processes and the collector process both use it. A child is
``python -m MODULE`` (not multiprocessing: its "spawn" re-imports the parent's
``__main__``, which breaks scripts without an ``if __name__ == "__main__"``
guard), in a session of its own, so Ctrl-C reaches only the parent, which
decides how the child ends.

Framing: a 4-byte big-endian length, then a pickle. Both ends are the same
installed loadgen, so pickle carries typed objects (a RunConfig, samples,
source errors) with no codec to keep per type, and a length prefix needs no
escaping; JSON lines would need both. The price is that nothing else may
write into the frames: the child's fd 1 is pointed elsewhere before anything
runs (see :class:`ParentLink`).

A child's error crosses as :class:`ChildFailed` (class name and message) and
is raised again here as the same class of the :class:`~loadgen.errors.LoadgenError`
hierarchy, so a child's UsageError is the parent's UsageError (exit code 2).
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Literal, TypeVar

from ..errors import LoadgenError, RunError

__all__ = ["ChildFailed", "ChildProcess", "ParentLink", "read_frame", "write_frame"]

#: A frame: a magic, the pickle's length, the pickle. The magic tells a frame from bytes a
#: library printed on the child's stdout before the link took fd 1 over (found by review:
#: without it, one stray byte made every later message silently unreadable).
_HEADER = struct.Struct(">4sI")
_MAGIC = b"LGf1"
#: A header claiming more than this is not a frame (a part is a few MiB at most).
_MAX_FRAME = 256 * 2**20
#: After a kill, how long to wait for the process to be reaped (SIGKILL cannot be ignored).
_REAP_S = 5.0
#: After a child's output ended, how long to wait for its exit code.
_END_S = 1.0

_Job = TypeVar("_Job")


def write_frame(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(_MAGIC, len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> object:
    """The next message; EOFError when the stream ends (also mid-frame: the writer died)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    magic, size = _HEADER.unpack(header)
    if magic != _MAGIC or size > _MAX_FRAME:
        raise ValueError(f"not a loadgen frame: {header!r} (did something print on the child's stdout?)")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


@dataclass(frozen=True, slots=True)
class ChildFailed:
    """A child's LoadgenError, by class name: exceptions themselves do not always pickle."""

    kind: str
    message: str

    @classmethod
    def of(cls, exc: LoadgenError) -> ChildFailed:
        return cls(type(exc).__name__, str(exc))

    def error(self) -> LoadgenError:
        """The same error in this process (a RunError for a class this process does not know)."""
        return _error_class(self.kind)(self.message)


def _error_class(name: str) -> type[LoadgenError]:
    todo: list[type[LoadgenError]] = [LoadgenError]
    while todo:
        cls = todo.pop()
        if cls.__name__ == name:
            return cls
        todo.extend(cls.__subclasses__())
    return RunError


class ChildProcess:
    """The parent's end: starts ``python -m module`` and hands each message it sends to ``on_message``.

    A reader thread (named ``name``) calls ``on_message`` for every message and
    ``on_end`` once when the child's output ends, with its exit code (None if it
    still runs a second later) and None, or the exception when a frame could not
    be read: the child is then killed, since nothing it sends after that could
    be understood.
    """

    def __init__(self, module: str, *, name: str, on_message: Callable[[object], None],
                 on_end: Callable[[int | None, Exception | None], None]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the parent only
        )
        self._on_message, self._on_end = on_message, on_end
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def poll(self) -> int | None:
        """The exit code, or None while the child runs."""
        return self._proc.poll()

    def wait(self, timeout_s: float | None = None) -> int | None:
        """The exit code once the child has exited, or None if it still runs after ``timeout_s``."""
        try:
            return self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def send(self, message: object) -> bool:
        """Send one message; False when the child no longer listens (or a signal handler
        interrupted another send: the caller's fallback, a kill, still follows)."""
        try:
            assert self._proc.stdin is not None
            write_frame(self._proc.stdin, message)
        except (OSError, ValueError, RuntimeError):
            return False
        return True

    def close_input(self) -> None:
        """Tell the child no more messages come (a child reads that as "stop")."""
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        except (OSError, ValueError):
            pass

    def kill(self) -> None:
        """End the child at once (SIGKILL); its reader thread then reports the end."""
        if self._proc.poll() is None:
            self._proc.kill()

    def stop(self, timeout_s: float, *, last: object = None) -> bool:
        """Send ``last`` (if given), close the input, wait ``timeout_s`` for the child to exit and kill
        it if it has not; True if it exited by itself."""
        if last is not None:
            self.send(last)
        self.close_input()
        if self.wait(timeout_s) is not None:
            return True
        self.kill()
        self.wait(_REAP_S)
        return False

    def join_reader(self, timeout_s: float) -> bool:
        """Wait for the reader thread to finish delivering; True if it has."""
        self._reader.join(timeout_s)
        return not self._reader.is_alive()

    def _read(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        broken: Exception | None = None
        while True:
            try:
                message = read_frame(stream)
            except (EOFError, OSError):
                break  # the child has ended (or died)
            except Exception as exc:  # an undecodable frame: the stream is out of step from here
                broken = exc
                self.kill()
                break
            self._on_message(message)
        stream.close()
        self._on_end(self.wait(_END_S), broken)


class ParentLink:
    """The child's end: messages from the parent on stdin, to it on the original stdout.

    Opening it points fd 1 elsewhere, so nothing a library or a scenario prints
    can break a frame: at stderr (``stray="stderr"``), or nowhere (``"discard"``).
    ``send`` may be called from any thread.
    """

    def __init__(self, *, stray: Literal["stderr", "discard"] = "stderr") -> None:
        self._out = os.fdopen(os.dup(1), "wb")
        if stray == "stderr":
            os.dup2(2, 1)
        else:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        self._in = sys.stdin.buffer
        self._lock = threading.Lock()

    def send(self, message: object) -> None:
        with self._lock:
            write_frame(self._out, message)

    def job(self, kind: type[_Job]) -> _Job | None:
        """The parent's first message, a ``kind``; None if the parent closed its end without one."""
        try:
            job = self.receive()
        except EOFError:
            return None
        if not isinstance(job, kind):
            raise TypeError(f"the parent sent a {type(job).__name__}, not a {kind.__name__}")
        return job

    def receive(self) -> object:
        """The parent's next message; EOFError once the parent closed its end (or died)."""
        return read_frame(self._in)

    def input_ready(self, timeout_s: float) -> bool:
        """Whether the parent wrote or closed its end within ``timeout_s``."""
        readable, _, _ = select.select([self._in], [], [], max(0.0, timeout_s))
        return bool(readable)
