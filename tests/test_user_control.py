"""Control exceptions (StopUser, RescheduleTask, InterruptTaskSet) and fixed_count, through the engine."""

from __future__ import annotations

import pytest

from scenario_runs import load, module_of, requests_by_name, run

pytestmark = pytest.mark.timeout(120)

STOPPING = """
    from loadgen import StopUser, TaskSet, User, constant, task

    STARTS, STOPS, SET_STOPS = [], [], []

    class Inner(TaskSet):
        async def on_stop(self):
            SET_STOPS.append(self.user.index)

        @task
        async def go(self):
            await self.client.get("/health", name="inner")
            self.user.n += 1
            if self.user.n >= 3:
                raise StopUser()

    class U(User):
        wait_time = constant(0.01)
        tasks = [Inner]

        async def on_start(self):
            self.n = 0
            STARTS.append(self.index)
            if self.index == 0:
                raise StopUser()

        async def on_stop(self):
            STOPS.append(self.index)
"""


def test_stop_user_ends_the_user_for_good_with_its_on_stops_and_is_no_failure(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, STOPPING)
    _, s = run(sc, demo.url, users=3, run_time_s=2.0)
    g = module_of(sc)
    # Three users started, none replaced: user 0 stopped in on_start, 1 and 2 after three iterations each.
    assert sorted(g["STARTS"]) == [0, 1, 2]
    assert sorted(g["STOPS"]) == [0, 1, 2] and sorted(g["SET_STOPS"]) == [1, 2]
    assert requests_by_name(s) == {"inner": 6}
    assert s["iterations"] == 6 and s["failed_iterations"]["total"] == 0 and s["exceptions"] == {}


def test_stop_user_in_the_open_model_ends_that_user_and_arrivals_still_run(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, """
        from loadgen import StopUser, User, task

        STARTS, STOPS = [], []

        class U(User):
            async def on_start(self):
                STARTS.append(self.index)

            async def on_stop(self):
                STOPS.append(self.index)

            @task
            async def once(self):
                await self.client.get("/health", name="once")
                raise StopUser()
    """)
    _, s = run(sc, demo.url, model="open", rate=20.0, run_time_s=1.5, preallocated_users=2)
    g = module_of(sc)
    assert s["iterations"] + s["dropped_iterations"] == 30 and s["requests"] == s["iterations"] > 0
    assert s["failed_iterations"]["total"] == 0 and s["exceptions"] == {}
    assert len(g["STARTS"]) == len(g["STOPS"]) >= s["iterations"]  # one user per iteration: each stops


def test_reschedule_and_interrupt_end_the_iteration_without_counting_it_failed(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, """
        from loadgen import InterruptTaskSet, RescheduleTask, User, constant, task

        class U(User):
            wait_time = constant(0.01)

            @task
            async def rescheduled(self):
                await self.client.get("/health", name="before")
                raise RescheduleTask()
                await self.client.get("/health", name="never")

            @task
            async def interrupted(self):
                await self.client.get("/health", name="before")
                raise InterruptTaskSet(reschedule=False)  # no set to leave: the iteration just ends
    """)
    _, s = run(sc, demo.url)
    assert requests_by_name(s) == {"before": s["iterations"]} and s["iterations"] > 0
    assert s["failed_iterations"]["total"] == 0 and s["exceptions"] == {}


FIXED = """
    from loadgen import User, constant, task

    STARTED = []

    class Base(User):
        abstract = True
        wait_time = constant(0.05)

        async def on_start(self):
            STARTED.append(type(self).__name__)

        @task
        async def go(self):
            await self.client.get("/health", name=type(self).__name__)

    class Admin(Base):
        fixed_count = 2

    class Reader(Base):
        weight = 3

    class Writer(Base):
        weight = 1
"""


def test_fixed_count_starts_exactly_that_many_and_the_weighted_share_the_rest(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, FIXED)
    _, s = run(sc, demo.url, users=9, seed=5)
    started = module_of(sc)["STARTED"]
    assert started.count("Admin") == 2
    assert started.count("Reader") + started.count("Writer") == 7 and started.count("Reader") > 0
    assert started[:2] == ["Admin", "Admin"]  # before the weighted ones
    assert s["users_max"] == 9 and s["exceptions"] == {}


def test_when_every_class_is_fixed_the_run_has_their_sum_of_users(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, FIXED.replace("weight = 3", "fixed_count = 1").replace("weight = 1", "fixed_count = 3"))
    _, s = run(sc, demo.url, users=20)
    started = module_of(sc)["STARTED"]
    assert sorted(started) == ["Admin"] * 2 + ["Reader"] + ["Writer"] * 3
    assert s["users_max"] == 6
    assert requests_by_name(s).keys() == {"Admin", "Reader", "Writer"}


def test_a_bad_fixed_count_is_a_scenario_error(tmp_path):
    from loadgen.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"s.py: Admin.fixed_count must be a whole number, 0 or more"):
        load(tmp_path, FIXED.replace("fixed_count = 2", "fixed_count = -1"))
