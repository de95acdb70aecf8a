"""The run as its sinks see it: the engine and the workers' coordinator are both a RunView."""

from __future__ import annotations

import typing

import pytest

from loadgen.config import RunConfig
from loadgen.scaleout.coordinator import Coordinator
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.scenario import load_scenario
from loadgen.sinks import RunView, scenario_label, target_of

SCENARIO = """
from loadgen import User, task

class U(User):
    host = "http://scenario.example:8080"

    @task
    async def t(self):
        await self.client.get("/")
"""


def _members() -> list[str]:
    return [name for name in RunView.__dict__ if not name.startswith("_")]


@pytest.mark.parametrize("kind", ["engine", "coordinator"])
def test_engine_and_coordinator_are_run_views(kind):
    config = RunConfig(model="open", rate=10, run_time_s=1.0, max_names=7)
    adhoc = AdHocRequest("http://127.0.0.1:9/x?q=1")
    run = Engine(config, adhoc=adhoc, handle_signals=False) if kind == "engine" else Coordinator(
        config, workers=2, adhoc=adhoc, handle_signals=False)
    assert isinstance(run, RunView)
    assert set(_members()) == {"model", "config", "scenario", "adhoc", "recorder", "warnings", "stopping", "stop", "steering", "stop_reason"}
    for name in _members():
        assert hasattr(run, name), name
    assert run.model == "open" and run.recorder.max_names == 7 and run.warnings == [] and not run.stopping
    assert scenario_label(run) == "adhoc" and target_of(run) == "http://127.0.0.1:9/x?q=1"


def test_scenario_label_and_target(tmp_path):
    path = tmp_path / "shop.py"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    run = Engine(RunConfig(model="closed", users=1, run_time_s=1.0), scenario=scenario, handle_signals=False)
    assert scenario_label(run) == "shop.py"
    assert target_of(run) == "http://scenario.example:8080"
    run = Engine(RunConfig(model="closed", users=1, run_time_s=1.0, host="http://flag.example"), scenario=scenario,
                 handle_signals=False)
    assert target_of(run) == "http://flag.example"  # --host wins over the scenario's


def test_the_sinks_here_take_a_run_view():
    from loadgen.observe.display import LiveDisplay
    from loadgen.observe.exporter import MetricsExporter

    for sink in (LiveDisplay.__call__, MetricsExporter.__call__):
        hints = typing.get_type_hints(sink)
        assert hints["run"] is RunView, sink
