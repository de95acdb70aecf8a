"""``loadgen run``: options resolved once (:mod:`.options`), settings built and checked
(:mod:`.settings`) before anything runs, then the run, then its report."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console

from .._version import __version__
from ..config import RunConfig
from ..errors import UsageError
from . import options as o
from . import settings
from .options import OptionValues
from .params import takes_options
from .root import app, console, reports_errors

if TYPE_CHECKING:
    from ..scenario import Scenario


@app.command()
@takes_options(o.RUN_OPTIONS)
@reports_errors
def run(
    scenario_file: Optional[str] = typer.Argument(None, help="A scenario file (Python). Omit with --url."),
    **given: object,
) -> None:
    """Run a load test from a scenario file, or against one --url.

    Exit codes: 0 passed; 1 a threshold or the regression gate failed; 2 bad
    usage (options, scenario file, an unwritable output path; found before
    anything runs); 3 the run could not be carried out: not one request got
    an HTTP response (every connect refused or timed out, every connection
    reset, only garbage in reply), or the run could be neither stored nor
    spooled.
    """
    from ..session.execute import execute

    scenario = _scenario(scenario_file, given[o.URL.name])
    values = OptionValues(given, scenario.options if scenario else {},
                          defaults={o.HOST: scenario.host} if scenario else None)
    adhoc = settings.adhoc_request(values)
    config = settings.run_config(values)
    if scenario is not None and config.host is None:
        raise UsageError(f"{scenario.path}: no host; pass --host, set TARGET_HOST, or set host on the User class")
    if scenario is not None:
        scenario.prepare(config)  # tags, a load shape against the model: exit 2 before a store row exists
    gate = settings.gate_options(values)
    store = settings.store_options(values)
    settings.check_outputs(values)
    observe = settings.observe_options(values)
    publish = settings.publish_options(values, os.environ)
    scenario_name = values.get(o.SCENARIO_NAME)  # checked here: a bad name is exit 2 before anything runs
    out = console()
    target = adhoc.url if adhoc else config.host
    if not config.quiet:
        _banner(out, config, scenario, values, target)
    outcome = execute(config, scenario=scenario, adhoc=adhoc, target=target, store=store, gate=gate, console=out,
                      quiet=config.quiet, summary_json=config.summary_json, observe=observe, publish=publish,
                      scenario_name=scenario_name)
    raise typer.Exit(outcome.exit_code)


def _scenario(scenario_file: str | None, url: object) -> Scenario | None:
    from ..scenario import load_scenario

    if scenario_file and url is not None:
        raise UsageError("give a scenario file or --url, not both")
    if not scenario_file and url is None:
        raise UsageError("give a scenario file to run, or --url for ad-hoc mode")
    if not scenario_file:
        return None
    try:
        scenario_file.encode("utf-8")
    except UnicodeEncodeError:  # bytes the file system gave that are not UTF-8: the store and summary keep text
        shown = scenario_file.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise UsageError(f"the scenario file's name {shown!r} is not valid UTF-8; rename the file") from None
    scenario = load_scenario(scenario_file)
    for warning in scenario.conversion_warnings:  # a locustfile, converted in memory: as `loadgen convert` says
        print(f"loadgen: warning: {warning}", file=sys.stderr)
    return scenario


def _banner(out: Console, config: RunConfig, scenario: Scenario | None, values: OptionValues,
            target: str | None) -> None:
    """The run's one line before it starts: what, against what, which load, how long."""
    from ..redact import redact

    shown_target = redact(target) if target else target
    what = f"{scenario.path} against {shown_target}" if scenario else f"{values.get(o.METHOD)} {shown_target}"
    if config.model == "open":
        shape = f"stages {values.raw(o.STAGES)}" if config.stages else f"{config.rate:g}/s"
        load = f"open model, {config.arrival} arrivals, {shape}"
    else:
        load = f"closed model, {config.users} users at {config.spawn_rate:g}/s"
    out.print(f"loadgen {__version__}: {what}; {load}; {config.duration_s:g}s; test type {config.test_type}",
              markup=False)
