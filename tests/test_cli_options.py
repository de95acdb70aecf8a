"""The option table of ``loadgen run``: one precedence rule, and the README's table kept true to it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadgen.cli.options import OPTION_KEYS, RUN_OPTIONS, Option, OptionValues
from loadgen.cli import options as o

README = Path(__file__).resolve().parent.parent / "README.md"
HEADER = "| option | environment | scenario key | meaning | default |"


@dataclass(frozen=True)
class Row:
    flags: frozenset[str]
    env: frozenset[str]
    keys: frozenset[str]
    default: str


def _quoted(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def _readme_rows() -> list[Row]:
    lines = README.read_text().splitlines()
    start = lines.index(HEADER, lines.index("## Running"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 5, line
        flags, env, keys, _, default = cells
        rows.append(Row(frozenset(q.split()[0] for q in _quoted(flags)), frozenset(_quoted(env)),
                        frozenset(_quoted(keys)), default.replace("`", "")))
    return rows


def _documented() -> dict[str, Row]:
    by_flag: dict[str, Row] = {}
    for row in _readme_rows():
        for flag in row.flags:
            assert flag not in by_flag, f"README documents {flag} twice"
            by_flag[flag] = row
    return by_flag


def test_readme_documents_no_option_that_does_not_exist():
    flags = {flag for option in RUN_OPTIONS for flag in option.flags}
    unknown = set(_documented()) - flags
    assert not unknown, f"README documents {sorted(unknown)}, which loadgen run lacks"


@pytest.mark.parametrize("option", RUN_OPTIONS, ids=lambda option: option.flags[0])
def test_readme_documents_each_option_with_its_sources_and_default(option: Option[object]):
    row = _documented().get(option.flags[0])
    assert row is not None, f"README's option table lacks {option.flags[0]}"
    assert row.flags == frozenset(option.flags), f"{option.flags[0]}: README gives {sorted(row.flags)}"
    assert row.env == frozenset(option.env + option.parser_env), f"{option.flags[0]}: environment"
    assert row.keys == frozenset([option.key] if option.key else []), f"{option.flags[0]}: scenario key"
    assert _same_default(option, row.default), f"{option.flags[0]}: README says {row.default!r}"


def _same_default(option: Option[object], documented: str) -> bool:
    if option.documented_default is not None:
        return documented == option.documented_default
    if option.kind != "text" or option.default in (None, ""):
        return documented == ""
    flag = option.flags[0]
    return documented != "" and option.parse(documented, flag) == option.parse(option.default, flag)


def test_documented_defaults_decided_elsewhere_are_those():
    from loadgen.judgement.tolerances import Tolerances

    assert o.BASELINE_RUNS.documented_default == str(Tolerances().baseline_runs)
    home = os.path.expanduser("~")
    documented = o.SPOOL_DIR.documented_default or ""
    assert documented.replace("~", home, 1) == os.path.join(home, ".local", "state", "loadgen", "spool")


def test_the_scenario_keys_are_the_tables():
    assert OPTION_KEYS == {"host", "users", "spawn_rate", "run_time", "rate", "stages", "arrival", "max_inflight",
                           "timeout", "test_type", "graceful_stop", "thresholds", "monitor", "queues", "insecure",
                           "ca_bundle", "client_cert", "client_key", "resolve", "proxy", "http2", "max_redirects", "tags",
                           "exclude_tags", "name"}


def test_typer_parameters_come_from_the_table():
    import typer.main

    from loadgen.cli import app

    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = [p for p in run.params if p.name != "scenario_file"]
    assert [p.name for p in params] == [option.name for option in RUN_OPTIONS]
    for param, option in zip(params, RUN_OPTIONS):
        env = param.envvar if isinstance(param.envvar, list) else [param.envvar] if param.envvar else []
        assert (tuple(param.opts), tuple(env), param.help) == (option.flags, option.env, option.help)


# --- the precedence rule ---------------------------------------------------------------


def _values(given: dict[str, object], scenario: dict[str, object] | None = None) -> OptionValues:
    return OptionValues(given, scenario or {})


def test_given_beats_scenario_beats_default():
    assert _values({"run_time": "3s"}, {"run_time": "7s"}).get(o.RUN_TIME) == 3.0
    assert _values({"run_time": None}, {"run_time": "7s"}).get(o.RUN_TIME) == 7.0
    assert _values({"run_time": None}).get(o.RUN_TIME) == 10.0
    assert _values({"users": None}, {"users": None}).get(o.USERS) == 10


def test_an_option_without_a_scenario_key_ignores_the_scenario():
    assert _values({}, {"connect_timeout": "1s"}).get(o.CONNECT_TIMEOUT) == 10.0


def test_chosen_tells_a_given_value_from_the_default():
    assert _values({"users": None}).chosen(o.USERS) is None
    assert _values({"users": None}, {"users": 4}).chosen(o.USERS) == 4


def test_a_repeatable_option_adds_to_the_scenarios_list():
    values = _values({"threshold": ["p99<1s"]}, {"thresholds": ["p95<300ms"]})
    assert [t.expr for t in values.get(o.THRESHOLD)] == ["p95<300ms", "p99<1s"]  # type: ignore[union-attr]


def test_an_option_is_parsed_once_and_only_when_asked():
    values = _values({"run_time": "never", "timeout": "2s"})
    assert values.get(o.TIMEOUT) == 2.0  # the bad --run-time is not looked at
    assert values.raw(o.RUN_TIME) == "never"


def test_a_scenario_can_stand_in_for_a_default():
    values = OptionValues({"host": None}, {}, defaults={o.HOST: "http://127.0.0.1:7"})
    assert values.get(o.HOST) == "http://127.0.0.1:7"
    assert OptionValues({"host": None}, {"host": "http://127.0.0.1:8"}, defaults={o.HOST: "http://x:7"}).get(o.HOST) \
        == "http://127.0.0.1:8"


def test_the_whole_chain_through_the_command_line(monkeypatch, tmp_path):
    """Flag, then environment (typer reads it), then the scenario's options, then the default."""
    import loadgen.session.execute
    from loadgen.cli import main

    seen: list[float] = []

    class Done:
        exit_code, stored, run_id = 0, False, "r"

    def execute(config, **kw):
        seen.append(config.run_time_s)
        return Done()

    monkeypatch.setattr(loadgen.session.execute, "execute", execute)
    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "s.py"
    head = "from loadgen import User, task\n"
    body = "class U(User):\n    host = 'http://127.0.0.1:9'\n    @task\n    async def t(self):\n        pass\n"
    scenario.write_text(head + "options = {'run_time': '7s'}\n" + body)
    base = ["run", str(scenario), "-q", "--db", "none"]
    for args, env in [(["--run-time", "3s"], "5s"), ([], "5s"), ([], None)]:
        monkeypatch.delenv("RUN_TIME", raising=False)
        if env:
            monkeypatch.setenv("RUN_TIME", env)
        with pytest.raises(SystemExit):
            main([*base, *args])
    scenario.write_text(head + body)
    with pytest.raises(SystemExit):
        main(base)
    assert seen == [3.0, 5.0, 7.0, 10.0]
