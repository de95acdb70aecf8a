"""Opening what watches the run: ``/metrics``, the store's writer, the live display,
``--abort-on-fail`` and the collectors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.markup import escape


from ..diagnostics import Diagnostics
from ..errors import RunError
from ..samples import QueueSample, ResourceSample
from ..sinks import IntervalSink
from ..store.writer import RunWriter
from .console import say
from .options import GateOptions, ObserveOptions, RunSpec, StoreOptions
from .record import run_row

if TYPE_CHECKING:
    from ..collectors import ProcessCollectorRunner
    from ..observe.display import LiveDisplay
    from ..observe.exporter import MetricsExporter
    from ..judgement.abort_on_fail import AbortOnFail

__all__ = ["Sinks", "Observation", "open_exporter", "open_writer", "open_sinks", "observe"]


class WriterNeeds(Protocol):
    """What the run's mode asks of the writer."""

    #: False for shards: the first shard's run record stands.
    replace_run: bool

    def check_writer(self, writer: RunWriter) -> None:
        """Refuse to run when the mode cannot do without what the writer lacks."""


@dataclass
class Observation:
    """The collectors' child process and the samples it has sent."""

    runner: ProcessCollectorRunner | None = None
    samples: list[ResourceSample | QueueSample] = field(default_factory=list)


@dataclass(frozen=True)
class Sinks:
    """Every sink of the run, in the order the engine calls them, and the ones the
    later steps read."""

    all: list[IntervalSink]
    writer: RunWriter | None
    display: LiveDisplay | None
    abort: AbortOnFail | None


@contextlib.contextmanager
def open_exporter(spec: RunSpec, observe: ObserveOptions, run_id: str,
                  console: Console) -> Iterator[MetricsExporter | None]:
    """``/metrics`` for the whole session; a port in use is a UsageError before anything runs."""
    if observe.metrics_port is None:
        yield None
        return
    from ..observe.exporter import MetricsExporter

    exporter = MetricsExporter(
        run_id=run_id, app_version=spec.config.app_version, test_type=spec.config.test_type,
        info={"scenario": os.path.basename(spec.scenario.path) if spec.scenario else "adhoc",
              "host": spec.target or ""},
    )
    exporter.start(port=observe.metrics_port, addr=observe.metrics_addr)
    from ..observe import control, dashboard

    dashboard.attach(exporter, spec)  # the live page at / (its own sink, fed after /metrics)
    control.attach(exporter, token=observe.control_token, spec=spec)  # stop, rate, users: /api/control
    try:
        if not spec.quiet:
            say(console, f"metrics at {exporter.url}; live dashboard at {exporter.url.removesuffix('metrics')}")
        yield exporter
    finally:
        exporter.stop()


def open_writer(spec: RunSpec, store: StoreOptions, run_id: str, mode: WriterNeeds, console: Console,
                diagnostics: Diagnostics) -> RunWriter | None:
    """The store's writer, started (the run's record is written); None with ``--db none``.
    Without both the database and the spool the run is not started: it would be lost."""
    if store.db is None:
        return None
    writer = RunWriter(store.db, run_row(spec, store, run_id), spool_dir=store.spool_dir, shard=store.shard,
                       replace_run=mode.replace_run, diagnostics=diagnostics)
    writer.start()
    mode.check_writer(writer)
    db, spool = diagnostics.about("store", "database"), diagnostics.about("store", "spool")
    if db is not None and spool is not None:
        raise RunError(f"{db.text}, and {spool.text}: the run would be lost, so it is not started")
    if db is not None:
        say(console, f"[yellow]warning:[/yellow] {escape(db.text)}; the run goes on and is spooled to "
                     f"{escape(str(writer.spool_path))}")
    elif spool is not None:
        say(console, f"[yellow]warning:[/yellow] {escape(spool.text)}; writing to the database only")
    return writer


def open_sinks(spec: RunSpec, gate: GateOptions, extra: list[IntervalSink], exporter: MetricsExporter | None,
               writer: RunWriter | None, console: Console, diagnostics: Diagnostics) -> Sinks:
    """The sinks around the writer: the caller's, ``/metrics``, the display, abort-on-fail."""
    from ..observe.display import LiveDisplay

    display = None if spec.quiet else LiveDisplay(console, spec.config.duration_s, diagnostics=diagnostics)
    abort = None
    if gate.thresholds and gate.abort_on_fail:
        from ..judgement.abort_on_fail import AbortOnFail

        abort = AbortOnFail(gate.thresholds)
    ordered = [*extra, exporter, display, writer, abort]
    return Sinks(all=[s for s in ordered if s is not None], writer=writer, display=display, abort=abort)


def observe(options: ObserveOptions, writer: RunWriter | None, exporter: MetricsExporter | None,
            diagnostics: Diagnostics) -> Observation:
    """The collectors, started (or nothing to observe)."""
    seen = Observation()
    if not (options.services or options.queues):
        return seen
    from ..collectors import ProcessCollectorRunner

    # Sampling happens in a child process: /proc reads and queue polls would otherwise
    # contend for this process's GIL with the engine, and come late exactly when the
    # generator is busiest.
    seen.runner = ProcessCollectorRunner(options.services, options.queues, [seen.samples.extend],
                                         interval_s=options.collect_interval_s, diagnostics=diagnostics)
    if writer is not None:
        seen.runner.add_sink(writer.add_samples)
    if exporter is not None:
        seen.runner.add_sink(exporter.observe_samples)
    seen.runner.start()
    return seen
