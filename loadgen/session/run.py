"""One ``loadgen run`` as a session of steps, from the configuration to the exit code.

open sinks → measure → conclude (the mode: a shard merges here) → summarise and
judge → report to the console → write the summary file → persist → gate on the
baseline → record the outcome. The mode (:mod:`.modes`) supplies the engine, the
conclusion and the persistence; the steps never ask which mode it is. The store is
opened once for every step after the measurement (:class:`StoreSession`). Non-fatal
problems go to the run's one :class:`~loadgen.diagnostics.Diagnostics`, which the
steps read; log records are held back while the live display is up.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console

from ..diagnostics import LogCapture
from ..engine.engine import RunResult
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_RUN, LoadgenError, RunError, UsageError
from ..sinks import IntervalSink
from ..store.session import StoreSession
from ..summary import RunSummary, summarize, summarize_samples
from .console import say, show_summary
from .modes import Concluded, Persisted, mode_for
from .options import GateOptions, ObserveOptions, PublishOptions, RunSpec, StoreOptions
from .sinks import Observation, Sinks, observe, open_sinks, open_writer
from .summary_file import SummaryFile
from .verdict import Verdict, judge

if TYPE_CHECKING:
    from ..judgement.comparison import Comparison
    from ..observe.display import LiveDisplay
    from ..observe.exporter import MetricsExporter
    from ..store import Store

__all__ = ["RunSession", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    summary: RunSummary
    run_id: str
    stored: bool = False  # the run (merged, for shards) is in the database


class RunSession:
    """One run, its steps in order (see the module docstring)."""

    def __init__(self, spec: RunSpec, *, store: StoreOptions, gate: GateOptions, observe: ObserveOptions,
                 console: Console, run_id: str, exporter: MetricsExporter | None, sinks: list[IntervalSink],
                 logs: LogCapture, publish: PublishOptions = PublishOptions()) -> None:
        self.spec, self.store, self.gate, self.observe, self.publishing = spec, store, gate, observe, publish
        self.console, self.run_id, self.exporter, self.extra_sinks = console, run_id, exporter, sinks
        self.logs, self.diagnostics = logs, logs.diagnostics
        self.mode = mode_for(store, observe, run_id, console, self.diagnostics)
        self.file = SummaryFile(spec.summary_json)
        self.db: StoreSession | None = None
        self.latest: RunSummary | None = None  # the summary as far as the steps got

    def run(self) -> Outcome:
        try:
            steps = self._steps()
        except LoadgenError as exc:
            # The run could not be carried out, or a check after it failed (no baseline: exit 2):
            # those waiting for its findings hear of that too.
            self._publish(error=exc)
            raise
        if isinstance(steps, Outcome):  # a shard's own share: the shard that merges the run tells
            return steps
        summary, persisted = steps
        report = self._report(persisted)
        self._publish(summary, report=report)
        self._linger()
        assert summary.exit_code is not None
        return Outcome(exit_code=summary.exit_code, summary=summary, run_id=self.run_id, stored=persisted.stored)

    def _steps(self) -> tuple[RunSummary, Persisted] | Outcome:
        """Every step up to the gate (a shard whose run another merges: its share's outcome);
        :attr:`latest` follows the summary as each step adds to it."""
        # The run writer migrated the schema as the run began, and every step after the
        # measurement needs the run in the database: the post-run store skips migrations.
        db = StoreSession(self.store.db, migrate=False) if self.store.db is not None else None
        with db if db is not None else contextlib.nullcontext():
            self.db = db
            writer = open_writer(self.spec, self.store, self.run_id, self.mode, self.console, self.diagnostics)
            sinks = open_sinks(self.spec, self.gate, self.extra_sinks, self.exporter, writer, self.console,
                               self.diagnostics)
            result, seen = self._measure(sinks)
            concluded = self.mode.conclude(result, writer, db)
            if not concluded.whole:
                return self._share_only(concluded)
            summary, verdict = self._summarise(concluded, seen, sinks)
            self.latest = summary
            show_summary(summary, self.console, verdict.criteria)
            self.file.write(summary)  # first: the copy that survives when the store cannot take the run
            persisted = self._persist(summary, concluded.result, sinks)
            try:
                summary = self.latest = self._gate(summary, verdict.unserved, persisted)
            except UsageError as exc:
                # No baseline for --baseline-version: exit 2 after the run, which the summary
                # file and the stored run say too, with why.
                self.latest = dataclasses.replace(summary.warned(str(exc)), exit_code=exc.exit_code)
                self.file.write(self.latest)
                self._record_outcome(self.latest, persisted)
                raise
            self._record_outcome(summary, persisted)
        return summary, persisted

    def _measure(self, sinks: Sinks) -> tuple[RunResult, Observation]:
        engine = self.mode.engine(self.spec, sinks.all, sinks.writer)
        seen = observe(self.observe, sinks.writer, self.exporter, self.diagnostics)
        try:
            with self._shown(sinks.display):
                result = engine.run()
        finally:
            if seen.runner is not None:
                seen.runner.stop()
        if self.exporter is not None:
            self.exporter.finish()
        return result, seen

    @contextlib.contextmanager
    def _shown(self, display: LiveDisplay | None) -> Iterator[None]:
        """The live display up; log records printed across it would break it, so they wait."""
        if display is None:
            yield
            return
        with self.logs.held(), display:
            yield

    def _summary(self, result: RunResult) -> RunSummary:
        return summarize(result, scenario=self.spec.scenario_path, host=self.spec.target)

    def _share_only(self, concluded: Concluded) -> Outcome:
        """Another shard merges the run: this shard's own share is the summary it can give."""
        own = dataclasses.replace(self._summary(concluded.result), run_id=self.run_id, shard=concluded.shard,
                                  shards=concluded.shards, exit_code=EXIT_OK)
        show_summary(own, self.console)
        self.file.write(own)
        self.file.check()
        return Outcome(exit_code=EXIT_OK, summary=own, run_id=self.run_id)

    def _summarise(self, concluded: Concluded, seen: Observation, sinks: Sinks) -> tuple[RunSummary, Verdict]:
        summary = dataclasses.replace(self._summary(concluded.result), run_id=self.run_id, shards=concluded.shards)
        if seen.runner is not None:
            summary = dataclasses.replace(summary, **summarize_samples(seen.samples))
        for warning in self.diagnostics.texts("collector"):
            summary = summary.warned(warning)
        verdict = judge(summary, concluded.result, self.gate, sinks.abort)
        return verdict.summary, verdict

    def _persist(self, summary: RunSummary, result: RunResult, sinks: Sinks) -> Persisted:
        """Store the run; when nothing can keep it, the summary file is its last copy."""
        persisted = self.mode.persist(summary, result, sinks.writer, self.db)
        if persisted.lost is None:
            return persisted
        summary = dataclasses.replace(summary.warned(f"{persisted.lost}: this summary is the run's only record"),
                                      exit_code=EXIT_RUN)
        self.file.write(summary)
        kept = (f"its summary is in {self.file.path}, the only copy" if self.file.kept
                else "nothing of it is kept (give --summary-json to keep its summary)")
        raise RunError(f"{persisted.lost}; {kept}")

    def _gate(self, summary: RunSummary, unserved: str | None, persisted: Persisted) -> RunSummary:
        """Exit 3 for a target that served nothing, else the comparison with the baseline;
        the summary file rewritten with the exit code either way."""
        try:
            if unserved:
                raise RunError(unserved)
            summary = self._compare(summary, persisted)
        except RunError:
            summary = dataclasses.replace(summary, exit_code=EXIT_RUN)
            raise
        finally:
            self.file.write(summary)
            self.file.check()
        return summary

    def _compare(self, summary: RunSummary, persisted: Persisted) -> RunSummary:
        gate = self.gate
        if not gate.baseline_version:
            return summary
        if not persisted.stored or self.db is None:
            raise RunError(
                "the comparison with the baseline could not be carried out: the run is not in the database"
                + (" (it is spooled; import it, then run loadgen compare)" if persisted.spooled else " (--db none)")
            )
        from ..judgement.render import render_comparison as render
        from ..store.history import compare_and_store

        async def compare(store: Store) -> Comparison:
            return await compare_and_store(store, await store.get_run(self.run_id), gate.baseline_version,
                                           gate.regression_thresholds, gate.baseline_runs)

        comparison = self.db.run(compare)
        render(comparison, self.console)
        failed = comparison.verdict == "regression" and gate.fail_on_regression
        return dataclasses.replace(summary, exit_code=EXIT_FAILED if failed else summary.exit_code,
                                   comparison=comparison.to_json())

    def _record_outcome(self, summary: RunSummary, persisted: Persisted) -> None:
        """The stored run's exit code and summary, when the steps after storing changed them."""
        if not persisted.stored or self.db is None:
            return
        if summary.exit_code == EXIT_OK and summary.comparison is None:
            return
        self.db.run(lambda st: st.set_outcome(self.run_id, summary.exit_code, summary.to_json()))

    def _report(self, persisted: Persisted) -> str | None:
        """``--report``: the HTML report, from the store; its failure is a warning, the verdict stands."""
        path = self.publishing.report
        if not path:
            return None
        from rich.markup import escape

        if not persisted.stored or self.store.db is None:  # (stored implies a database; mypy cannot know)
            say(self.console, f"no report: run {self.run_id} is not in the database (yet); "
                              f"once it is, run: loadgen report {self.run_id} -o {escape(path)}")
            return None
        from ..reports import write_report

        try:
            written = write_report(path, self.store.db, self.run_id, thresholds=self.gate.regression_thresholds)
        except LoadgenError as exc:
            say(self.console, f"[yellow]warning:[/yellow] the report could not be written: {escape(str(exc))}")
            return None
        say(self.console, f"report written to {escape(str(written))}")
        return str(written)

    def _publish(self, summary: RunSummary | None = None, *, report: str | None = None,
                 error: LoadgenError | None = None) -> None:
        """The CI files and the notifications (:mod:`.publish`); with ``error``, the summary
        as far as the steps got (or the run's identity when none was reached) and its exit code."""
        from .publish import publish

        summary = summary if summary is not None else self.latest
        doc = summary.to_json() if summary is not None else {
            "run_id": self.run_id, "scenario": self.spec.scenario_path, "host": self.spec.target,
            "app_version": self.spec.config.app_version, "test_type": self.spec.config.test_type}
        if error is not None:
            doc = {**doc, "exit_code": error.exit_code}
        publish(doc, self.publishing, self.console, report=report, error=None if error is None else str(error))

    def _linger(self) -> None:
        grace = self.observe.metrics_grace_s
        if self.exporter is None or grace <= 0:
            return
        if not self.spec.quiet:
            say(self.console, f"serving {self.exporter.url} until Prometheus scrapes the end (at most {grace:g}s)")
        self.exporter.linger(grace)
