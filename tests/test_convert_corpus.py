"""Locustfiles through ``loadgen convert`` and ``loadgen run``: Locust's own examples and the old Locust suite.

1. Locust's examples. The source distribution of ``locust==2.20.0`` carries 37
   Python files under ``examples/``; a session fixture downloads it with pip
   into a temporary directory (never into the repository; the tests skip, with
   pip's reason, when the index cannot be reached). ``EXAMPLES`` says what each
   file is: an HTTP locustfile that must run as converted, one that needs hand
   work (and why), a locustfile of another protocol or a custom client, or not
   a locustfile at all. Every locustfile converts (exit 0) into code that
   parses; the others are refused (exit 2, one sentence). Each runnable one
   runs for 3 s against the permissive stand-in (tests/locust_standin.py) with
   no errors, and reports its requests under the names Locust would give them.
   The ones needing hand work and the other protocols carry warnings that say
   why, where the converter can see it. ``test_corpus_counts`` prints the counts.
2. Request names. Locust names a request by ``name=``, else by the client's
   ``request_name`` (``rename_request``), else by the request's path *with its
   query string*, including ``params=`` (HttpUser: requests' ``path_url``);
   FastHttpUser takes the URL argument as written (a query in it kept,
   ``params=`` not added). loadgen's default row is the path without the query,
   so a converted file keeps Locust's names only if the converter says them.
3. The old suite. tests/locust_suite/ holds the three locustfiles our
   scenarios/ replaced (API, content generation, auth and sessions), written
   as a Locust user writes them. Each converts into a scenario equivalent to
   its scenarios/ file: it runs clean against the demo target, reports the
   same rows, has the same task weights and think times, and its checks fail
   where the scenario's checks fail (against the stand-in, whose answers do
   not satisfy all of them).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from locust_standin import StandIn

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SUITE = Path(__file__).resolve().parent / "locust_suite"
LOCUST = "locust==2.20.0"

# Environment variables `loadgen run` reads; a developer's shell must not change the runs here.
_LOADGEN_ENV = {"TARGET_HOST", "USERS", "SPAWN_RATE", "RUN_TIME", "APP_VERSION", "TEST_TYPE"}

#: A warning as the converter lists it: ``file:line: what and why``.
WARNING_LINE = re.compile(r"^\S.*:\d+: \S.*")


# --- what each of Locust's examples is --------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """What converting and running one of Locust's examples must give.

    ``kind``: ``runs`` (HTTP: converted, it runs clean and reports ``names``),
    ``hand`` (HTTP, but it needs hand work: ``why``), ``other`` (another protocol
    or a custom client: ``why``), ``not_locustfile`` (refused, exit 2).
    ``warns``: a pattern the converter's warnings must match, saying why hand
    work is needed; None when the reason is outside the file (a package or a
    service it needs), which no converter can see.
    """

    kind: str
    why: str = ""
    warns: str | None = None
    names: frozenset[str] = field(default_factory=frozenset)
    tls: bool = False  # absolute https:// URLs to other hosts: run through the stand-in's CONNECT proxy


def runs(*names: str, tls: bool = False) -> Example:
    return Example("runs", names=frozenset(names), tls=tls)


def hand(why: str, warns: str | None) -> Example:
    return Example("hand", why, warns)


def other(why: str, warns: str) -> Example:
    return Example("other", why, warns)


NOT_LOCUSTFILE = Example("not_locustfile", "imports nothing from locust")

EXAMPLES: dict[str, Example] = {
    "add_command_line_argument.py": hand(
        "adds its own command-line arguments (init_command_line_parser) and reads them from parsed_options",
        r"init_command_line_parser|parsed_options",
    ),
    "basic.py": runs("GET /", "GET /stats/requests", "GET /does_not_exist"),
    "browse_docs_sequence_test.py": hand(
        "crawls docs.locust.io's HTML with pyquery (a package not installed here; the stand-in serves no docs)",
        None,
    ),
    "browse_docs_test.py": hand(
        "crawls docs.locust.io's HTML with pyquery (a package not installed here; the stand-in serves no docs)",
        None,
    ),
    "custom_messages.py": hand(
        "distributes users over workers with runner messages (register_message, send_message)",
        r"runner|message",
    ),
    "custom_shape/double_wave.py": runs("GET /"),
    "custom_shape/stages.py": runs("GET /"),
    "custom_shape/staging_user_classes.py": hand(
        "its shape's tick() also chooses the user classes of each stage (a third item)",
        r"user_classes|tick|third|3-tuple|three",
    ),
    "custom_shape/step_load.py": runs("GET /"),
    "custom_shape/wait_user_count.py": hand(
        "its shape reads get_current_user_count() and calls reset_time(); users sleep in __init__",
        r"get_current_user_count|reset_time|__init__",
    ),
    "custom_wait_function.py": runs("GET /", "GET /stats/requests", "GET /does_not_exist"),
    "custom_xmlrpc_client/server.py": NOT_LOCUSTFILE,
    "custom_xmlrpc_client/xmlrpc_locustfile.py": other(
        "an XML-RPC client reporting through events.request.fire", r"custom client"
    ),
    "debugging.py": runs("GET /hello"),
    "debugging_advanced.py": runs("GET /hello1", "GET /hello2"),
    "dynamic_user_credentials.py": runs("POST /login", "GET /protected/resource"),
    "events.py": hand(
        "extends Locust's web UI and sums figures across workers (report_to_master, worker_report)",
        r"report_to_master|worker_report|web_ui|web UI",
    ),
    "extend_modern_web_ui.py": hand(
        "extends Locust's web UI with a Flask blueprint (Flask is not installed here)", r"web_ui|web UI|flask|Flask"
    ),
    "extend_web_ui/extend.py": hand(
        "extends Locust's web UI with a Flask blueprint (Flask is not installed here)", r"web_ui|web UI|flask|Flask"
    ),
    "fast_http_locust.py": runs("GET /", "GET /stats/requests"),
    "grpc/grpc_user.py": other(
        "a gRPC client reporting through events.request.fire", r"fire\(\) reports|custom client"
    ),
    "grpc/hello_pb2.py": NOT_LOCUSTFILE,
    "grpc/hello_pb2_grpc.py": NOT_LOCUSTFILE,
    "grpc/hello_server.py": NOT_LOCUSTFILE,
    "grpc/locustfile.py": other(
        "a gRPC user (its base class in grpc_user.py, a server spawned with gevent)", r"gevent|another file"
    ),
    "locustfile.py": runs("GET /hello", "GET /world", "GET /item", "POST /login"),
    "manual_stats_reporting.py": other(
        "times its own blocks and reports them with events.request.fire", r"fire\(\) reports"
    ),
    "multiple_hosts.py": hand(
        "opens a second locust.clients.HttpSession on $API_HOST", r"HttpSession"
    ),
    "nested_inline_tasksets.py": runs("GET /", "GET /stats/requests"),
    "rest.py": hand(
        "FastHttpUser.rest() and its RestResponseContextManager; fails requests on purpose; calls example.com",
        r"rest\(\)|RestResponseContextManager",
    ),
    "sdk_session_patching/session_patch_locustfile.py": hand(
        "hands Locust's session to a third-party SDK (archivist, not installed here) that calls it synchronously",
        r"self\.client.*handed|handed to other code",
    ),
    "semaphore_wait.py": hand(
        "waits on a gevent Semaphore released by the spawning_complete event", r"gevent|Semaphore|spawning_complete"
    ),
    "stop_on_threshold.py": hand(
        "a gevent greenlet watches runner.stats and calls runner.quit()", r"gevent|runner"
    ),
    "terraform/aws/plan/basic.py": runs("GET google", "GET microsoft", "GET facebook", tls=True),
    "test_data_management.py": hand(
        "fetches data from postman-echo.com with requests at import time; quitting/quit/test_stopping events",
        r"quitting|quit|test_stopping|MasterRunner|runner",
    ),
    "use_as_lib.py": hand(
        "builds its own Environment, runner and web UI at import time (Locust as a library)",
        r"Environment|runner|web_ui|create_local_runner",
    ),
    "worker_index.py": other(
        "a non-HTTP user reading a CSV per worker (runner.worker_index, locust_plugins)",
        r"locust_plugins|runner",
    ),
}


# --- running loadgen ----------------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _LOADGEN_ENV and not k.startswith("LOADGEN_")}


def loadgen(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env=_clean_env(),
    )


def convert(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``loadgen convert SOURCE -o OUT``."""
    return loadgen("convert", str(source), "-o", str(out), cwd=out.parent)


def run(scenario: Path, host: str, work: Path, *args: str, users: int = 2) -> dict[str, Any]:
    """``loadgen run SCENARIO --host HOST --run-time 3s --users N -q --db none``, in ``work`` (a temp dir,
    where the summary is written); the summary document."""
    summary = work / f"{scenario.parent.name}-{scenario.stem}-summary.json"
    summary.unlink(missing_ok=True)
    proc = loadgen(
        "run", str(scenario), "--host", host, "--run-time", "3s", "--users", str(users), "--spawn-rate", "50",
        "-q", "--db", "none", "--summary-json", str(summary), *args, cwd=work,
    )
    assert proc.returncode == 0, f"{scenario.name}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(summary.read_text())


def clean(summary: dict[str, Any]) -> str | None:
    """Why a run is not clean (requests, no errors, no failed checks, no exceptions), or None."""
    if summary["requests"] == 0:
        return "no requests"
    if summary["errors"]:
        return f"{summary['errors']} errors: {summary['errors_by_kind']}"
    failed = {k: v for k, v in summary["checks"].items() if v["fails"]}
    if failed:
        return f"failed checks: {failed}"
    if summary["exceptions"]:
        return f"exceptions: {summary['exceptions']}"
    return None


# --- Locust's examples ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def locust_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/**/*.py of locust 2.20.0's source distribution, downloaded and extracted into a temp dir."""
    where = tmp_path_factory.mktemp("locust-sdist")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "--disable-pip-version-check", "-q", LOCUST, "-d", str(where)],
            capture_output=True, text=True, timeout=240,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download {LOCUST} took more than 240 s (is the package index reachable?)")
    sdists = sorted(where.glob("locust-*.tar.gz"))
    if proc.returncode != 0 or not sdists:
        reason = (proc.stderr.strip().splitlines() or ["no sdist written"])[-1]
        pytest.skip(f"pip download {LOCUST} failed (package index unreachable?): {reason}")
    examples = where / "examples"
    with tarfile.open(sdists[0]) as tar:
        for member in tar.getmembers():
            _, _, rest = member.name.partition("/")
            if not (member.isfile() and rest.startswith("examples/") and rest.endswith(".py")):
                continue
            relative = Path(rest).relative_to("examples")
            if ".." in relative.parts:
                continue
            target = examples / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = tar.extractfile(member)
            assert extracted is not None
            target.write_bytes(extracted.read())
    return examples


def test_the_sdist_carries_the_37_examples_we_expect(locust_examples: Path) -> None:
    found = {p.relative_to(locust_examples).as_posix() for p in locust_examples.rglob("*.py")}
    assert len(found) == 37
    assert found == set(EXAMPLES)


@dataclass
class Converted:
    """One example through ``loadgen convert`` (CLI) and ``convert_source`` (the library)."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    out: Path
    code: str | None  # the converted text, when the CLI wrote it
    warnings: list[str]


class Corpus:
    """Each example converted once and, if it runs, run once, per session (tests share the outcomes)."""

    def __init__(self, examples: Path, work: Path) -> None:
        self.examples = examples
        self.work = work
        self._converted: dict[str, Converted] = {}
        self.ran: dict[str, Ran] = {}  # runnable example -> its run (see run_example)

    def converted(self, name: str) -> Converted:
        if name not in self._converted:
            from loadgen.convert import convert_source

            source = self.examples / name
            out_dir = self.work / Path(name).parent
            out_dir.mkdir(parents=True, exist_ok=True)
            # Beside copies of its siblings, so that a converted file that imports them still finds them.
            for sibling in source.parent.iterdir():
                if sibling.is_file() and not (out_dir / sibling.name).exists():
                    shutil.copy(sibling, out_dir / sibling.name)
            out = out_dir / f"converted_{source.name}"
            proc = convert(source, out)
            code = out.read_text() if proc.returncode == 0 and out.exists() else None
            warnings: list[str] = []
            if EXAMPLES[name].kind != "not_locustfile":
                warnings = [str(w) for w in convert_source(source.read_text(), str(source)).warnings]
            self._converted[name] = Converted(name, proc.returncode, proc.stdout, proc.stderr, out, code, warnings)
        return self._converted[name]


@pytest.fixture(scope="session")
def corpus(locust_examples: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(locust_examples, tmp_path_factory.mktemp("converted"))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_converts(name: str, corpus: Corpus) -> None:
    """Every locustfile converts (exit 0) into code that parses; a file that is not one is refused in one sentence."""
    expected = EXAMPLES[name]
    c = corpus.converted(name)
    if expected.kind == "not_locustfile":
        from loadgen.convert import is_locustfile

        assert not is_locustfile((corpus.examples / name).read_text())
        assert c.returncode == 2, f"exit {c.returncode}\n{c.stdout}\n{c.stderr}"
        message = c.stderr.strip()
        assert message and "\n" not in message and "Traceback" not in message, message
        return
    assert c.returncode == 0, f"exit {c.returncode}\n{c.stdout}\n{c.stderr}"
    assert c.code is not None
    ast.parse(c.code, filename=str(c.out))
    for warning in c.warnings:
        assert WARNING_LINE.match(warning), f"not 'file:line: what and why': {warning!r}"
    # The CLI shows the same warnings the library returns.
    for warning in c.warnings:
        assert warning.split(": ", 1)[1] in c.stderr + c.stdout, warning


@pytest.mark.parametrize(
    "name", sorted(n for n, e in EXAMPLES.items() if e.kind in ("hand", "other") and e.warns is not None)
)
def test_example_needing_hand_work_says_why(name: str, corpus: Corpus) -> None:
    """Another protocol, a custom client or a Locust-only feature: the warnings name it (``warns``)."""
    expected = EXAMPLES[name]
    assert expected.warns is not None
    c = corpus.converted(name)
    assert c.returncode == 0, f"exit {c.returncode}\n{c.stderr}"
    text = "\n".join(c.warnings)
    assert re.search(expected.warns, text), f"{name} ({expected.why}): no warning like {expected.warns!r} in\n{text}"


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandIn.start() as server:
        yield server


@pytest.fixture(scope="module")
def tls_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StandIn, Path]]:
    """The stand-in over HTTPS with a certificate for google.com, microsoft.com and facebook.com, signed by
    a CA made here: the example's absolute URLs go through the stand-in's CONNECT proxy to it."""
    import ssl

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (apt-get install openssl)")
    d = tmp_path_factory.mktemp("standin-pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    (d / "san.ext").write_text(
        "subjectAltName=DNS:google.com,DNS:microsoft.com,DNS:facebook.com\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=stand-in CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=google.com", "-keyout", "server.key",
            "-out", "server.csr")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "server.pem", d / "server.key")
    with StandIn.start(ssl=ctx) as server:
        yield server, d / "ca.pem"


RUNNABLE = sorted(n for n, e in EXAMPLES.items() if e.kind == "runs")


@dataclass(frozen=True)
class Ran:
    """One runnable example's 3 s against the stand-in."""

    summary: dict[str, Any]
    problem: str | None  # why the run was not clean, None when it was
    served: int  # requests the stand-in answered
    tunnelled: tuple[str, ...]  # host:port of each CONNECT (the TLS examples)


def run_example(name: str, corpus: Corpus, request: pytest.FixtureRequest) -> Ran:
    """The example's converted file run once per session against the stand-in (over TLS when it calls https://)."""
    if name in corpus.ran:
        return corpus.ran[name]
    expected = EXAMPLES[name]
    c = corpus.converted(name)
    assert c.returncode == 0 and c.code is not None, c.stderr
    args: tuple[str, ...] = ("--graceful-stop", "30s")  # locustfile.py's task sleeps 10 s: let iterations end
    if expected.tls:
        server, ca = request.getfixturevalue("tls_standin")
        args += ("--proxy", server.proxy_url, "--ca-bundle", str(ca))
    else:
        server = request.getfixturevalue("standin")
    server.reset()
    summary = run(c.out, server.url, c.out.parent, *args)
    corpus.ran[name] = Ran(summary, clean(summary), server.requests, tuple(server.tunnelled))
    return corpus.ran[name]


@pytest.mark.parametrize("name", RUNNABLE)
def test_http_example_runs_clean_under_locusts_names(
    name: str, corpus: Corpus, request: pytest.FixtureRequest
) -> None:
    """3 s against the stand-in: requests, no errors, no exceptions, every row a name Locust would report."""
    expected = EXAMPLES[name]
    ran = run_example(name, corpus, request)
    assert ran.problem is None, f"{name}: {ran.problem}"
    rows = set(ran.summary["endpoints"])
    assert rows and rows <= expected.names, f"rows Locust would not report: {sorted(rows - expected.names)}"
    assert ran.summary["requests"] == ran.served, "loadgen's count and the stand-in's differ"
    if expected.tls:
        # Every request went through the CONNECT proxy to the stand-in: none left the machine.
        assert ran.tunnelled and {t.rpartition(":")[0] for t in ran.tunnelled} <= {
            "google.com", "microsoft.com", "facebook.com"}


@pytest.mark.timeout(900)  # when run alone it converts all 37 and runs the 12
def test_corpus_counts(corpus: Corpus, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """The counts: converted, ran clean, needs hand work (other protocols apart), not a locustfile."""
    kinds = {kind: sorted(n for n, e in EXAMPLES.items() if e.kind == kind)
             for kind in ("runs", "hand", "other", "not_locustfile")}
    locustfiles = [n for n in EXAMPLES if EXAMPLES[n].kind != "not_locustfile"]
    converted = [n for n in locustfiles if corpus.converted(n).returncode == 0 and corpus.converted(n).code is not None]
    refused = [n for n in kinds["not_locustfile"] if corpus.converted(n).returncode == 2]
    not_clean = {}
    for n in kinds["runs"]:
        try:
            problem = run_example(n, corpus, request).problem
        except AssertionError as exc:  # loadgen run exited non-zero
            problem = str(exc).splitlines()[0]
        if problem is not None:
            not_clean[n] = problem
    silent = [n for n in kinds["hand"] + kinds["other"] if not corpus.converted(n).warnings]
    lines = [
        f"locust 2.20.0 examples: {len(EXAMPLES)} files, {len(locustfiles)} locustfiles",
        f"  converted (exit 0, output parses): {len(converted)} of {len(locustfiles)}",
        f"  HTTP, ran clean against the stand-in under Locust's names: {len(kinds['runs']) - len(not_clean)} "
        f"of {len(kinds['runs'])}",
        f"  HTTP, need hand work: {len(kinds['hand'])}",
        f"  other protocols or custom clients, need hand work: {len(kinds['other'])}",
        f"  needing hand work with no warning (the reason is outside the file): {len(silent)}",
        f"  not locustfiles (refused, exit 2): {len(refused)} of {len(kinds['not_locustfile'])}",
    ]
    lines += [f"    {n}: {EXAMPLES[n].why}" for n in kinds["hand"] + kinds["other"]]
    lines += [f"    NOT CLEAN {n}: {why}" for n, why in not_clean.items()]
    with capsys.disabled():  # shown in every run's output, not only with -s
        print("\n" + "\n".join(lines))
    assert converted == locustfiles
    assert refused == kinds["not_locustfile"]
    assert not_clean == {}


# --- the names Locust reports ---------------------------------------------------------------------------

NAMING_PROBE = '''\
from locust import FastHttpUser, HttpUser, constant, task


class Requests(HttpUser):
    wait_time = constant(0.2)
    fixed_count = 1

    @task
    def names(self):
        self.client.get("/plain")
        self.client.get("/search?q=shoes")
        self.client.get("/search", params={"q": "boots"})
        self.client.get("/items/7", name="/items/[id]")
        with self.client.rename_request("/grouped/[id]"):
            self.client.get("/grouped/1")
            self.client.get("/grouped/2")


class Fast(FastHttpUser):
    wait_time = constant(0.2)
    fixed_count = 1

    @task
    def names(self):
        self.client.get("/fast?page=2")
        self.client.get("/fast", params={"page": 3})
'''

#: What Locust 2.20.0 reports for NAMING_PROBE (clients.py: name, else request_name, else path_url;
#: contrib/fasthttp.py: name, else the url argument as written).
LOCUST_NAMES = {
    "GET /plain",
    "GET /search?q=shoes",
    "GET /search?q=boots",
    "GET /items/[id]",
    "GET /grouped/[id]",
    "GET /fast?page=2",
    "GET /fast",
}


def test_converted_requests_keep_locusts_names(tmp_path: Path, standin: StandIn) -> None:
    source = tmp_path / "naming.py"
    source.write_text(NAMING_PROBE)
    out = tmp_path / "naming_converted.py"
    proc = convert(source, out)
    assert proc.returncode == 0, proc.stderr
    standin.reset()
    summary = run(out, standin.url, tmp_path)
    assert clean(summary) is None, clean(summary)
    rows = set(summary["endpoints"])
    assert rows == LOCUST_NAMES, (
        f"loadgen reports {sorted(rows - LOCUST_NAMES)} where Locust reports {sorted(LOCUST_NAMES - rows)}"
    )


#: URLs the converter cannot read: a variable or an expression. Locust still names such a request by
#: its path and query (HttpUser) or by the URL as given (FastHttpUser). ``{elsewhere}`` is the stand-in.
DYNAMIC_PROBE = '''\
from locust import FastHttpUser, HttpUser, constant, task

ELSEWHERE = "{elsewhere}"


class Requests(HttpUser):
    wait_time = constant(0.2)
    fixed_count = 1

    @task
    def names(self):
        for n in (1, 2):
            self.client.get(f"/item?id={{n}}")
        self.client.request("GET", "/req?z=1")
        self.client.get(ELSEWHERE + "/abs?y=2")


class Fast(FastHttpUser):
    wait_time = constant(0.2)
    fixed_count = 1

    @task
    def names(self):
        self.client.get(ELSEWHERE + "/fabs?x=1")
'''


def test_converted_requests_to_computed_urls_keep_locusts_names_or_say_why_not(tmp_path: Path, standin: StandIn) -> None:
    # The names below are what Locust 2.20.0 itself reported for this file against the stand-in.
    source = tmp_path / "dynamic.py"
    source.write_text(DYNAMIC_PROBE.format(elsewhere=standin.url))
    out = tmp_path / "dynamic_converted.py"
    proc = convert(source, out)
    assert proc.returncode == 0, proc.stderr
    summary = run(out, standin.url, tmp_path)
    assert clean(summary) is None, clean(summary)
    # Locust's names, but for HttpUser's URL known only at run time (Locust: GET /abs?y=2): loadgen names
    # that row by its path, and the converter says so at that line.
    expected = {"GET /item?id=1", "GET /item?id=2", "GET /req?z=1", "GET /abs", f"GET {standin.url}/fabs?x=1"}
    rows = set(summary["endpoints"])
    assert rows == expected, f"loadgen reports {sorted(rows - expected)} where expected {sorted(expected - rows)}"
    line = next(i for i, text in enumerate(source.read_text().splitlines(), 1) if "/abs?y=2" in text)
    assert f"{source}:{line}:" in proc.stderr and "add name=" in proc.stderr, proc.stderr


# --- the old Locust suite -------------------------------------------------------------------------------

#: scenario -> (rows every run has, rows a short run may have)
SUITE_ROWS: dict[str, tuple[set[str], set[str]]] = {
    "api.py": (
        {"POST /api/auth/login", "GET /api/campaigns", "GET /api/campaigns/[id]", "POST /api/campaigns", "GET /health"},
        set(),
    ),
    "content.py": ({"POST /api/auth/login", "POST /api/content", "GET /api/content/[id]"}, {"POST /api/auth/refresh"}),
    "auth_session.py": ({"POST /api/auth/login", "GET /api/auth/verify"}, {"POST /api/auth/refresh",
                                                                           "POST /api/auth/logout"}),
}

#: scenario -> the rows whose checks fail against the stand-in (it answers 200 where 201, 202 or 204
#: is expected, and its verify answer has no "valid"): the converted checks must fail there too.
STANDIN_FAILS = {
    "api.py": {"POST /api/campaigns"},
    "content.py": {"POST /api/content"},
    "auth_session.py": {"GET /api/auth/verify"},
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/locust_suite/ copied into a temp dir and each locustfile converted beside it (converted_*.py)."""
    work = tmp_path_factory.mktemp("suite")
    shutil.copytree(SUITE, work, dirs_exist_ok=True)
    for name in SUITE_ROWS:
        proc = convert(work / name, work / f"converted_{name}")
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        ast.parse((work / f"converted_{name}").read_text())
    return work


def _leaf_weights(table: Any, share: Fraction = Fraction(1)) -> dict[str, Fraction]:
    """Each task function's share of a user's iterations: weights normalised, nested task sets multiplied out."""
    from loadgen.tasks import TaskTable

    total = sum(t.weight for t in table.tasks)
    leaves: dict[str, Fraction] = {}
    for t in table.tasks:
        part = share * Fraction(t.weight, total)
        found = _leaf_weights(t.run, part) if isinstance(t.run, TaskTable) else {t.run.__name__: part}
        for leaf, f in found.items():
            leaves[leaf] = leaves.get(leaf, Fraction(0)) + f
    return leaves


def _users(path: Path) -> dict[str, Any]:
    from loadgen.scenario import load_scenario

    scenario = load_scenario(path)
    return {ut.user_class.__name__: ut.user_class for ut in scenario.task_sets}


@pytest.mark.parametrize("name", sorted(SUITE_ROWS))
def test_suite_file_converts_into_an_equivalent_scenario(
    name: str, suite: Path, start_demo: Any, tmp_path: Path
) -> None:
    demo = start_demo(processing_scale=0.1)
    converted = run(suite / f"converted_{name}", demo.url, tmp_path, "--seed", "1", users=5)
    ours = run(SCENARIOS / name, demo.url, tmp_path, "--seed", "1", users=5)

    assert clean(converted) is None, clean(converted)
    assert clean(ours) is None, clean(ours)
    required, optional = SUITE_ROWS[name]
    for summary in (converted, ours):
        rows = set(summary["endpoints"])
        assert required <= rows, f"missing rows: {sorted(required - rows)}"
        assert rows <= required | optional, f"unexpected rows: {sorted(rows - required - optional)}"

    # The same user classes, task weights and think times.
    theirs_users, our_users = _users(suite / f"converted_{name}"), _users(SCENARIOS / name)
    assert sorted(theirs_users) == sorted(our_users)
    from loadgen.tasks import collect

    for user in our_users:
        theirs_weights = _leaf_weights(collect(theirs_users[user], name))
        assert theirs_weights == _leaf_weights(collect(our_users[user], name))
        assert repr(theirs_users[user].wait_time) == repr(our_users[user].wait_time)


@pytest.mark.parametrize("name", sorted(SUITE_ROWS))
def test_suite_checks_fail_where_the_scenarios_checks_fail(
    name: str, suite: Path, standin: StandIn, tmp_path: Path
) -> None:
    # 10 users: enough iterations that even a task of weight 1 in 10 runs in both.
    converted = run(suite / f"converted_{name}", standin.url, tmp_path, "--seed", "1", users=10)
    ours = run(SCENARIOS / name, standin.url, tmp_path, "--seed", "1", users=10)
    assert converted["exceptions"] == {} and ours["exceptions"] == {}

    def failing(summary: dict[str, Any]) -> dict[str, bool]:
        return {row: e["errors"] > 0 for row, e in summary["endpoints"].items()}

    theirs, mine = failing(converted), failing(ours)
    expected = STANDIN_FAILS[name]
    assert {row for row, bad in mine.items() if bad} >= expected  # the premise: the stand-in fails these checks
    assert {row for row, bad in theirs.items() if bad} >= expected
    both = set(theirs) & set(mine)
    assert {row: theirs[row] for row in both} == {row: mine[row] for row in both}


def test_converted_content_suite_renews_tokens_before_they_expire(
    suite: Path, start_demo: Any, tmp_path: Path
) -> None:
    # Tokens living 1 s expire several times in 3 s: the converted renewal must keep every request authorised.
    demo = start_demo(processing_scale=0.1, token_ttl_s=1.0)
    summary = run(suite / "converted_content.py", demo.url, tmp_path, "--seed", "1", users=5)
    assert clean(summary) is None, clean(summary)
    assert summary["endpoints"]["POST /api/auth/refresh"]["requests"] >= 5
    with urllib.request.urlopen(demo.url + "/_stats", timeout=10) as r:
        assert summary["requests"] == json.load(r)["requests"]
