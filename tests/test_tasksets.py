"""Task sets: entered, run task by task, left by interrupt(); nested; sequential; tasks lists and dicts.

The order of what a user does is checked by driving users directly (no network);
runs through the engine against the demo target check that the engine records
it all: the rows, the failed iterations by task, on_stop for every set entered.
"""

from __future__ import annotations

import asyncio

import pytest

from loadgen.errors import ScenarioError
from loadgen.tasksets import RUNNER, leave_sets
from scenario_runs import load, module_of, requests_by_name, run

pytestmark = pytest.mark.timeout(120)


def _drive(sc, iterations: int, *, index: int = 0):
    """Run ``iterations`` iterations of one user of the scenario's first class, as the engine does;
    returns the user and the think time after each iteration."""
    ut = sc.task_sets[0]
    user = ut.user_class(None, index)
    waits = []

    async def go():
        for _ in range(iterations):
            fn = ut.pick(user)
            try:
                await fn(user)
            except Exception as exc:  # the engine counts it; the user goes on
                waits.append(type(exc).__name__)
                continue
            waits.append(ut.wait(user))

    asyncio.run(go())
    return user, waits


SEQUENCE = """
    from loadgen import SequentialTaskSet, User, constant, task

    LOG = []

    async def reply(taskset):
        LOG.append("reply")

    class Thread(SequentialTaskSet):
        async def on_start(self):
            LOG.append("Thread.start")

        async def on_stop(self):
            LOG.append("Thread.stop")

        @task
        async def open(self):
            LOG.append("open")

        tasks = [reply]

        @task(2)
        async def read(self):
            LOG.append("read")

        @task
        async def back(self):
            self.interrupt()

    class U(User):
        wait_time = constant(7)
        tasks = [Thread]
"""


def test_a_sequential_set_runs_in_declared_order_and_interrupt_leaves_it(tmp_path):
    sc = load(tmp_path, SEQUENCE)
    user, waits = _drive(sc, 11)
    log = module_of(sc)["LOG"]
    one_pass = ["Thread.start", "open", "reply", "read", "read", "Thread.stop"]
    assert log == one_pass * 2 + ["Thread.start", "open"]
    # The user's think time after each task; none after interrupt() (reschedule=True).
    assert waits == [7, 7, 7, 7, 0.0] * 2 + [7]
    assert len(user.__dict__[RUNNER].stack) == 1  # in the set now


NESTED = """
    from loadgen import SequentialTaskSet, TaskSet, User, constant, task

    LOG = []

    class Thread(SequentialTaskSet):
        wait_time = constant(3)

        async def on_start(self):
            assert isinstance(self.parent, Forum) and self.parent.user is self.user
            assert self.client is self.user.client
            LOG.append("Thread.start")

        async def on_stop(self):
            LOG.append("Thread.stop")

        @task
        async def open(self):
            LOG.append("open")

        @task
        async def back(self):
            self.interrupt(reschedule=False)

    class Forum(SequentialTaskSet):
        def wait_time(self):
            return 5

        async def on_start(self):
            assert self.parent is self.user
            LOG.append("Forum.start")

        async def on_stop(self):
            LOG.append("Forum.stop")

        tasks = [Thread]

        @task
        async def browse(self):
            LOG.append("browse")

        @task
        async def leave(self):
            self.interrupt()

    class U(User):
        wait_time = constant(7)

        @task
        class Inline(TaskSet):
            @task
            async def only(self):
                LOG.append("inline")
                self.interrupt()

        tasks = {Forum: 1}
"""


def test_nested_sets_return_to_their_parent_with_the_think_time_of_where_the_user_is(tmp_path):
    sc = load(tmp_path, NESTED)
    assert sc.task_sets[0].names == ("Inline", "Forum")
    ut = sc.task_sets[0]
    user = ut.user_class(None, 0)
    user.random.random = lambda: 0.9  # the user level's random pick: the last entry, Forum
    waits = []

    async def go():
        for _ in range(9):
            await ut.pick(user)(user)
            waits.append(ut.wait(user))

    asyncio.run(go())
    log = module_of(sc)["LOG"]
    one_pass = ["Forum.start", "Thread.start", "open", "Thread.stop", "browse", "Forum.stop"]
    assert log == one_pass * 2 + ["Forum.start", "Thread.start", "open"]
    # In Thread: its constant(3); interrupt(reschedule=False) back in Forum: Forum's wait_time() method;
    # interrupt() out of Forum: no wait; then the user's wait is not used while in a set.
    assert waits == [3, 5, 5, 0.0] * 2 + [3]


def test_a_taskset_declared_inside_the_user_with_task_is_entered(tmp_path):
    sc = load(tmp_path, NESTED)
    ut = sc.task_sets[0]
    user = ut.user_class(None, 0)
    user.random.random = lambda: 0.1  # the first entry: Inline

    async def go():
        await ut.pick(user)(user)

    asyncio.run(go())
    assert module_of(sc)["LOG"] == ["inline"]
    assert ut.wait(user) == 0.0 and user.__dict__[RUNNER].stack == []


FAILING = """
    from loadgen import InterruptTaskSet, RescheduleTask, SequentialTaskSet, User, constant, task

    LOG = []
    STARTS = []

    class Shaky(SequentialTaskSet):
        async def on_start(self):
            STARTS.append(1)
            if len(STARTS) == 1:
                raise RuntimeError("first entry fails")
            LOG.append("start")

        async def on_stop(self):
            LOG.append("stop")
            raise ValueError("on_stop fails")

        @task
        async def boom(self):
            LOG.append("boom")
            raise KeyError("x")

        @task
        async def again(self):
            LOG.append("again")
            raise RescheduleTask()

    class U(User):
        wait_time = constant(1)
        tasks = [Shaky]
"""


def test_exceptions_in_a_set_leave_the_user_in_it_and_on_start_failures_do_not_enter_it(tmp_path):
    sc = load(tmp_path, FAILING)
    user, outcomes = _drive(sc, 5)
    log = module_of(sc)["LOG"]
    # Entry 1: on_start raised (not entered). Entry 2: start, boom (raises, stays), again
    # (RescheduleTask: nothing counted, the user waits), boom, again.
    assert outcomes == ["RuntimeError", "KeyError", 1, "KeyError", 1]
    assert log == ["start", "boom", "again", "boom", "again"]
    reported: list[BaseException] = []
    asyncio.run(leave_sets(user, reported.append))
    assert log[-1] == "stop" and [type(e) for e in reported] == [ValueError]
    assert user.__dict__[RUNNER].stack == []


@pytest.mark.parametrize("body, message", [
    ("class S(TaskSet):\n    @task\n    def t(self):\n        pass\nclass U(User):\n    tasks = [S]\n",
     ":3: task S.t must be 'async def'"),
    ("class S(TaskSet):\n    pass\nclass U(User):\n    tasks = [S]\n", ":2: TaskSet S has no tasks"),
    ("class U(User):\n    tasks = ['x']\n", "U.tasks holds 'x', which is neither"),
    ("async def f(u):\n    pass\nclass U(User):\n    tasks = {f: 0}\n", "gives 'f' the weight 0"),
    ("class U(User):\n    tasks = 3\n", "U.tasks must be a list or a dict"),
    ("class S(TaskSet):\n    def on_start(self):\n        pass\n    @task\n    async def t(self):\n        pass\n"
     "class U(User):\n    tasks = [S]\n", ":3: S.on_start must be 'async def'"),
    ("class S(TaskSet):\n    pass\nS.tasks = [S]\nclass U(User):\n    tasks = [S]\n", "TaskSet S contains itself"),
])
def test_a_wrong_task_set_is_one_sentence_with_its_place(tmp_path, body, message):
    with pytest.raises(ScenarioError, match="s.py") as info:
        load(tmp_path, "from loadgen import TaskSet, User, task\n" + body)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


ENGINE = """
    from loadgen import SequentialTaskSet, TaskSet, User, constant, task

    ENTERED = []
    LEFT = []

    class Thread(SequentialTaskSet):
        async def on_start(self):
            ENTERED.append("Thread")

        async def on_stop(self):
            LEFT.append("Thread")

        @task
        async def open(self):
            r = await self.client.get("/health", name="thread-open")
            r.check(status=200)

        @task
        async def boom(self):
            raise KeyError("no such thread")

        @task
        async def back(self):
            self.interrupt()

    class Forum(TaskSet):
        async def on_start(self):
            ENTERED.append("Forum")

        async def on_stop(self):
            LEFT.append("Forum")

        tasks = {Thread: 2}

        @task
        async def read(self):
            await self.client.get("/health", name="forum-read")

        @task
        async def leave(self):
            self.interrupt()

    class U(User):
        wait_time = constant(0.01)
        tasks = [Forum]

        @task
        async def home(self):
            await self.client.get("/", name="home")
"""


@pytest.mark.parametrize("model", ["closed", "open"])
def test_the_engine_runs_nested_sets_and_names_failures_by_set(tmp_path, start_demo, model):
    demo = start_demo()
    sc = load(tmp_path, ENGINE)
    cfg = {"model": "open", "rate": 100.0} if model == "open" else {}
    result, s = run(sc, demo.url, seed=3, **cfg)
    rows = requests_by_name(s)
    assert rows.keys() == {"home", "forum-read", "thread-open"} and min(rows.values()) > 0
    assert s["errors"] == 0 and s["failed_iterations"]["total"] > 0
    [(where, n)] = s["exceptions"].items()  # counted with the place it was raised
    assert where.endswith("s.py:20: KeyError: 'no such thread'") and n == s["failed_iterations"]["total"]
    assert s["failed_iterations"]["by_task"].keys() == {"U.Thread.boom"}
    g = module_of(sc)
    # Every set entered was left: by interrupt(), or at the end of the run (innermost first).
    assert sorted(g["ENTERED"]) == sorted(g["LEFT"]) and g["ENTERED"].count("Thread") > 0


USER_TASKS = """
    from loadgen import User

    async def often(user):
        await user.client.get("/health", name="often")

    async def seldom(user):
        await user.client.get("/health", name="seldom")

    async def listed(user):
        await user.client.get("/health", name="listed")

    class Weighted(User):
        tasks = {often: 4, seldom: 1}

    class Listed(User):
        weight = 1
        tasks = [listed]
"""


def test_user_tasks_as_dict_and_list_of_plain_functions(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, USER_TASKS)
    assert [ts.names for ts in sc.task_sets] == [("often", "seldom"), ("listed",)]
    _, s = run(sc, demo.url, users=4, seed=1)
    rows = requests_by_name(s)
    assert s["errors"] == 0 and s["exceptions"] == {}
    assert rows["often"] > 2 * rows["seldom"] > 0 and rows["listed"] > 0
