"""How a run's load is produced and where its parts meet: one process, worker
processes on this host, or one shard of a run split across hosts.

The session's steps ask the mode (which engine, how the run concludes, how it
is stored); none of them branches on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.markup import escape

from ..diagnostics import Diagnostics
from ..engine.engine import Engine, RunResult
from ..errors import RunError
from ..sinks import IntervalSink
from ..store.records import endpoint_rows, run_end_row
from ..store.session import StoreSession
from ..store.writer import RunWriter
from ..summary import RunSummary
from .console import say
from .options import ObserveOptions, RunSpec, StoreOptions

__all__ = ["Mode", "Measurer", "Concluded", "Persisted", "SingleProcess", "Workers", "Shard", "mode_for"]


class Measurer(Protocol):
    """What runs the load: the engine, or the coordinator of worker processes."""

    def run(self) -> RunResult: ...


@dataclass(frozen=True)
class Concluded:
    """The run as this process concludes it. ``whole`` False: only this process's share,
    the run is concluded elsewhere (by the last shard), so there is nothing to judge here."""

    result: RunResult
    whole: bool = True
    shard: int | None = None
    shards: int | None = None


@dataclass(frozen=True)
class Persisted:
    """Where the run ended up. ``lost``: why neither the database nor a spool file has it."""

    stored: bool
    spooled: bool = False
    lost: str | None = None


class Mode(Protocol):
    replace_run: bool

    def check_writer(self, writer: RunWriter) -> None: ...

    def engine(self, spec: RunSpec, sinks: list[IntervalSink], writer: RunWriter | None) -> Measurer: ...

    def conclude(self, result: RunResult, writer: RunWriter | None, db: StoreSession | None) -> Concluded: ...

    def persist(self, summary: RunSummary, result: RunResult, writer: RunWriter | None,
                db: StoreSession | None) -> Persisted: ...


class SingleProcess:
    """This process runs the whole load; its writer stores the run as it goes."""

    replace_run = True

    def __init__(self, store: StoreOptions, observe: ObserveOptions, run_id: str, console: Console,
                 diagnostics: Diagnostics) -> None:
        self.store, self.observe, self.run_id, self.console = store, observe, run_id, console
        self.diagnostics = diagnostics  # where the engine (or the coordinator) reports

    def check_writer(self, writer: RunWriter) -> None:
        """Without the database the run goes on, spooled."""

    def engine(self, spec: RunSpec, sinks: list[IntervalSink], writer: RunWriter | None) -> Measurer:
        return Engine(spec.config, scenario=spec.scenario, adhoc=spec.adhoc, sinks=sinks,
                      diagnostics=self.diagnostics)

    def conclude(self, result: RunResult, writer: RunWriter | None, db: StoreSession | None) -> Concluded:
        return Concluded(result)

    def persist(self, summary: RunSummary, result: RunResult, writer: RunWriter | None,
                db: StoreSession | None) -> Persisted:
        """The run's end through the writer: to the database, else left in the spool."""
        if writer is None:
            return Persisted(stored=False)
        end = run_end_row(summary, result.duration_s, dt.datetime.now(dt.timezone.utc).timestamp())
        wo = writer.finish(end, endpoint_rows(result.recorder.totals, result.schedule_s))
        if wo.stored:
            say(self.console, f"stored as run {self.run_id} in {escape(writer.url.shown)}")
            return Persisted(stored=True)
        if wo.spool_path is None:
            why = wo.error or "unknown error"
            return Persisted(stored=False, lost=f"the run could not be stored ({why}) and no spool file could be written")
        spool = escape(str(wo.spool_path))
        say(self.console,
            f"[yellow]the database was not reachable ({escape(wo.error or 'unknown error')}); run {self.run_id} "
            f"is spooled to {spool}; load it with: loadgen import {spool} (with the same --db or LOADGEN_DB_URL)"
            "[/yellow]")
        return Persisted(stored=False, spooled=True)


class Workers(SingleProcess):
    """Worker processes on this host share the load; the coordinator merges their intervals."""

    def engine(self, spec: RunSpec, sinks: list[IntervalSink], writer: RunWriter | None) -> Measurer:
        from ..scaleout.coordinator import Coordinator

        return Coordinator(spec.config, workers=self.observe.workers, scenario=spec.scenario,
                           scenario_path=spec.scenario_path, adhoc=spec.adhoc, sinks=sinks,
                           on_worker_failure=self.observe.on_worker_failure,
                           diagnostics=self.diagnostics)


class Shard(SingleProcess):
    """One shard of a run split across hosts: the shards meet in the database (a start
    barrier, then each leaves its part); the last one to finish merges and stores the run."""

    replace_run = False

    def check_writer(self, writer: RunWriter) -> None:
        if writer.db_error:
            raise RunError(f"{writer.db_error}: the shards of a run meet in the database, so this shard cannot run")

    @property
    def _name(self) -> str:
        return f"shard {self.store.shard}/{self.store.shards} of run {self.run_id}"

    def engine(self, spec: RunSpec, sinks: list[IntervalSink], writer: RunWriter | None) -> Measurer:
        from ..scaleout.shards import wait_for_shards

        assert writer is not None  # a shard needs the database (checked by the CLI)
        store, run_id = self.store, self.run_id

        async def barrier() -> None:
            if not spec.quiet:
                say(self.console, f"{self._name}: waiting for the other shards")
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: wait_for_shards(writer.call, run_id, store.shard, store.shards,
                                              host=socket.gethostname(), timeout_s=store.shard_wait_s))

        return Engine(spec.config, scenario=spec.scenario, adhoc=spec.adhoc, sinks=sinks,
                      part=(store.shard, store.shards), start_gate=barrier, diagnostics=self.diagnostics)

    def conclude(self, result: RunResult, writer: RunWriter | None, db: StoreSession | None) -> Concluded:
        """Leave this shard's part; the last shard to do so merges every part into the run."""
        from ..scaleout.shards import claim_merge
        from ..scaleout.wire import part_to_json

        assert writer is not None and db is not None
        wo = writer.finish_shard(part_to_json(result.recorder, result))
        tot = result.recorder.totals
        say(self.console, f"{self._name}: {tot.overall.requests:,} requests, {tot.overall.errors:,} errors in "
                          f"{result.duration_s:.1f}s")
        if not wo.stored:
            raise RunError(
                f"shard {self.store.shard} of run {self.run_id} could not reach the database ({wo.error}); its "
                f"data is spooled to {wo.spool_path}: load it with loadgen import, which merges the run once "
                "every shard is in"
            )
        merged = db.run(lambda st: claim_merge(st, self.run_id, result.config))
        if merged is None:
            say(self.console, "the other shards are still running; the last one to finish merges the run")
            return Concluded(result, whole=False, shard=self.store.shard, shards=self.store.shards)
        return Concluded(merged, shards=self.store.shards)

    def persist(self, summary: RunSummary, result: RunResult, writer: RunWriter | None,
                db: StoreSession | None) -> Persisted:
        """The merged run's results (this shard's own records are written already)."""
        from ..scaleout.shards import store_merged

        assert db is not None
        db.run(lambda st: store_merged(st, self.run_id, result, summary))
        say(self.console, f"run {self.run_id}: all {self.store.shards} shards merged and stored in "
                          f"{escape(db.url.shown)}")
        return Persisted(stored=True)


def mode_for(store: StoreOptions, observe: ObserveOptions, run_id: str, console: Console,
             diagnostics: Diagnostics) -> Mode:
    """The mode the options ask for (the CLI refuses workers and shards together)."""
    kind = Workers if observe.workers > 1 else Shard if store.shards > 1 else SingleProcess
    return kind(store, observe, run_id, console, diagnostics)
