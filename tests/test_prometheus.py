"""The shipped Prometheus config and rules, and a real Prometheus scraping a real run.

Needs the ``prometheus`` and ``promtool`` binaries (Debian: ``apt-get install
prometheus``): ``LOADGEN_PROMETHEUS_BIN`` / ``LOADGEN_PROMTOOL_BIN``, else
``PATH``, else ``/usr/bin``. Without them the tests skip, with the reason
(and fail under ``LOADGEN_REQUIRE_ALL``, as in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.observe.exporter import MetricsExporter
from loadgen.observe.server import DEFAULT_PORT

REPO = Path(__file__).resolve().parents[1]
PROM_DIR = REPO / "prometheus"
CONFIG = PROM_DIR / "prometheus.yml"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))


def _binary(name: str, env: str, near: str | None = None) -> str | None:
    explicit = os.environ.get(env)
    if explicit:
        if not os.access(explicit, os.X_OK):
            pytest.fail(f"{env}={explicit} is not an executable file")
        return explicit
    if near:
        sibling = Path(near).with_name(name)
        if os.access(sibling, os.X_OK):
            return str(sibling)
    found = shutil.which(name)
    if found:
        return found
    fallback = f"/usr/bin/{name}"
    return fallback if os.access(fallback, os.X_OK) else None


@pytest.fixture(scope="module")
def prometheus_bin() -> str:
    path = _binary("prometheus", "LOADGEN_PROMETHEUS_BIN")
    if path is None:
        pytest.skip("no prometheus binary: set LOADGEN_PROMETHEUS_BIN, put it on PATH, or apt-get install prometheus")
    return path


@pytest.fixture(scope="module")
def promtool_bin() -> str:
    path = _binary("promtool", "LOADGEN_PROMTOOL_BIN", near=_binary("prometheus", "LOADGEN_PROMETHEUS_BIN"))
    if path is None:
        pytest.skip("no promtool binary: set LOADGEN_PROMTOOL_BIN, put it on PATH, or apt-get install prometheus")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def _wait(what: str, check: Callable[[], Any], timeout: float, log: Callable[[], str] = lambda: "") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # not up yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {last!r}){log()}")


# -- PromQL: the metric names an expression selects (the dashboards' tests use it too) -------

_PROMQL_TOKEN = re.compile(
    r"""
    (?P<ws>\s+) | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\])  # a Grafana variable (a range, or a label list)
  | (?P<dur>(?:\d+(?:ms|s|m|h|d|w|y))+(?![\w.]))
  | (?P<num>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
    """,
    re.X,
)
#: Words that are PromQL syntax, not series, where they stand alone.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan", "atan2"}  # fmt: skip
#: Keywords followed by a parenthesised list of label names.
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def promql_tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        m = _PROMQL_TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        if m.lastgroup not in ("ws", "comment"):
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions (followed by
    "("), keywords, label names inside {...} or by/without/on/ignoring/group_x (...), or
    inside [...]; plus {__name__="x"}."""
    toks = promql_tokens(expr)
    names: set[str] = set()
    braces = brackets = 0
    label_list = False
    for i, (kind, text) in enumerate(toks):
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "op":
            if text == "{":
                braces += 1
            elif text == "}":
                braces -= 1
            elif text == "[":
                brackets += 1
            elif text == "]":
                brackets -= 1
            elif text == ")" and label_list:
                label_list = False
            continue
        if kind != "ident":
            continue
        if braces:
            if text == "__name__" and nxt == "=" and i + 2 < len(toks) and toks[i + 2][0] == "str":
                names.add(toks[i + 2][1][1:-1])
            continue
        if brackets or label_list:
            continue
        if text.lower() in _LABEL_LISTS:
            label_list = nxt == "("
            continue
        if nxt == "(" or nxt.lower() in ("by", "without") or text.lower() in _KEYWORDS:
            continue  # a function, an aggregation (sum by (...) (...)), or a keyword
        names.add(text)
    return names


def test_promql_metric_names():
    assert promql_metric_names(
        'histogram_quantile(0.95, sum by (run_id, le) (rate(loadgen_request_duration_seconds_bucket{job="x"}[15s])))'
    ) == {"loadgen_request_duration_seconds_bucket"}
    assert promql_metric_names(
        "(sum without (kind) (rate(a_total[1m])) or 0 * b:c:rate5m) / on (run_id) group_left d > 1e-3"
    ) == {"a_total", "b:c:rate5m", "d"}
    assert promql_metric_names('max_over_time(x[15s]) == bool 1 and up{job="by"}') == {"x", "up"}
    assert promql_metric_names('sum(rate(a{b=~"$v"}[$__rate_interval])) by (c) / ignoring(d) group_right(e) f') == {
        "a", "f"
    }
    assert promql_metric_names('rate(x[5m:1m] offset 1h) + {__name__="y", z="w"} * inf') == {"x", "y"}
    assert promql_metric_names("sum(loadgen_x) or vector(0)") == {"loadgen_x"}


# -- promtool on the shipped files ------------------------------------------------------------


def test_promtool_accepts_the_shipped_config_and_rules(promtool_bin):
    assert RULE_FILES, "no rule files in prometheus/rules"
    for args in (["check", "config", str(CONFIG)], ["check", "rules", *map(str, RULE_FILES)]):
        r = subprocess.run([promtool_bin, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"promtool {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    text = CONFIG.read_text()
    assert f"127.0.0.1:{DEFAULT_PORT}" in text  # the generator's documented default port
    assert "rules/*.yml" in text


# -- a real Prometheus --------------------------------------------------------------------------


class Prometheus:
    def __init__(self, binary: str, config_text: str, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp / "prometheus.yml").write_text(config_text)
        self.log_path = tmp / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        tail = self.log_path.read_text(errors="replace")[-3000:]
        return f"\n--- prometheus log (tail) ---\n{tail}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited with {self.proc.returncode}{self.log()}")
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200

        _wait("prometheus to be ready", ready, timeout, self.log)

    def query(self, promql: str) -> list[dict[str, Any]]:
        doc = _get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def prometheus(prometheus_bin, tmp_path) -> Iterator[Callable[[str], Prometheus]]:
    started: list[Prometheus] = []

    def start(config_text: str) -> Prometheus:
        p = Prometheus(prometheus_bin, config_text, tmp_path)
        started.append(p)
        p.wait_ready()
        return p

    yield start
    for p in started:
        p.stop()


def _config_for_test(exporter_port: int, demo_port: int) -> str:
    """The shipped prometheus.yml, pointed at this test's ports and evaluating rules every second."""
    text = CONFIG.read_text()
    for old, new in (
        (f"127.0.0.1:{DEFAULT_PORT}", f"127.0.0.1:{exporter_port}"),
        ("127.0.0.1:8000", f"127.0.0.1:{demo_port}"),
        ("  - rules/*.yml", f"  - {PROM_DIR / 'rules'}/*.yml"),
        ("evaluation_interval: 5s", "evaluation_interval: 1s"),
    ):
        assert old in text, f"prometheus.yml no longer holds {old!r}"
        text = text.replace(old, new)
    return text


def _sample_names(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_real_prometheus_scrapes_the_run_and_evaluates_the_rules(start_demo, prometheus):
    demo = start_demo(error_rate=0.2, seed=1)
    run_id = uuid.uuid4().hex[:12]
    exporter = MetricsExporter(run_id=run_id, app_version="9.9.9", test_type="load").start(port=0)
    try:
        prom = prometheus(_config_for_test(exporter.port, demo.port))
        sel = f'{{run_id="{run_id}"}}'
        _wait(
            "the first scrapes of the generator and the target",
            lambda: prom.scalar('sum(up{job=~"loadgen|demo-target"})') == 2,
            20,
            prom.log,
        )

        config = RunConfig(model="open", rate=200, run_time_s=3.0, max_inflight=200)
        engine = Engine(config, adhoc=AdHocRequest(demo.url + "/api/campaigns"), sinks=[exporter], handle_signals=False)
        result = engine.run()
        tot = result.recorder.totals
        requests = tot.overall.requests
        assert requests > 0 and tot.overall.errors > 0  # errors were injected: loadgen_errors_total exists

        # As the CLI does: mark the end, then serve until Prometheus has scraped once more.
        exporter.finish()
        assert exporter.linger(20), f"prometheus did not scrape within 20 s of the run's end{prom.log()}"

        # Every rule evaluates without error, and every recording rule has data for the run.
        def rules_ok() -> list[dict[str, Any]] | None:
            groups = _get_json(prom.url + "/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(r["health"] == "ok" for r in rules) else None

        rules = _wait("every rule to evaluate", rules_ok, 20, prom.log)
        assert {r["name"] for r in rules if r["type"] == "alerting"} >= {
            "LoadgenHighErrorRatio", "LoadgenSlowP95", "LoadgenDroppedIterations", "LoadgenGeneratorSaturated",
        }  # fmt: skip
        recorded = {r["name"] for r in rules if r["type"] == "recording"}
        for name in sorted(recorded):
            where = "" if name.startswith("job:demo_") else sel
            _wait(f"recorded series {name}", lambda n=name, w=where: prom.query(f"{n}{w}"), 20, prom.log)

        # Every series a rule reads is one the generator (or the target) really exports, and Prometheus has it.
        exported = _sample_names(exporter.url)
        target = _sample_names(demo.url + "/metrics")
        for rule in rules:
            for name in promql_metric_names(rule["query"]):
                assert name in exported | target | recorded, f"rule {rule['name']} reads {name}, which nothing exports"
                if name not in recorded:
                    assert prom.query(f'count({{__name__="{name}"}})'), f"prometheus has no {name}"
        assert any(n.startswith("loadgen_") for r in rules for n in promql_metric_names(r["query"]))

        # The run is over and the endpoint goes away (as after --metrics-grace): the last scraped
        # values are the run's exact totals. (increase() would extrapolate; the raw last value does not.)
        exporter.stop()

        def last(metric: str) -> float | None:
            return prom.scalar(f"sum(last_over_time({metric}{sel}[5m]))")

        _wait("the final scrape in prometheus", lambda: last("loadgen_run_finished") == 1, 10, prom.log)
        assert last("loadgen_requests_total") == requests
        assert last("loadgen_request_duration_seconds_count") == tot.overall.latency.total_count == requests
        assert last("loadgen_iterations_total") == tot.iterations
        assert last("loadgen_errors_total") == tot.overall.errors
        assert last("loadgen_received_bytes_total") == tot.overall.bytes_received
        info = prom.query(f"loadgen_run_info{sel}") or prom.query(f"last_over_time(loadgen_run_info{sel}[5m])")
        assert info and info[0]["metric"]["app_version"] == "9.9.9" and info[0]["metric"]["scenario"] == "adhoc"
    finally:
        exporter.stop()
