"""``loadgen convert``: each construct against a golden file, the warnings, the safety net, the command line.

tests/convert_golden/ holds, per construct, ``<case>.locust.py`` (a locustfile
snippet written for these tests), ``<case>.loadgen.py`` (its conversion,
compared exactly) and, when the conversion warns, ``<case>.warnings`` (the
warnings, exactly). The cases:

- basic_user: HttpUser -> User, @task weights, on_start/on_stop, between.
- fast_http_user: FastHttpUser -> User, its naming (the URL as written), its class settings (warned).
- catch_response: ``with ... catch_response=True as r`` -> ``r = await ...``; failure() -> fail();
  success() under ``if r.status_code == 404`` -> ``expect=404``; an unconditional success() (warned).
- sleeps: time.sleep, gevent.sleep, ``from time import sleep as nap`` -> await asyncio.sleep; a sleep in
  __init__ (warned); gevent's import goes once unused.
- helpers: async transitively (module function, ``self.user.m()``, ``self.m()``); ``(await ...).json()``;
  a request in a lambda (warned).
- client_helpers: ``helper(self.client)`` and ``self.m(self.client)`` (the parameter's calls are the client's,
  a dict's get() is not); ``r.elapsed.total_seconds()`` -> ``r.elapsed_ms / 1000``; r.reason, r.iter_lines (warned).
- response_helper: a method returning ``self.client.request(..., catch_response=True)`` used in ``with``;
  ``super().on_start()``; a nested function.
- tasksets: TaskSet, SequentialTaskSet, nested inline, ``tasks`` dict of functions and classes,
  interrupt(); self.wait() (warned).
- tags_waits: tag, constant_pacing, constant_throughput, weight, fixed_count, abstract.
- events: init/test_start/test_stop/request listeners kept; MasterRunner checks -> True/False;
  init_command_line_parser, quitting, WorkerRunner, parsed_options (warned).
- shape: LoadTestShape -> LoadShape; get_current_user_count(), a 3-tuple tick (warned).
- exceptions: StopUser, RescheduleTask, InterruptTaskSet; RescheduleTaskImmediately (mapped, warned).
- request_keywords: positional data/json/name, every kept keyword, stream=/context= dropped, proxies= kept.
- request_names: rename_request, request_name, and Locust's names for query strings and params=.
- environment: self.environment.host -> self.client.base_url; cookies.get_dict() -> as_dict();
  client.auth, parsed_options (warned).
- custom_client: a User with its own client, events.request.fire, __init__(environment) (warned).
- init_rewrite: ``__init__(self, parent)`` passing its argument on -> ``*args, **kwargs``.
- import_module: ``import locust``/``locust.HttpUser``, a class named User (-> LoadgenUser), run_single_user
  under ``__main__`` stays there.
- residual_imports: an unused Locust name dropped, HttpSession kept (warned), run_single_user moved under
  ``__main__``.
- gevent_pool: gevent's Pool kept (warned).
- layout: comments, a parenthesized import, a tall call keep their layout.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import libcst as cst
import pytest
from aiohttp import web
from libcst.metadata import MetadataWrapper, PositionProvider

from loadgen.convert import convert_source, is_locustfile
from loadgen.convert.locust import compiles, render
from loadgen.convert.notes import MARK, Notes
from loadgen.convert.plan import Plan
from loadgen.errors import UsageError

pytestmark = pytest.mark.timeout(120)

GOLDEN = Path(__file__).resolve().parent / "convert_golden"
CASES = sorted(p.name[: -len(".locust.py")] for p in GOLDEN.glob("*.locust.py"))
WARNING = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<why>\S.*)$")


def golden(case: str) -> tuple[str, str, list[str]]:
    """(input, expected code, expected warnings) of a case."""
    warnings = GOLDEN / f"{case}.warnings"
    return (
        (GOLDEN / f"{case}.locust.py").read_text(),
        (GOLDEN / f"{case}.loadgen.py").read_text(),
        warnings.read_text().splitlines() if warnings.exists() else [],
    )


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert (GOLDEN / f"{case}.loadgen.py").is_file(), f"{case}: no expected conversion"


@pytest.mark.parametrize("case", CASES)
def test_golden_conversion(case: str) -> None:
    source, expected, warnings = golden(case)
    result = convert_source(source, f"{case}.locust.py")
    assert result.code == expected
    assert list(result.warnings) == warnings
    compile(result.code, f"{case}.loadgen.py", "exec")


@pytest.mark.parametrize("case", CASES)
def test_every_warning_is_marked_where_it_applies(case: str) -> None:
    source, expected, warnings = golden(case)
    for warning in warnings:
        m = WARNING.match(warning)
        assert m and m["file"] == f"{case}.locust.py", warning
        assert int(m["line"]) <= len(source.splitlines())
        assert f"{MARK}{m['why']}" in expected, f"not marked in the code: {warning}"
    assert expected.count(MARK) >= len(set(warnings))


@pytest.mark.parametrize("case", CASES)
def test_a_conversion_that_still_imports_locust_says_so(case: str) -> None:
    _, expected, warnings = golden(case)
    outside_main = expected.split('if __name__ == "__main__":')[0]
    if re.search(r"^\s*(from locust[ .]|import locust\b)", outside_main, re.M):
        assert any("still imports" in w for w in warnings)
    else:
        assert not any("still imports" in w for w in warnings)


def test_converting_is_deterministic() -> None:
    for case in CASES:
        source, _, _ = golden(case)
        first, second = convert_source(source, "x.py"), convert_source(source, "x.py")
        assert first == second


# --- what is a locustfile ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source,expected",
    [
        ("from locust import HttpUser\n", True),
        ("import locust\n", True),
        ("from locust.contrib.fasthttp import FastHttpUser\n", True),
        ("def f():\n    import locust.exception\n", True),
        ("import locust_plugins\n", False),
        ("from .locust import x\n", False),
        ("import requests\n", False),
        ("from locust import HttpUser\ndef (:\n", False),
        ("", False),
    ],
)
def test_is_locustfile(source: str, expected: bool) -> None:
    assert is_locustfile(source) is expected


@pytest.mark.parametrize(
    "source,message",
    [
        ("import requests\n", "f.py is not a locustfile: it imports nothing from locust"),
        ("from locust import HttpUser\n\nclass U(HttpUser)\n    pass\n", "f.py:3: not valid Python"),
        ("from locust import task\n\ndef t():\n    await x()\n", "f.py:4: not valid Python"),
    ],
)
def test_convert_source_refuses_what_it_cannot_convert(source: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        convert_source(source, "f.py")
    assert str(info.value).startswith(message)


def test_a_file_with_a_syntax_warning_converts_silently(capfd: pytest.CaptureFixture[str]) -> None:
    result = convert_source('import re\nfrom locust import task\nPATTERN = re.compile("\\d+")\n', "f.py")
    assert 'from loadgen import task' in result.code and result.warnings == ()
    assert capfd.readouterr().err == ""


# --- the safety net ------------------------------------------------------------------------------


def test_a_statement_whose_conversion_would_not_compile_is_put_back_as_it_was() -> None:
    """A plan that awaits inside a plain ``def`` (what a converter bug would do): that statement goes back
    to its original text, with a warning; the rest is converted; the result compiles."""
    source = (
        "from locust import HttpUser, task\n\n\n"
        "def helper(user):\n    return user.client.get('/')  # kept\n\n\n"
        "class U(HttpUser):\n    @task\n    def t(self):\n        helper(self)\n"
    )
    wrapper = MetadataWrapper(cst.parse_module(source))
    tree = wrapper.module
    positions = wrapper.resolve(PositionProvider)
    helper, user = tree.body[1], tree.body[2]
    assert isinstance(helper, cst.FunctionDef) and isinstance(user, cst.ClassDef)
    ret = helper.body.body[0]
    assert isinstance(ret, cst.SimpleStatementLine) and isinstance(ret.body[0], cst.Return)
    call = ret.body[0].value
    task = user.body.body[0]
    assert isinstance(call, cst.Call) and isinstance(task, cst.FunctionDef)
    plan = Plan(Notes("f.py"))
    plan.awaited.add(call)  # but helper is not made async: `await` outside async
    plan.async_defs.add(task)

    code = render(tree, plan, lambda text: compiles(text, "f.py"), lambda node: positions[node].start.line)

    assert compiles(code, "f.py")
    assert "def helper(user):\n    return user.client.get('/')  # kept\n" in code
    assert "    async def t(self):\n" in code
    assert plan.notes.warnings() == (
        "f.py:4: def helper: the converter could not convert this statement and left it as it was: please "
        "report this",
    )


# --- the command line ------------------------------------------------------------------------------


def loadgen(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def test_cli_writes_the_scenario_and_prints_the_warnings(tmp_path: Path) -> None:
    source, expected, warnings = golden("events")
    (tmp_path / "events.py").write_text(source)
    proc = loadgen("convert", "events.py", "-o", "scenario.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert (tmp_path / "scenario.py").read_text() == expected
    lines = proc.stderr.splitlines()
    assert lines[:-1] == [w.replace("events.locust.py:", "events.py:", 1) for w in warnings]
    assert lines[-1] == f"loadgen: wrote scenario.py ({len(warnings)} warnings)"


def test_cli_writes_to_standard_output_without_o(tmp_path: Path) -> None:
    source, expected, warnings = golden("basic_user")
    assert warnings == []
    (tmp_path / "shop.py").write_text(source)
    proc = loadgen("convert", "shop.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected
    assert proc.stderr == ""


@pytest.mark.parametrize(
    "name,content,extra,message",
    [
        ("plain.py", "import requests\n", (), "plain.py is not a locustfile: it imports nothing from locust"),
        ("broken.py", "from locust import task\ndef t(:\n", (), "broken.py:2: not valid Python"),
        ("absent.py", None, (), "absent.py does not exist"),
        ("folder", "dir", (), "folder is a directory, not a locustfile"),
        ("latin1.py", b"from locust import task\n# caf\xe9\n", (), "latin1.py is not UTF-8 text"),
        ("ok.py", "from locust import task\n", ("-o", "no/such/dir/out.py"), "cannot write no/such/dir/out.py"),
    ],
)
def test_cli_refuses_in_one_sentence_with_exit_2(tmp_path: Path, name: str, content: str | bytes | None,
                                                  extra: tuple[str, ...], message: str) -> None:
    if content == "dir":
        (tmp_path / name).mkdir()
    elif isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    elif content is not None:
        (tmp_path / name).write_text(content)
    proc = loadgen("convert", name, *extra, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"loadgen: error: {message}"), proc.stderr


# --- a converted locustfile runs ---------------------------------------------------------------------

LOCUSTFILE = '''\
import time

from locust import HttpUser, TaskSet, constant, task


class Shop(TaskSet):
    def on_start(self):
        self.client.post("/login", json={"user": "ann"})

    @task
    def item(self):
        with self.client.get("/items/1", catch_response=True) as r:
            if r.status_code == 404:
                r.success()  # sold out is fine
            else:
                r.failure(f"unexpected {r.status_code}")

    @task
    def job(self):
        with self.client.post("/jobs", catch_response=True) as r:
            if r.status_code != 202:
                r.failure("not accepted")
        time.sleep(0.01)

    @task
    def check(self):
        with self.client.get("/check", catch_response=True) as r:
            if "ok" not in r.text:
                r.failure("no ok")

    @task
    def grouped(self):
        with self.client.rename_request("/orders/[id]"):
            self.client.get("/orders/1")
            self.client.get("/orders/2", params={"full": 1})
        self.client.get("/search", params={"q": "hats"})


class Buyer(HttpUser):
    wait_time = constant(0.01)
    tasks = [Shop]
'''

#: The rows Locust reports for LOCUSTFILE.
ROWS = {"POST /login", "GET /items/1", "POST /jobs", "GET /check", "GET /orders/[id]", "GET /search?q=hats"}


class _Server:
    """An aiohttp app on 127.0.0.1 in its own thread: /items/1 is 404, /jobs 202, /check says "nope"."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path == "/items/1":
            return web.json_response({"error": "sold out"}, status=404)
        if request.path == "/jobs":
            return web.json_response({"id": 1}, status=202)
        if request.path == "/check":
            return web.Response(text="nope")
        return web.json_response({"ok": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        async def cleanup() -> None:
            assert self.runner is not None
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def server() -> Iterator[str]:
    s = _Server()
    s.thread.start()
    assert s.ready.wait(30), "the test server did not start"
    try:
        yield f"http://127.0.0.1:{s.port}"
    finally:
        s.stop()


def test_a_converted_locustfile_runs_with_locusts_names_and_judgement(tmp_path: Path, server: str) -> None:
    """success() on a 404 became expect=404 (no error), failure() a failed check, the rows Locust's names."""
    (tmp_path / "shop.py").write_text(LOCUSTFILE)
    proc = loadgen("convert", "shop.py", "-o", "converted.py", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr.splitlines() == ["loadgen: wrote converted.py (0 warnings)"]
    proc = loadgen("run", "converted.py", "--host", server, "--run-time", "2s", "--users", "2", "--spawn-rate",
                   "50", "--graceful-stop", "30s", "-q", "--db", "none", "--summary-json", "summary.json",
                   cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["endpoints"]
    assert set(rows) == ROWS
    assert summary["exceptions"] == {}
    assert rows["GET /items/1"]["requests"] > 0 and rows["GET /items/1"]["errors"] == 0  # expected 404
    assert rows["GET /items/1"]["status_codes"] == {"404": rows["GET /items/1"]["requests"]}
    assert rows["POST /jobs"]["errors"] == 0
    assert rows["GET /check"]["errors"] == rows["GET /check"]["requests"] > 0  # every check failed
    assert set(summary["errors_by_kind"]) == {"check"}
    assert summary["errors"] == rows["GET /check"]["errors"]


def test_loadgen_run_on_a_locustfile_converts_it_in_memory_and_says_what_it_could_not(tmp_path, start_demo):
    demo = start_demo()
    f = tmp_path / "locustfile.py"
    f.write_text(textwrap.dedent("""\
        from locust import HttpUser, task, between


        class Visitor(HttpUser):
            wait_time = between(0.01, 0.02)

            @task
            def health(self):
                self.client.get("/health", stream=True)
    """))
    out = tmp_path / "s.json"
    p = subprocess.run([sys.executable, "-m", "loadgen", "run", str(f), "--host", demo.url, "--users", "2",
                        "--run-time", "2s", "-q", "--db", "none", "--summary-json", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    summary = json.loads(out.read_text())
    assert summary["requests"] > 0 and summary["errors"] == 0 and not summary["exceptions"]
    assert list(summary["endpoints"]) == ["GET /health"]
    warnings = [line for line in p.stderr.splitlines() if line.startswith("loadgen: warning:")]
    assert len(warnings) == 1 and f"{f}:9:" in warnings[0] and "stream" in warnings[0], p.stderr
    assert not (tmp_path / "locustfile_loadgen.py").exists()  # nothing written beside it
