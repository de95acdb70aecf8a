"""CSVFeeder: rows in turn, relative to the scenario file, clear errors."""

from pathlib import Path

import pytest

from loadgen import CSVFeeder
from loadgen.errors import ScenarioError


def _csv(tmp_path: Path) -> Path:
    f = tmp_path / "users.csv"
    f.write_text("username,password\nann,pw1\nbob,pw2\ncid,pw3\n")
    return f


def test_rows_cycle_in_order(tmp_path):
    feeder = CSVFeeder(_csv(tmp_path))
    names = [feeder.next()["username"] for _ in range(7)]
    assert names == ["ann", "bob", "cid", "ann", "bob", "cid", "ann"]
    assert len(feeder) == 3


def test_no_cycle_runs_out(tmp_path):
    feeder = CSVFeeder(_csv(tmp_path), cycle=False)
    for _ in range(3):
        feeder.next()
    with pytest.raises(LookupError):
        feeder.next()


def test_shuffle_is_seeded(tmp_path):
    a = CSVFeeder(_csv(tmp_path), shuffle=True, seed=1).rows
    b = CSVFeeder(_csv(tmp_path), shuffle=True, seed=1).rows
    assert a == b and sorted(r["username"] for r in a) == ["ann", "bob", "cid"]


def test_relative_path_is_taken_from_the_scenario_file(tmp_path):
    _csv(tmp_path)
    scenario = tmp_path / "s.py"
    scenario.write_text("from loadgen import CSVFeeder\nfeeder = CSVFeeder('users.csv')\n")
    ns: dict = {"__file__": str(scenario)}
    exec(compile(scenario.read_text(), str(scenario), "exec"), ns)
    assert ns["feeder"].next()["username"] == "ann"


def test_missing_or_empty_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot be read"):
        CSVFeeder(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(ScenarioError, match="no rows"):
        CSVFeeder(empty)
