"""Load shapes: a LoadShape's tick() drives the closed model's user count and ends the run."""

from __future__ import annotations

import re

import pytest

from loadgen import LoadShape
from loadgen.config import RunConfig, Stage
from loadgen.engine.engine import Engine
from loadgen.errors import ScenarioError, UsageError
from loadgen.shape import ShapeDriver
from scenario_runs import cli, load, module_of, run, write

pytestmark = pytest.mark.timeout(120)


class Scripted(LoadShape):
    def __init__(self, answers: list[object]) -> None:
        super().__init__()
        self.answers = answers
        self.asked = 0

    def tick(self):  # type: ignore[override]
        self.asked += 1
        return self.answers.pop(0)


def test_the_level_moves_towards_each_answer_at_its_spawn_rate():
    shape = Scripted([(10, 5.0), (10, 5.0), (2, 100.0), None])
    d = ShapeDriver(shape)
    assert d.level(0.0) == 0.0 and shape.asked == 1  # asked at once: 0 users, going to 10 at 5/s
    assert d.level(0.5) == pytest.approx(2.5)
    assert shape.asked == 1  # once a second, not on every call
    assert d.level(1.0) == pytest.approx(5.0) and shape.asked == 2
    assert d.level(1.5) == pytest.approx(7.5)
    assert d.level(1.99) == pytest.approx(9.95)
    assert d.level(2.0) == pytest.approx(10.0)  # asked again: down to 2 at 100/s
    assert d.level(2.05) == pytest.approx(5.0)
    assert d.level(2.5) == 2.0
    assert d.level(3.0) is None and d.level(3.5) is None and shape.asked == 4
    assert d.stages[0] == Stage(0.0, 0.0) and d.stages[-1].target == 2.0
    assert sum(st.duration_s for st in d.stages) == pytest.approx(3.0)


@pytest.mark.parametrize("answer", ["nope", (1,), (-1, 1.0), (1, 0), (True, 1.0), (1, float("nan")),
                                    (1, 1.0, ["U"]), (10**9, 1.0)])
def test_a_wrong_answer_is_a_scenario_error(answer):
    with pytest.raises(ScenarioError, match=r"Scripted.tick\(\) (returned|names user classes)"):
        ShapeDriver(Scripted([answer])).level(0.0)


SHAPED = """
    from loadgen import LoadShape, User, constant, task

    STARTED = []
    TICKS = []

    class Steps(LoadShape):
        def tick(self):
            t = self.get_run_time()
            TICKS.append(t)
            if t < 1:
                return (2, 100)
            if t < 2:
                return (3, 100)
            return None

    class U(User):
        wait_time = constant(0.05)

        async def on_start(self):
            STARTED.append(self.index)

        @task
        async def t(self):
            await self.client.get("/health")
"""


def test_a_shape_drives_the_users_and_ends_the_run(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, SHAPED)
    assert sc.shape is not None and sc.shape.__name__ == "Steps"
    result, s = run(sc, demo.url, run_time_s=10.0)  # the default run time does not bound a shape
    g = module_of(sc)
    assert s["users_max"] == 3 and sorted(g["STARTED"]) == [0, 1, 2]
    assert s["stop_reason"] is None and not s["interrupted"]  # the shape ended it, as a schedule does
    assert len(g["TICKS"]) >= 3 and g["TICKS"][0] < 0.5  # asked at the start, then once a second
    assert result.duration_s < 9.0
    assert [st.target for st in result.shape.stages][-1] == 3.0 and s["errors"] == 0


def test_a_given_run_time_bounds_a_shape_that_never_ends(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, SHAPED.replace("return None", "return (1, 100)"))
    result, s = run(sc, demo.url, run_time_s=1.5, run_time_given=True)
    assert s["stop_reason"] is None and result.duration_s < 9.0 and s["requests"] > 0


def test_a_tick_that_raises_is_counted_and_ends_the_run(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, SHAPED.replace("return None", "return 1 / 0"))
    result, s = run(sc, demo.url, run_time_s=10.0)
    assert s["stop_reason"] == "Steps.tick() raised ZeroDivisionError"
    [(where, n)] = s["exceptions"].items()
    assert where.endswith("s.py:14: ZeroDivisionError: division by zero") and n == 1
    assert result.duration_s < 9.0


def test_a_shape_with_the_open_model_or_stages_is_a_usage_error(tmp_path):
    sc = load(tmp_path, SHAPED)
    with pytest.raises(UsageError, match=r"s.py: Steps shapes the closed model's users; drop --rate"):
        Engine(RunConfig(model="open", rate=10.0, host="http://127.0.0.1:9"), scenario=sc, handle_signals=False)
    with pytest.raises(UsageError, match=r"s.py: Steps and --stages both shape the run; drop one"):
        Engine(RunConfig(stages=(Stage(1.0, 2.0),), host="http://127.0.0.1:9"), scenario=sc, handle_signals=False)


def test_two_shapes_are_one_too_many(tmp_path):
    other = "\n    class Other(LoadShape):\n        def tick(self):\n            return None\n"
    with pytest.raises(ScenarioError, match=re.escape("s.py: defines 2 load shapes (Steps, Other); a scenario has")):
        load(tmp_path, SHAPED + other)


def test_a_shape_without_tick_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match=r"s.py: Idle must define tick\(\)"):
        load(tmp_path, SHAPED.replace("class Steps(LoadShape):", "class Idle(LoadShape):\n        pass\n\n"
                                      "    class Steps:"))


def test_the_command_line_runs_a_shape_to_its_end(tmp_path, start_demo):
    demo = start_demo()
    f = write(tmp_path, SHAPED)
    proc, s = cli(tmp_path, str(f), "--host", demo.url)
    assert proc.returncode == 0, proc.stderr
    assert s["users_max"] == 3 and s["stop_reason"] is None and s["duration_s"] < 9.0
    proc, s = cli(tmp_path, str(f), "--host", demo.url, "--rate", "5")
    assert proc.returncode == 2 and s is None
    assert proc.stderr.strip() == (f"loadgen: error: {f}: Steps shapes the closed model's users; drop --rate/--model "
                                   "open or the shape")
