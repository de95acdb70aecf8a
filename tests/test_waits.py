"""Think times that pace iterations: constant_pacing and constant_throughput, per user."""

from __future__ import annotations

from time import perf_counter

import pytest

from loadgen import constant_pacing, constant_throughput
from loadgen.errors import ScenarioError
from loadgen.waits import BORN
from scenario_runs import load, run

pytestmark = pytest.mark.timeout(120)


class _User:
    """What a wait time is called with: any object with a __dict__."""


def test_pacing_waits_what_is_left_of_the_pace_and_never_less_than_zero():
    pace = constant_pacing(100)
    user = _User()
    setattr(user, BORN, perf_counter() - 40)  # the first iteration began 40 s ago
    first = pace(user)
    assert 59 < first <= 60
    assert user.__dict__["_loadgen_paced_from"] > perf_counter() + 59  # when the next one is due
    user.__dict__["_loadgen_paced_from"] = perf_counter() - 30  # it started on time, 30 s ago: 70 s are left
    assert 69 < pace(user) <= 70
    user.__dict__["_loadgen_paced_from"] = perf_counter() - 250  # it took longer than the pace: no wait
    assert pace(user) == 0.0


def test_throughput_is_the_inverse_pace_and_bad_values_are_scenario_errors():
    assert constant_throughput(4).seconds == 0.25
    assert repr(constant_throughput(4)) == "constant_throughput(4)"
    for bad in (lambda: constant_throughput(0), lambda: constant_throughput(-1), lambda: constant_pacing(-0.1),
                lambda: constant_pacing(float("nan"))):
        with pytest.raises(ScenarioError):
            bad()


@pytest.mark.parametrize("wait", ["constant_pacing(0.5)", "constant_throughput(2)"])
def test_a_paced_user_starts_an_iteration_every_half_second(tmp_path, start_demo, wait):
    demo = start_demo()
    sc = load(tmp_path, f"""
        from loadgen import User, constant_pacing, constant_throughput, task

        class U(User):
            wait_time = {wait}

            @task
            async def one(self):
                await self.client.get("/health")
    """)
    _, s = run(sc, demo.url, users=2, run_time_s=3.0)
    # 3 s at one iteration per 0.5 s: 6 or 7 per user if the machine keeps up; at least 3 if it is very
    # busy; never more than 7 (a pace shorter than asked would give more).
    assert 2 * 3 <= s["iterations"] <= 2 * 7
    assert s["requests"] == s["iterations"] and s["errors"] == 0
