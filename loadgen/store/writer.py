"""Writing a run to the store as it goes, off the engine's thread.

The engine calls :class:`RunWriter` once per interval with the snapshot; the
call only hands the snapshot to the writer's thread (one wake-up of its
loop). That thread, with its own event loop and database connection, turns
snapshots into rows, appends them to the run's spool journal, and writes them
to the database. So the hot path never waits on the database, and a run
killed mid-way keeps every interval flushed up to then (in the database and
in the journal).

If the database cannot be reached at the start, fails mid-run, or at the
end, the run goes on; at the end the writer tries the database once more
(replaying the journal), and otherwise leaves the journal for
``loadgen import``. Such problems go to the run's diagnostics (source ``store``),
which the session reads; :attr:`RunWriter.db_error` and :attr:`RunWriter.spool_error`
read them back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..diagnostics import Diagnostics
from ..engine.recorder import IntervalSnapshot
from ..samples import QueueSample, ResourceSample
from . import open_store
from .base import Store, StoreError
from .records import Row, interval_rows, queue_rows, resource_rows
from .spool import SPOOL_FORMAT, Spool, replay
from .url import DatabaseURL

__all__ = ["RunWriter", "WriteOutcome"]

T = TypeVar("T")


@dataclass
class WriteOutcome:
    """Where a run ended up: in the database, in a spool file, or both."""

    stored: bool  # the whole run is in the database
    spool_path: Path | None  # kept when the run is not (all) in the database
    error: str | None  # why the database failed, if it did


class RunWriter:
    """An engine sink that stores a run (see the module docstring)."""

    def __init__(
        self,
        url: DatabaseURL,
        run: Row,
        *,
        spool_dir: Path,
        shard: int = 0,
        connect_timeout_s: float = 10.0,
        replace_run: bool = True,
        diagnostics: Diagnostics | None = None,
    ) -> None:
        self.url = url
        self.run = run
        self.run_id: str = run["id"]
        self.shard = shard
        self.spool_dir = spool_dir
        self.connect_timeout_s = connect_timeout_s
        self.replace_run = replace_run  # False for shards: the first shard's run record stands
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self._store: Store | None = None
        self._spool: Spool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        # Set by the writer's thread when the run is written: a plain thread-safe future,
        # since the writer's loop is gone by the time finish() reads it.
        self._finished: concurrent.futures.Future[WriteOutcome] = concurrent.futures.Future()

    @property
    def db_error(self) -> str | None:
        """Why the database does not take the run (its latest failure), or None."""
        return self._problem("database")

    @property
    def spool_error(self) -> str | None:
        """Why the spool journal could not be written, or None."""
        return self._problem("spool")

    def _problem(self, key: str) -> str | None:
        found = self.diagnostics.about("store", key)
        return found.text if found is not None else None

    # -- lifetime ------------------------------------------------------------
    def start(self) -> None:
        """Open the journal and the database and record the run's start; returns when
        both were tried (the database's error, if any, is in :attr:`db_error`)."""
        self._thread = threading.Thread(target=self._thread_main, name="loadgen-store", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # a bug here must not hang finish()
            if not self._finished.done():
                self._finished.set_exception(exc)
            raise
        finally:
            self._ready.set()  # never leave start() waiting, even on a bug
            loop.close()

    async def _main(self) -> None:
        self._queue = asyncio.Queue()
        try:
            self._spool = Spool(self.spool_path)
            self._spool.append("begin_run", format=SPOOL_FORMAT, db=self.url.shown, run=self.run,
                               sharded=not self.replace_run)
        except OSError as exc:
            self.diagnostics.set("store", "spool", f"cannot write the spool file in {self.spool_dir}: {exc.strerror}")
            self._spool = None
        try:
            self._store = await open_store(self.url, timeout_s=self.connect_timeout_s)
            await self._store.begin_run(self.run, replace=self.replace_run)
        except Exception as exc:  # noqa: BLE001 - any failure means: spool instead
            await self._drop_store(exc)
        self._ready.set()
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            done = await self._write(batch)
            if done is not None:
                self._finished.set_result(done)
                return

    async def _drop_store(self, exc: BaseException) -> None:
        why = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
        self.diagnostics.set("store", "database", why)
        if self._store is not None:
            try:
                await self._store.close()
            except Exception:  # noqa: BLE001
                pass
            self._store = None

    async def _write(self, batch: list[tuple[str, Any]]) -> WriteOutcome | None:
        rows: list[Row] = []
        stats: list[Row] = []
        resources: list[Row] = []
        queues: list[Row] = []
        finish: tuple[Any, ...] | None = None
        for kind, item in batch:
            if kind == "snap":
                r, s = interval_rows(item, started_at=self.run["started_at"], shard=self.shard)
                rows.extend(r)
                stats.append(s)
            elif kind == "resources":
                resources.extend(resource_rows(item, self.shard))
            elif kind == "queues":
                queues.extend(queue_rows(item, self.shard))
            elif kind in ("finish", "finish_shard"):
                finish = (kind, *item)
        if self._spool is not None:
            if rows or stats:
                self._spool.append("intervals", rows=rows, stats=stats)
            if resources or queues:
                self._spool.append("samples", resources=resources, queues=queues)
        if self._store is not None:
            try:
                await self._store.write_intervals(self.run_id, rows, stats)
                await self._store.write_samples(self.run_id, resources, queues)
            except Exception as exc:  # noqa: BLE001
                await self._drop_store(exc)
        if finish is None:
            return None
        return await self._finish(*finish)

    async def _finish(self, kind: str, update: Any, endpoints: Any = None,
                      comparison: tuple[Row, list[Row]] | None = None) -> WriteOutcome:
        if self._spool is not None:
            if kind == "finish_shard":
                self._spool.append("finish_shard", shard=self.shard, part=update)
            else:
                self._spool.append("finish_run", update=update, endpoints=endpoints)
            if comparison is not None:
                self._spool.append("comparison", head=comparison[0], rows=comparison[1])
            self._spool.close()
        if self._store is not None:
            try:
                if kind == "finish_shard":
                    await self._store.finish_shard(self.run_id, self.shard, update)
                else:
                    await self._store.finish_run(self.run_id, update, endpoints)
                if comparison is not None:
                    await self._store.save_comparison(*comparison)
            except Exception as exc:  # noqa: BLE001
                await self._drop_store(exc)
        elif self._spool is not None:
            # The database failed earlier: one more try, replaying everything journaled.
            try:
                store = await open_store(self.url, timeout_s=self.connect_timeout_s)
                try:
                    await replay(self._spool.path, store)
                finally:
                    await store.close()
            except Exception as exc:  # noqa: BLE001
                if self.db_error is None:
                    self.diagnostics.set("store", "database", str(exc))
                return WriteOutcome(stored=False, spool_path=self._spool.path, error=self.db_error)
            self._spool.discard()
            return WriteOutcome(stored=True, spool_path=None, error=None)
        if self._store is not None:
            await self._store.close()
            self._store = None
            if self._spool is not None:
                self._spool.discard()
            return WriteOutcome(stored=True, spool_path=None, error=None)
        return WriteOutcome(
            stored=False, spool_path=self._spool.path if self._spool else None, error=self.db_error
        )

    # -- called from the engine's (or the CLI's) thread -----------------------
    def _put(self, kind: str, item: Any) -> None:
        assert self._loop is not None and self._queue is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, item))

    def __call__(self, snap: IntervalSnapshot, engine: Any = None) -> None:
        """The engine sink: hand the interval over (the histograms are not touched after)."""
        self._put("snap", snap)

    def add_samples(self, samples: list[ResourceSample | QueueSample]) -> None:
        """Collectors' samples (callable from any thread)."""
        res = [s for s in samples if isinstance(s, ResourceSample)]
        que = [s for s in samples if isinstance(s, QueueSample)]
        if res:
            self._put("resources", res)
        if que:
            self._put("queues", que)

    def finish_shard(self, part: dict[str, Any], *, timeout_s: float = 120.0) -> WriteOutcome:
        """A shard's end: its part goes to ``run_shards`` (the merge happens after)."""
        return self._finish_with("finish_shard", (part,), timeout_s)

    @property
    def spool_path(self) -> Path:
        """This run's journal (one per shard, as shards may share a host)."""
        name = self.run_id if self.replace_run else f"{self.run_id}-shard{self.shard}"
        return self.spool_dir / f"{name}.jsonl"

    @property
    def connected(self) -> bool:
        return self._store is not None

    def call(self, fn: Callable[[Store], Awaitable[T]], *, timeout_s: float = 60.0) -> T:
        """Run ``fn(store)`` on the writer's loop (for the comparison's baseline queries)."""
        assert self._loop is not None
        store = self._store
        if store is None:
            raise StoreError(f"the database {self.url.shown} is not available: {self.db_error}")
        fut = asyncio.run_coroutine_threadsafe(fn(store), self._loop)
        return fut.result(timeout_s)

    def finish(
        self,
        update: Row,
        endpoints: list[Row],
        comparison: tuple[Row, list[Row]] | None = None,
        *,
        timeout_s: float = 120.0,
    ) -> WriteOutcome:
        """Write the end of the run, wait for everything queued to be written, stop the thread."""
        return self._finish_with("finish", (update, endpoints, comparison), timeout_s)

    def _finish_with(self, kind: str, item: tuple[Any, ...], timeout_s: float) -> WriteOutcome:
        assert self._thread is not None
        self._put(kind, item)
        try:
            outcome = self._finished.result(timeout_s)
        except TimeoutError:
            return WriteOutcome(
                stored=False,
                spool_path=self._spool.path if self._spool else None,
                error=f"the database {self.url.shown} did not finish writing within {timeout_s:g}s",
            )
        self._thread.join(timeout=10)
        return outcome

