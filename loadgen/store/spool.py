"""The spool: an append-only journal of a run's rows, replayable into any store.

Every run writes its rows here before the database (one JSON document per
line). When the run is safely in the database the file is deleted; when the
database was unreachable at the start, went away mid-run or at the end, the
file stays and ``loadgen import FILE`` loads it. Replays are upserts, so
importing a run that partly reached the database completes it without
duplicates. A process killed mid-write leaves at most a torn last line, which
the reader skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import UsageError
from .base import Store
from .records import Row

__all__ = ["Spool", "default_spool_dir", "replay", "ReplayResult", "SPOOL_FORMAT"]

SPOOL_FORMAT = 1


def default_spool_dir() -> Path:
    """``$LOADGEN_SPOOL_DIR``, else ``$XDG_STATE_HOME/loadgen/spool`` (``~/.local/state/…``)."""
    env = os.environ.get("LOADGEN_SPOOL_DIR")
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "loadgen" / "spool"


class Spool:
    """The journal of one run (one writer thread appends; nothing else touches it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(path, "ab")

    def append(self, op: str, **fields: Any) -> None:
        assert self._fh is not None
        self._fh.write(orjson.dumps({"op": op, **fields}, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        # Flushed to the OS per batch: a SIGKILL then loses nothing written (fsync would
        # only add safety against power loss, at a disk flush a second).
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def discard(self) -> None:
        """The run is in the database: the journal is no longer needed."""
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read the spool file {path}: {exc.strerror}") from None
    with fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                if not line.endswith(b"\n"):
                    return  # a torn last line: the process died mid-write
                raise UsageError(f"{path}:{lineno} is not a loadgen spool record") from None
            if not isinstance(rec, dict) or "op" not in rec:
                raise UsageError(f"{path}:{lineno} is not a loadgen spool record")
            yield rec


@dataclass
class ReplayResult:
    run_id: str
    intervals: int
    finished: bool
    sharded: bool = False  # a shard's journal: the run merges once every shard is in


async def replay(path: Path, store: Store) -> ReplayResult:
    """Load a spool file into a store; a run without its end is marked ``incomplete``."""
    run_id: str | None = None
    intervals = 0
    finished = False
    sharded = False
    run: Row | None = None
    for rec in _records(path):
        op = rec["op"]
        if op == "begin_run":
            if rec.get("format") != SPOOL_FORMAT:
                raise UsageError(f"{path} is spool format {rec.get('format')!r}; this loadgen reads {SPOOL_FORMAT}")
            run = rec["run"]
            run_id = run["id"]
            await store.begin_run(run, replace=not rec.get("sharded"))
            continue
        if run_id is None:
            raise UsageError(f"{path} does not start with a run record; it is not a loadgen spool file")
        if op == "intervals":
            await store.write_intervals(run_id, rec["rows"], rec["stats"])
            intervals += len(rec["stats"])
        elif op == "samples":
            await store.write_samples(run_id, rec["resources"], rec["queues"])
        elif op == "finish_run":
            await store.finish_run(run_id, rec["update"], rec["endpoints"])
            finished = True
        elif op == "finish_shard":
            await store.finish_shard(run_id, rec["shard"], rec["part"])
            finished = sharded = True
        elif op == "comparison":
            await store.save_comparison(rec["head"], rec["rows"])
        else:
            raise UsageError(f"{path}: unknown spool record {op!r}")
    if run_id is None:
        raise UsageError(f"{path} holds no run; it is empty or not a loadgen spool file")
    if not finished and run is not None:
        await store.finish_run(run_id, {"status": "incomplete"}, [])
    return ReplayResult(run_id=run_id, intervals=intervals, finished=finished, sharded=sharded)
