"""``loadgen run``'s entry: from the CLI's options to the run's :class:`Outcome`.

The run itself is a session of steps (:mod:`loadgen.session`); this module keeps
the one call the CLI makes, and the option types it builds.
"""

from __future__ import annotations

from rich.console import Console

from ..config import RunConfig
from ..diagnostics import Diagnostics, capture_logging
from ..engine.engine import AdHocRequest
from ..scenario import Scenario
from ..sinks import IntervalSink
from . import GateOptions, ObserveOptions, Outcome, RunSession, RunSpec, StoreOptions, new_run_id
from .options import PublishOptions
from .sinks import open_exporter
from ..redact import redact

__all__ = ["execute"]


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
    sinks: list[IntervalSink] | None = None,
    publish: PublishOptions = PublishOptions(),
    scenario_name: str | None = None,
) -> Outcome:
    """Run the test and everything after it, into the exit code CI gates on.

    ``target`` is the URL as shown and stored: any password in it is masked here,
    the one way in to every output (terminal, summary, store, /metrics, messages).
    Logging is configured here, once for the run: every record goes to its diagnostics.
    """
    spec = RunSpec(config, scenario, adhoc, redact(target) if target else target, summary_json, quiet,
                   scenario_name)
    run_id = store.run_id or new_run_id()
    with capture_logging(Diagnostics()) as logs, open_exporter(spec, observe, run_id, console) as exporter:
        session = RunSession(spec, store=store, gate=gate, observe=observe, console=console, run_id=run_id,
                             exporter=exporter, sinks=list(sinks or []), logs=logs,
                             publish=publish)
        return session.run()
