"""One ``loadgen run``, from configuration to exit code.

The engine measures; around it this module wires the sinks (live display,
store writer, abort-on-fail thresholds), then, once the engine is done, the
summary, the thresholds' verdict, the store's outcome and the regression
comparison, in that order, into the exit code CI gates on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ._version import __version__
from .config import RunConfig
from .engine import AdHocRequest, Engine, RunResult
from .errors import EXIT_FAILED, EXIT_OK, EXIT_RUN, RunError
from .scenario import Scenario
from .store.url import DatabaseURL, redact

__all__ = ["StoreOptions", "GateOptions", "ObserveOptions", "execute", "new_run_id"]


@dataclass(frozen=True)
class StoreOptions:
    """Where a run is stored; ``db`` None stores nothing (``--db none``)."""

    db: DatabaseURL | None
    spool_dir: Path
    environment: str | None = None
    git_commit: str | None = None
    run_id: str | None = None
    shard: int = 0
    shards: int = 1  # > 1: this process is shard `shard` of a run split across hosts
    shard_wait_s: float = 600.0


@dataclass(frozen=True)
class GateOptions:
    """What decides exit code 1: in-run thresholds and the regression comparison."""

    thresholds: tuple[Any, ...] = ()  # loadgen.thresholds.Threshold
    abort_on_fail: bool = False
    baseline_version: str | None = None
    fail_on_regression: bool = False
    regression_thresholds: Any = None  # loadgen.compare.Thresholds
    baseline_runs: int | None = None


@dataclass(frozen=True)
class ObserveOptions:
    """Live metrics and collectors around the run."""

    metrics_port: int | None = None  # None: no /metrics
    metrics_addr: str = "127.0.0.1"
    metrics_grace_s: float = 15.0
    services: tuple[Any, ...] = ()  # loadgen.collectors.ServiceSpec
    queues: tuple[Any, ...] = ()  # loadgen.collectors.QueueSpec
    collect_interval_s: float = 1.0
    workers: int = 1
    on_worker_failure: str = "continue"


@dataclass
class Outcome:
    exit_code: int
    summary: dict[str, Any]
    run_id: str
    notes: list[str] = field(default_factory=list)
    stored: bool = False  # the run (merged, for shards) is in the database


def _say(console: Console, text: str) -> None:
    """One message line: never wrapped, since it carries paths, URLs and commands to copy."""
    console.print(text, soft_wrap=True)


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and short enough to type: ``20261124-081500-3fa2``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _git_commit(scenario: Scenario | None) -> str | None:
    for var in ("GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(var):
            return os.environ[var]
    where = os.path.dirname(os.path.abspath(scenario.path)) if scenario else os.getcwd()
    try:
        out = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _config_doc(config: RunConfig, adhoc: AdHocRequest | None) -> dict[str, Any]:
    doc = dataclasses.asdict(config)
    doc["stages"] = [dataclasses.asdict(s) for s in config.stages]
    doc["host"] = redact(config.host) if config.host else config.host
    if adhoc is not None:
        # Header values may carry credentials: keep their names only.
        doc["adhoc"] = {"url": redact(adhoc.url), "method": adhoc.method, "headers": sorted(adhoc.headers),
                        "body_bytes": len(adhoc.body)}
    return doc


def _run_row(config: RunConfig, scenario: Scenario | None, adhoc: AdHocRequest | None,
             target: str | None, opts: StoreOptions, run_id: str, started_at: float) -> dict[str, Any]:
    return {
        "id": run_id,
        "app_version": config.app_version,
        "git_commit": opts.git_commit or _git_commit(scenario),
        "environment": opts.environment,
        "test_type": config.test_type,
        "scenario": scenario_key(scenario, adhoc),
        "host": target,
        "generator_host": socket.gethostname(),
        "model": config.model,
        "loadgen_version": __version__,
        "config": _config_doc(config, adhoc),
        "started_at": started_at,
        "status": "running",
    }


def scenario_key(scenario: Scenario | None, adhoc: AdHocRequest | None) -> str | None:
    """What runs are matched on for a comparison: the scenario path as given
    (normalised), or ``METHOD URL`` in ad-hoc mode."""
    if scenario is not None:
        return os.path.normpath(scenario.path)
    if adhoc is not None:
        return f"{adhoc.method} {redact(adhoc.url)}"
    return None


def _status(result: RunResult, aborted: bool) -> str:
    if aborted:
        return "aborted"
    if result.interrupted:
        return "interrupted"
    return "completed"


def execute(
    config: RunConfig,
    *,
    scenario: Scenario | None,
    adhoc: AdHocRequest | None,
    target: str | None,
    store: StoreOptions,
    gate: GateOptions,
    console: Console,
    quiet: bool,
    summary_json: str | None,
    observe: ObserveOptions = ObserveOptions(),
    sinks: list[Any] | None = None,
) -> Outcome:
    """Run the test and everything after it; see the module docstring.

    ``target`` is the URL as shown and stored: any password in it is masked here,
    the one way in to every output (terminal, summary, store, /metrics, messages).
    """
    target = redact(target) if target else target
    run_id = store.run_id or new_run_id()
    exporter = None
    if observe.metrics_port is not None:
        from .metrics import MetricsExporter

        exporter = MetricsExporter(
            run_id=run_id,
            app_version=config.app_version,
            test_type=config.test_type,
            info={"scenario": os.path.basename(scenario.path) if scenario else "adhoc", "host": target or ""},
        )
        exporter.start(port=observe.metrics_port, addr=observe.metrics_addr)  # a UsageError before anything runs
        if not quiet:
            _say(console, f"metrics at {exporter.url}")
    try:
        return _execute(config, scenario, adhoc, target, store, gate, console, quiet, summary_json,
                        observe, list(sinks or []), run_id, exporter)
    finally:
        if exporter is not None:
            exporter.stop()


def _execute(config: RunConfig, scenario: Scenario | None, adhoc: AdHocRequest | None, target: str | None,
             store: StoreOptions, gate: GateOptions, console: Console, quiet: bool, summary_json: str | None,
             observe: ObserveOptions, sinks: list[Any], run_id: str, exporter: Any) -> Outcome:
    from .display import LiveDisplay
    from .summary import build_summary, print_summary, summarize_samples, write_summary

    writer = None
    if store.db is not None:
        from .store.writer import RunWriter

        writer = RunWriter(
            store.db,
            _run_row(config, scenario, adhoc, target, store, run_id, dt.datetime.now(dt.timezone.utc).timestamp()),
            spool_dir=store.spool_dir,
            shard=store.shard,
            replace_run=store.shards == 1,
        )
        writer.start()
        if store.shards > 1 and writer.db_error:
            raise RunError(f"{writer.db_error}: the shards of a run meet in the database, so this shard cannot run")
        if writer.db_error and writer.spool_error:
            raise RunError(f"{writer.db_error}, and {writer.spool_error}: the run would be lost, so it is not started")
        if writer.db_error:
            _say(
                console,
                f"[yellow]warning:[/yellow] {escape(writer.db_error)}; the run goes on and is spooled to "
                f"{escape(str(writer.spool_path))}"
            )
        elif writer.spool_error:
            _say(console, f"[yellow]warning:[/yellow] {escape(writer.spool_error)}; writing to the database only")

    all_sinks: list[Any] = sinks
    if exporter is not None:
        all_sinks.append(exporter)
    display = None
    if not quiet:
        display = LiveDisplay(console, config.duration_s)
        all_sinks.append(display)
    if writer is not None:
        all_sinks.append(writer)
    threshold_sink = None
    if gate.thresholds and gate.abort_on_fail:
        from .thresholds import ThresholdSink

        threshold_sink = ThresholdSink(gate.thresholds)
        all_sinks.append(threshold_sink)
    engine: Any
    if observe.workers > 1:
        from .coordinator import Coordinator

        engine = Coordinator(config, workers=observe.workers, scenario=scenario,
                             scenario_path=scenario.path if scenario else None, adhoc=adhoc,
                             sinks=all_sinks, on_worker_failure=observe.on_worker_failure)
    elif store.shards > 1:
        import asyncio

        from .shards import wait_for_shards

        assert writer is not None

        async def barrier() -> None:
            if not quiet:
                _say(console, f"shard {store.shard}/{store.shards} of run {run_id}: waiting for the other shards")
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: wait_for_shards(writer.call, run_id, store.shard, store.shards,
                                              host=socket.gethostname(), timeout_s=store.shard_wait_s))

        engine = Engine(config, scenario=scenario, adhoc=adhoc, sinks=all_sinks,
                        part=(store.shard, store.shards), start_gate=barrier)
    else:
        engine = Engine(config, scenario=scenario, adhoc=adhoc, sinks=all_sinks)
    samples: list[Any] = []
    collector = None
    if observe.services or observe.queues:
        from .collectors import ProcessCollectorRunner

        # Sampling happens in a child process: /proc reads and queue polls would
        # otherwise contend for this process's GIL with the engine, and come late
        # exactly when the generator is busiest.
        collector = ProcessCollectorRunner(
            observe.services, observe.queues, [samples.extend], interval_s=observe.collect_interval_s
        )
        if writer is not None:
            collector.add_sink(writer.add_samples)
        if exporter is not None:
            collector.add_sink(exporter.observe_samples)
        collector.start()
    try:
        if display is not None:
            with display:
                result = engine.run()
        else:
            result = engine.run()
    finally:
        if collector is not None:
            collector.stop()
    if exporter is not None:
        exporter.finish()

    if store.shards > 1:
        assert writer is not None
        result, merged = _finish_shard(config, result, store, writer, run_id, console)
        if merged is None:
            # Not the last shard: its own share is the summary it can give.
            own = build_summary(result, scenario=scenario.path if scenario else None, host=target)
            own.update(run_id=run_id, shard=store.shard, shards=store.shards, exit_code=EXIT_OK)
            print_summary(own, console)
            if summary_json:
                write_summary(own, summary_json)
            return Outcome(exit_code=EXIT_OK, summary=own, run_id=run_id)
        result = merged
        writer = None  # the shard's own records are written; the merged run is written below
    doc = build_summary(result, scenario=scenario.path if scenario else None, host=target)
    doc["run_id"] = run_id
    if store.shards > 1:
        doc["shards"] = store.shards
    if collector is not None:
        doc.update(summarize_samples(samples))
        for name, err in collector.errors.items():
            doc["warnings"].append(f"collector {name} failed {err.count} time(s): {err.message}")
    exit_code = EXIT_OK
    threshold_results: list[Any] = []
    if gate.thresholds:
        from .thresholds import evaluate, results_to_json

        threshold_results = evaluate(gate.thresholds, result.recorder, result.schedule_s, final=True)
        doc["thresholds"] = results_to_json(threshold_results)
        if not all(r.passed for r in threshold_results):
            exit_code = EXIT_FAILED
    unserved = _unserved(doc, target)
    if unserved:
        exit_code = EXIT_RUN
    aborted = threshold_sink is not None and threshold_sink.aborted is not None
    if aborted and doc.get("stop_reason") in (None, "abort-on-fail"):  # say which threshold
        doc["stop_reason"] = (f"abort-on-fail: threshold {threshold_sink.aborted.threshold.expr} failed "  # type: ignore[union-attr]
                              f"at {threshold_sink.aborted_at_s:.0f}s")  # type: ignore[union-attr]
    status = _status(result, aborted)
    doc["status"] = status

    print_summary(doc, console)
    if threshold_results:
        from .thresholds import render

        render(threshold_results, console)

    # The summary file first: it is the copy that survives when the store cannot take the run.
    doc["exit_code"] = exit_code
    summary_error = _write_summary_file(doc, summary_json)
    outcome = Outcome(exit_code=exit_code, summary=doc, run_id=run_id)
    stored = False
    if store.shards > 1:
        from .results import with_store
        from .shards import store_merged

        with_store(store.db, lambda st: store_merged(st, run_id, result, doc, status, exit_code))  # type: ignore[arg-type]
        stored = True
        _say(console, f"run {run_id}: all {store.shards} shards merged and stored in {escape(store.db.shown)}")  # type: ignore[union-attr]
    elif writer is not None:
        from .store.records import endpoint_rows, run_end_row

        end = run_end_row(result.duration_s, doc, status, exit_code, dt.datetime.now(dt.timezone.utc).timestamp())
        wo = writer.finish(end, endpoint_rows(result.recorder.totals, result.schedule_s))
        stored = wo.stored
        if wo.stored:
            _say(console, f"stored as run {run_id} in {escape(store.db.shown)}")  # type: ignore[union-attr]
        elif wo.spool_path is not None:
            _say(
                console,
                f"[yellow]the database was not reachable ({escape(wo.error or 'unknown error')}); run {run_id} "
                f"is spooled to {escape(str(wo.spool_path))}; load it with: loadgen import "
                f"{escape(str(wo.spool_path))} (with the same --db or LOADGEN_DB_URL)[/yellow]"
            )
        else:
            lost = f"the run could not be stored ({wo.error or 'unknown error'}) and no spool file could be written"
            doc["exit_code"] = EXIT_RUN
            doc["warnings"].append(f"{lost}: this summary is the run's only record")
            if summary_json and summary_error is None:
                summary_error = _write_summary_file(doc, summary_json)
            kept = (f"its summary is in {summary_json}, the only copy" if summary_json and summary_error is None
                    else "nothing of it is kept (give --summary-json to keep its summary)")
            raise RunError(f"{lost}; {kept}")

    try:
        if unserved:
            raise RunError(unserved)
        exit_code = _gate_on_baseline(gate, store, run_id, stored, writer is not None, exit_code, doc, console)
    except RunError:
        exit_code = EXIT_RUN
        raise
    finally:
        doc["exit_code"] = exit_code
        if summary_json and summary_error is None:
            summary_error = _write_summary_file(doc, summary_json)
        if summary_error is not None:
            # The run's verdict stands only if its summary is where CI looks for it.
            raise RunError(f"--summary-json {summary_json} could not be written: {summary_error}")
    outcome.exit_code = exit_code
    outcome.stored = stored
    if stored and (exit_code != EXIT_OK or "comparison" in doc):
        from .results import set_outcome

        doc["exit_code"] = exit_code
        set_outcome(store.db, run_id, exit_code, doc)  # type: ignore[arg-type]
    if exporter is not None and observe.metrics_grace_s > 0:
        if not quiet:
            _say(
                console,
                f"serving {exporter.url} until Prometheus scrapes the end (at most {observe.metrics_grace_s:g}s)"
            )
        exporter.linger(observe.metrics_grace_s)
    return outcome


# Error kinds that show the target failed a request (not the run's end, nor the scenario).
_TARGET_FAILURES = ("connect", "timeout", "reset", "protocol")


def _unserved(doc: dict[str, Any], target: str | None) -> str | None:
    """Why the run is exit 3 because the target served nothing, or None.

    Exit 3 means not one request got an HTTP response and the target failed at
    least one: connects refused or timed out, connections reset or closed, only
    garbage in reply (any mix). One response, whatever its status, means the
    target was served and the thresholds decide. Requests cut off by the run's
    end (``cutoff``) count as the target failing them too (it never answered in
    the whole run), except after a signal: Ctrl-C may stop a run against a slow
    target before its first answer.
    """
    requests = doc["requests"]
    kinds = doc["errors_by_kind"]
    failures = _TARGET_FAILURES if doc.get("interrupted") else (*_TARGET_FAILURES, "cutoff")
    if not requests or sum(doc["status_codes"].values()) or not any(kinds.get(k) for k in failures):
        return None
    how = ", ".join(f"{kind} {n:,}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f"the target {target} could not be reached or served: none of the {requests:,} requests got an "
            f"HTTP response ({how})")


def _write_summary_file(doc: dict[str, Any], path: str | None) -> str | None:
    """Write the summary JSON; the reason it could not be, or None."""
    if not path:
        return None
    from .summary import write_summary

    try:
        write_summary(doc, path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _finish_shard(config: RunConfig, result: RunResult, store: StoreOptions, writer: Any, run_id: str,
                  console: Console) -> tuple[RunResult, RunResult | None]:
    """A shard's end: leave its part; if it is the last, merge every part into the run."""
    from .results import with_store
    from .shards import claim_merge
    from .wire import part_to_json

    wo = writer.finish_shard(part_to_json(result.recorder, result))
    tot = result.recorder.totals
    _say(
        console,
        f"shard {store.shard}/{store.shards} of run {run_id}: {tot.overall.requests:,} requests, "
        f"{tot.overall.errors:,} errors in {result.duration_s:.1f}s"
    )
    if not wo.stored:
        raise RunError(
            f"shard {store.shard} of run {run_id} could not reach the database ({wo.error}); its data is spooled to "
            f"{wo.spool_path}: load it with loadgen import, which merges the run once every shard is in"
        )

    merged = with_store(store.db, lambda st: claim_merge(st, run_id, config))  # type: ignore[arg-type]
    if merged is None:
        _say(console, "the other shards are still running; the last one to finish merges the run")
    return result, merged


def _gate_on_baseline(gate: GateOptions, store: StoreOptions, run_id: str, stored: bool, spooled: bool,
                      exit_code: int, doc: dict[str, Any], console: Console) -> int:
    """Compare with the baseline version, if asked; the exit code after it."""
    if not gate.baseline_version:
        return exit_code
    if not stored:
        raise RunError(
            "the comparison with the baseline could not be carried out: the run is not in the database"
            + (" (it is spooled; import it, then run loadgen compare)" if spooled else " (--db none)")
        )
    from .results import run_comparison

    comparison = run_comparison(
        store.db,  # type: ignore[arg-type]
        baseline_version=gate.baseline_version,
        candidate=run_id,
        thresholds=gate.regression_thresholds,
        baseline_runs=gate.baseline_runs,
        console=console,
    )
    if comparison.verdict == "regression" and gate.fail_on_regression:
        exit_code = EXIT_FAILED
    doc["comparison"] = comparison.to_json()
    return exit_code
