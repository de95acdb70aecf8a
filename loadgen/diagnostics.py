"""One channel for a run's non-fatal problems, which the console, the summary and the store read.

Each part of a run used to keep its own: the engine a ``warnings`` list and an
``exceptions`` count, the collector runner its source errors (and log records
that nobody configured, so they printed across the live display), the run
writer ``db_error`` and ``spool_error``. Now each reports to the run's
:class:`Diagnostics`, every entry typed by its source, and each reader takes
the sources it shows:

- the summary's ``warnings``: the measurement's (engine, sinks, workers), then the collectors';
- the summary's ``exceptions``: the scenario's, counted by kind and place;
- the console: the store's problems as the run starts, log records once the live display is gone.

Log records (loadgen's and libraries') come in through :func:`capture_logging`,
which the session installs for the run; child processes send theirs over their
channel as :class:`Logged` messages (:func:`forward_logging`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TextIO

__all__ = ["Diagnostic", "Diagnostics", "LogCapture", "Logged", "MEASUREMENT", "Source", "WarningList",
           "capture_logging", "forward_logging", "relog"]

#: Who reported a problem: ``scenario`` an exception a scenario raised; ``sink`` a sink's
#: warning or its failure; ``workers`` a worker's death or a worker's warning; ``log`` a log record.
Source = Literal["engine", "sink", "workers", "scenario", "collector", "store", "log"]

#: The sources of the measurement's own warnings: what a run result and its parts carry.
MEASUREMENT: tuple[Source, ...] = ("engine", "sink", "workers")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One non-fatal problem, in the words the summary or the console shows."""

    source: Source
    text: str
    count: int = 1  #: how often it happened (a scenario exception's count); 1 for the rest


class Diagnostics:
    """A run's non-fatal problems, in the order they were first reported; thread-safe
    (the engine's loop, the coordinator, the writer's and the collectors' threads report).

    Three ways in: :meth:`warn` adds one entry; :meth:`set` and :meth:`replace` keep the
    current state of a named problem (the database, a collector's source); :meth:`count`
    adds occurrences of a recurring one (a scenario exception)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[Source, str | int], Diagnostic] = {}
        # Counts apart from the entries: a failing scenario may raise on every iteration,
        # and an int added is cheaper there than a new entry each time.
        self._counts: dict[tuple[Source, str], int] = {}
        self._serial = 0
        self.latest: Diagnostic | None = None  #: the latest new problem, for the live display

    # -- reporting ---------------------------------------------------------------
    def warn(self, text: str, source: Source = "engine") -> None:
        """One more problem, said once."""
        entry = Diagnostic(source, text)
        with self._lock:
            self._serial += 1
            self._entries[(source, self._serial)] = entry
            self.latest = entry

    def set(self, source: Source, key: str, text: str) -> None:
        """The problem ``key`` of ``source`` is now ``text`` (it keeps its place)."""
        entry = Diagnostic(source, text)
        with self._lock:
            if self._entries.get((source, key)) != entry:
                self._entries[(source, key)] = entry
                self.latest = entry

    def replace(self, source: Source, entries: dict[str, Diagnostic]) -> None:
        """Every problem of ``source`` is now ``entries`` (by key), in their order: for a
        reporter that keeps its own table (the collectors' errors, refreshed from their process)."""
        with self._lock:
            old = {k: v for k, v in self._entries.items() if k[0] == source}
            for k in old:
                del self._entries[k]
            for key, entry in entries.items():
                self._entries[(source, key)] = entry
                if old.get((source, key)) != entry:
                    self.latest = entry

    def count(self, source: Source, text: str, n: int = 1) -> None:
        """``n`` more of the recurring problem ``text``."""
        key = (source, text)
        with self._lock:
            seen = self._counts.get(key, 0)
            self._counts[key] = seen + n
        if not seen:
            self.latest = Diagnostic(source, text, n)

    # -- reading -----------------------------------------------------------------
    def entries(self, *sources: Source) -> list[Diagnostic]:
        """The problems of ``sources`` (every source when none is named), in order; counted ones last."""
        with self._lock:
            said = [e for e in self._entries.values() if not sources or e.source in sources]
            counted = [Diagnostic(s, text, n) for (s, text), n in self._counts.items() if not sources or s in sources]
        return said + counted

    def texts(self, *sources: Source) -> list[str]:
        """What the problems of ``sources`` say, in order."""
        return [e.text for e in self.entries(*sources)]

    def counts(self, source: Source) -> dict[str, int]:
        """The counted problems of ``source`` (the scenario's exceptions), each with its count."""
        with self._lock:
            return {text: n for (s, text), n in self._counts.items() if s == source}

    def about(self, source: Source, key: str) -> Diagnostic | None:
        """The named problem (see :meth:`set`), or None while there is none."""
        with self._lock:
            return self._entries.get((source, key))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries) + len(self._counts)


class WarningList:
    """``run.warnings`` as a sink sees it: reading gives the measurement's warnings so far;
    ``append`` is the sink's own warning. A view: the run's :class:`Diagnostics` holds them."""

    __slots__ = ("_diagnostics",)

    def __init__(self, diagnostics: Diagnostics) -> None:
        self._diagnostics = diagnostics

    def append(self, text: str) -> None:
        self._diagnostics.warn(text, "sink")

    def _texts(self) -> list[str]:
        return self._diagnostics.texts(*MEASUREMENT)

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts())

    def __len__(self) -> int:
        return len(self._texts())

    def __getitem__(self, index: int) -> str:
        return self._texts()[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, tuple, WarningList)) and self._texts() == list(other)

    __hash__ = None  # type: ignore[assignment]  # equal to a list, so unhashable like one

    def __repr__(self) -> str:
        return repr(self._texts())


# -- log records ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Logged:
    """A log record a child process forwards to loadgen (formatted there)."""

    logger: str
    level: int
    text: str


#: Distinct log texts one run keeps: a library that logs on every request must not fill memory.
_MAX_LOG_TEXTS = 200
_MORE_LOGS = f"more log records than the first {_MAX_LOG_TEXTS} distinct ones (not kept)"


class LogCapture(logging.Handler):
    """Log records into the run's diagnostics (source ``log``, counted by text), echoed to
    stderr as an unconfigured logging would, except while :meth:`held`: then each text is
    echoed once when it ends, with how often it came."""

    def __init__(self, diagnostics: Diagnostics, stream: TextIO | None = None) -> None:
        super().__init__(logging.WARNING)  # what logging's last resort prints
        self.diagnostics = diagnostics
        self._stream = stream
        self._texts: set[str] = set()
        self._held: dict[str, int] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a bad record must not break the run
            self.handleError(record)
            return
        if text not in self._texts and len(self._texts) >= _MAX_LOG_TEXTS:
            text = _MORE_LOGS
        self._texts.add(text)
        self.diagnostics.count("log", text)
        if self._handled_elsewhere(record):
            return  # a handler the program set up prints it: printing it again would double it
        if self._held is not None:
            self._held[text] = self._held.get(text, 0) + 1
        else:
            self._echo([text])

    def _handled_elsewhere(self, record: logging.LogRecord) -> bool:
        """Whether a handler the program set up prints the record on the terminal already
        (``logging.basicConfig``, say), found on logging's own walk up the loggers."""
        terminal = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            for h in logger.handlers:
                if (h is not self and record.levelno >= h.level and isinstance(h, logging.StreamHandler)
                        and h.stream in terminal):
                    return True
            logger = logger.parent if logger.propagate else None
        return False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """While the live display runs: records are kept, not printed across it."""
        self.acquire()
        self._held = {}
        self.release()
        try:
            yield
        finally:
            self.acquire()
            try:
                held, self._held = self._held or {}, None
                self._echo([text if n == 1 else f"{text} ({n} times)" for text, n in held.items()])
            finally:
                self.release()

    def _echo(self, texts: list[str]) -> None:
        stream = self._stream or sys.stderr  # looked up late, as the last resort does
        for text in texts:
            stream.write(text + "\n")
        if texts:
            stream.flush()


@contextlib.contextmanager
def capture_logging(diagnostics: Diagnostics, stream: TextIO | None = None) -> Iterator[LogCapture]:
    """For one run: every log record (and Python warning) of this process goes to ``diagnostics``.

    The handler sits on the root logger, so libraries' records come too; with it there,
    logging's last resort no longer prints them. Handlers a program configured itself keep theirs.
    """
    handler = LogCapture(diagnostics, stream)
    root = logging.getLogger()
    root.addHandler(handler)
    before = warnings.showwarning
    logging.captureWarnings(True)
    ours = warnings.showwarning is not before  # not when the program captures them already
    try:
        yield handler
    finally:
        if ours:
            logging.captureWarnings(False)
        root.removeHandler(handler)


class _Forward(logging.Handler):
    def __init__(self, send: Callable[[Logged], object]) -> None:
        super().__init__(logging.WARNING)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(Logged(record.name, record.levelno, self.format(record)))
        except Exception:  # noqa: BLE001 - the parent is gone: there is no one left to tell
            pass


def forward_logging(send: Callable[[Logged], object]) -> None:
    """In a child process (a worker, the collectors): its log records go to loadgen as
    :class:`Logged` messages, where :func:`relog` hands them to the run's logging."""
    logging.getLogger().addHandler(_Forward(send))
    logging.captureWarnings(True)


def relog(message: Logged) -> None:
    """A child's record, logged again in this process (so the run's capture has it)."""
    logging.getLogger(message.logger).log(message.level, "%s", message.text)
