"""Tags: @tag on tasks and task sets, --tags / --exclude-tags from the command line, the
environment and a scenario's options; classes left with no task are dropped, none left is exit 2."""

from __future__ import annotations

import pytest

from loadgen import tag
from loadgen.errors import ScenarioError, UsageError
from loadgen.tags import parse_tags
from scenario_runs import cli, load, requests_by_name, run, write

pytestmark = pytest.mark.timeout(120)

TAGGED = """
    from loadgen import TaskSet, User, constant, tag, task

    @tag("forum")
    class Forum(TaskSet):
        @task
        async def read(self):
            await self.client.get("/health", name="read")

        @tag("write")
        @task
        async def post(self):
            await self.client.get("/health", name="post")

    class Shopper(User):
        wait_time = constant(0.02)
        tasks = [Forum]

        @tag("browse")
        @task(3)
        async def browse(self):
            await self.client.get("/health", name="browse")

        @task
        @tag("buy", "write")
        async def buy(self):
            await self.client.get("/health", name="buy")

        @task
        async def untagged(self):
            await self.client.get("/health", name="untagged")

    class Admin(User):
        wait_time = constant(0.02)

        @task
        async def admin(self):
            await self.client.get("/health", name="admin")
"""

ALL = {"read", "post", "browse", "buy", "untagged", "admin"}


@pytest.mark.parametrize("tags, exclude, rows", [
    ((), (), ALL),
    (("browse",), (), {"browse"}),
    (("write",), (), {"post", "buy"}),  # a task in a set, a task with two tags
    (("forum",), (), {"read", "post"}),  # a set's tag is its tasks'
    ((), ("write",), ALL - {"post", "buy"}),
    ((), ("forum", "browse"), {"buy", "untagged", "admin"}),
    (("forum", "buy"), ("write",), {"read"}),
])
def test_the_selection_runs_exactly_the_tagged_tasks(tmp_path, start_demo, tags, exclude, rows):
    demo = start_demo()
    sc = load(tmp_path, TAGGED)
    assert _selected(sc.select(tags, exclude)[0]) == rows
    result, s = run(sc, demo.url, users=6, tags=tags, exclude_tags=exclude, seed=2)
    # A user that enters the Forum set stays in it (it never interrupts): not every task need run.
    assert requests_by_name(s).keys() <= rows and s["requests"] > 0
    dropped = [w for w in s["warnings"] if "no task left by the tag selection" in w]
    assert dropped == ([] if "admin" in rows else ["Admin has no task left by the tag selection; it does not run"])


def _selected(sc) -> set[str]:
    """The names of every task function the scenario's users can run."""
    names: set[str] = set()
    entries = [e for ts in sc.task_sets for e in ts.tasks]
    while entries:
        e = entries.pop()
        if callable(e):
            names.add(e.__name__)
        else:
            entries += e.entries
    return names


def test_nothing_left_is_one_sentence(tmp_path):
    sc = load(tmp_path, TAGGED)
    with pytest.raises(UsageError, match=r"s.py: no task is left to run with --tags nope --exclude-tags x$"):
        sc.select(("nope",), ("x",))


def test_tags_parse_from_text_and_lists():
    assert parse_tags("a, b,,a", "--tags") == ("a", "b")
    assert parse_tags(["x", "y"], "tags") == ("x", "y")
    assert parse_tags(None, "--tags") == () == parse_tags("", "--tags")
    with pytest.raises(UsageError, match="--tags: 'a b' is not a tag name"):
        parse_tags("a b", "--tags")
    with pytest.raises(UsageError, match="--exclude-tags must be tag names"):
        parse_tags(3, "--exclude-tags")
    with pytest.raises(ScenarioError, match="@tag needs at least one tag name"):
        tag()
    with pytest.raises(ScenarioError, match="@tag needs at least one tag name"):
        tag(lambda: None)  # type: ignore[arg-type]  # @tag without parentheses


def test_command_line_environment_and_scenario_options(tmp_path, start_demo):
    demo = start_demo()
    in_options = '    options = {"tags": ["browse", "buy"]}\n    from loadgen import'
    f = write(tmp_path, TAGGED.replace("    from loadgen import", in_options))
    common = (str(f), "--host", demo.url, "--run-time", "1s", "--users", "4")
    proc, s = cli(tmp_path, *common)
    assert proc.returncode == 0, proc.stderr
    assert requests_by_name(s).keys() == {"browse", "buy"}
    proc, s = cli(tmp_path, *common, "--tags", "untagged,forum", env={"LOADGEN_EXCLUDE_TAGS": "write"})
    assert proc.returncode == 0, proc.stderr
    assert requests_by_name(s).keys() == {"read"}  # "untagged" is no tag: the task has none
    proc, s = cli(tmp_path, *common, "--tags", "nope")
    assert proc.returncode == 2 and s is None
    assert proc.stderr.strip() == f"loadgen: error: {f}: no task is left to run with --tags nope"
