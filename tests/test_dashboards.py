"""The Grafana dashboards in dashboards/: their structure, and every query run for real.

1. Structure (no servers): each dashboard parses, has a uid and a title, unique
   panel ids and a sane grid; every datasource is one of the provisioned ones
   (by uid and type); every template variable a query or title refers to is
   defined; the provisioning files name the datasources and the dashboards' path.
2. Prometheus: a real run (an open-model scenario against the demo target, with
   injected errors) feeds a real exporter, with real collectors sampling a
   service (the Prometheus process) and the demo's content queue, as ``loadgen
   run --monitor --queue`` wires them. Every metric name in every PromQL
   expression (panels, annotations, variables) must be a series of a real scrape
   of the exporter or the demo target, or a recording rule of
   prometheus/rules/ (whose own expressions are checked the same way); a
   ``_bucket``/``_sum``/``_count`` name must belong to a histogram family. Then a
   real Prometheus, scraping both, evaluates every expression over the run (as a
   range query, as Grafana does) and every panel query must return data.
3. PostgreSQL: real runs of two app versions stored by ``loadgen run --db``
   (with collectors, so resource and queue samples exist) and a ``loadgen
   compare``; every SQL query of the version comparison (variables, panels,
   annotations) runs against the real schema and returns rows, and the columns
   the panels' overrides and transformations name are in the results.

Grafana's substitutions, done here as Grafana does them:

- PromQL: every template variable is multi-valued with "All" = ``.*`` and is
  used only as ``label=~"$var"``; it is replaced by ``.*`` (All selected).
  ``$__rate_interval`` becomes ``5s`` (Grafana: at least 4 × the datasource's
  1 s scrape interval). A variable's ``label_values(selector, label)`` is what
  Grafana asks Prometheus: ``/api/v1/series?match[]=selector``, that label's values.
- SQL (Grafana's PostgreSQL macro engine, after the frontend has interpolated
  the variables and ``$__interval``, here ``1s``):
  ``$__timeFilter(col)`` → ``col BETWEEN 'FROM' AND 'TO'`` (RFC 3339, UTC);
  ``$__timeFrom()`` / ``$__timeTo()`` → ``'FROM'`` / ``'TO'``;
  ``$__timeGroup(col, 1s)`` → ``floor(extract(epoch from col)/1)*1``, and
  ``$__timeGroupAlias`` adds ``AS "time"``. A multi-value variable with "All"
  selected becomes every value its own query returned (run first, with the
  same macros), each single-quoted (``'`` doubled), comma-separated, as
  Grafana's SQL datasources format multi-value variables.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

# The real-Prometheus helpers of the Prometheus tests (same directory: pytest puts it on sys.path).
from test_prometheus import Prometheus, _binary, _config_for_test, _get_json, _wait, promql_metric_names

from loadgen.observe.catalogue import METRICS
from loadgen.observe.exporter import MetricsExporter

REPO = Path(__file__).resolve().parents[1]
DASH_DIR = REPO / "dashboards"
JSON_DIR = DASH_DIR / "json"
DS_FILE = DASH_DIR / "provisioning" / "datasources" / "loadgen.yml"
PROVIDER_FILE = DASH_DIR / "provisioning" / "dashboards" / "loadgen.yml"
RULE_FILES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))
DASHBOARD_PATH = "/var/lib/grafana/dashboards"
EXPECTED = {"api-performance.json", "resource-utilization.json", "version-comparison.json"}

#: Grafana's global variables and SQL macros a query may use (anything else starting "__" is a typo).
BUILTINS = {
    "__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
    "__timeFilter", "__timeFrom", "__timeTo", "__timeGroup", "__timeGroupAlias", "__all",
}  # fmt: skip

#: Exported families the dashboards leave out on purpose (bookkeeping, not something to watch).
NOT_ON_DASHBOARDS = {
    "loadgen_run_start_timestamp_seconds", "loadgen_run_elapsed_seconds", "loadgen_run_finished",
    "loadgen_intervals_total", "loadgen_saturated_intervals_total",
}  # fmt: skip


# -- reading the dashboards ----------------------------------------------------------------


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(JSON_DIR.glob("*.json"))}


def all_panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows included."""
    out = []
    for p in doc.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def variables(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc.get("templating", {}).get("list", [])


def var_query(v: dict[str, Any]) -> str:
    q = v.get("query", "")
    return q.get("query", "") if isinstance(q, dict) else q


def annotations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in doc.get("annotations", {}).get("list", []) if not a.get("builtIn")]


def queries(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, query text, target) of every panel target and annotation."""
    for p in all_panels(doc):
        for t in p.get("targets", []):
            text = t.get("expr") or t.get("rawSql")
            if text:
                yield f"panel {p['id']} {p.get('title')!r} target {t.get('refId')}", text, t
    for a in annotations(doc):
        t = a.get("target") or a
        text = t.get("expr") or t.get("rawSql")
        if text:
            yield f"annotation {a.get('name')!r}", text, t


_VAR_REF = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def var_refs(text: str) -> set[str]:
    """Template variables referred to as $x, ${x}, ${x:fmt} or [[x]]."""
    return {a or b or c for a, b, c in _VAR_REF.findall(text)}


# -- a small YAML reader for the provisioning files (PyYAML is not a dependency) ------------


def _scalar(text: str) -> Any:
    s = text.strip()
    if len(s) >= 2 and s[0] in "'\"" and s[-1] == s[0]:
        return s[1:-1]
    if s in ("true", "false"):
        return s == "true"
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    return s


def parse_yaml(text: str) -> Any:
    """Block mappings, block sequences and plain or quoted scalars: what provisioning files use."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = re.sub(r"\s+#.*$", "", raw).rstrip()
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append((len(line) - len(line.lstrip()), line.strip()))

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                content = lines[i][1][2:]
                if ":" not in content:
                    items.append(_scalar(content))
                    i += 1
                    continue
                lines[i] = (indent + 2, content)  # "- key: v" opens a mapping two columns in
                item, i = block(i, indent + 2)
                items.append(item)
            return items, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            key, sep, rest = lines[i][1].partition(":")
            assert sep, f"not a mapping entry: {lines[i][1]!r}"
            i += 1
            if rest.strip():
                mapping[key.strip()] = _scalar(rest)
            elif i < len(lines) and (lines[i][0] > indent or lines[i][1].startswith("- ") and lines[i][0] == indent):
                mapping[key.strip()], i = block(i, lines[i][0])
            else:
                mapping[key.strip()] = None
        return mapping, i

    doc, end = block(0, lines[0][0])
    assert end == len(lines), f"unparsed YAML from line {lines[end]!r}"
    return doc


def test_parse_yaml():
    doc = parse_yaml(
        "a: 1\n# c\nb:\n  - name: x  # note\n    uid: 'y'\n    j:\n      k: true\n  - name: z\nc:\n  - p\n  - q\n"
    )
    assert doc == {"a": 1, "b": [{"name": "x", "uid": "y", "j": {"k": True}}, {"name": "z"}], "c": ["p", "q"]}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def provisioned_datasources() -> dict[str, str]:
    """uid -> type of the provisioned datasources."""
    doc = parse_yaml(DS_FILE.read_text())
    return {d["uid"]: d["type"] for d in doc["datasources"]}


def prom_substitute(expr: str, rate_interval: str = "5s") -> str:
    """Grafana's interpolation with every variable at All (``.*``); a variable anywhere but in a
    regex matcher's string would be left behind, and fails the caller's check."""
    expr = re.sub(r"\$\{__rate_interval\}|\$__rate_interval\b", rate_interval, expr)
    return re.sub(r'=~\s*"(?:\$\{\w+\}|\$\w+|\[\[\w+\]\])"', '=~".*"', expr)


_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<sel>.*),\s*)?(?P<label>\w+)\)\s*$", re.S)


# -- 1. structure ------------------------------------------------------------------------------


def test_the_three_dashboards_and_their_provisioning_exist():
    assert {p.name for p in JSON_DIR.glob("*.json")} == EXPECTED
    ds = provisioned_datasources()
    assert ds == {"loadgen-prometheus": "prometheus", "loadgen-postgres": "grafana-postgresql-datasource"}
    doc = parse_yaml(DS_FILE.read_text())
    assert doc["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in doc["datasources"]}
    prom, pg = by_uid["loadgen-prometheus"], by_uid["loadgen-postgres"]
    assert prom["url"] == "${PROMETHEUS_URL}" and prom["access"] == "proxy"
    assert prom["jsonData"]["timeInterval"] == "1s"  # the scrape interval of prometheus/prometheus.yml
    assert pg["jsonData"]["sslmode"] == "disable"
    assert pg["jsonData"]["database"] == "${LOADGEN_PG_DATABASE}" and pg["user"] == "${LOADGEN_PG_USER}"
    assert pg["secureJsonData"]["password"] == "${LOADGEN_PG_PASSWORD}"
    # Every environment variable the provisioning needs is documented.
    readme = (DASH_DIR / "README.md").read_text()
    env = {name for value in _strings([doc, parse_yaml(PROVIDER_FILE.read_text())])
           for name in re.findall(r"\$\{?([A-Za-z_]\w*)\}?", value)}
    assert env >= {"PROMETHEUS_URL", "LOADGEN_PG_HOST", "LOADGEN_PG_DATABASE", "LOADGEN_PG_USER"}
    for name in env:
        assert f"`{name}`" in readme, f"dashboards/README.md does not document {name}"

    prov = parse_yaml(PROVIDER_FILE.read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == DASHBOARD_PATH
    assert DASHBOARD_PATH in readme


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dashboard_structure(name):
    doc = json.loads((JSON_DIR / name).read_text())
    others = [d for n, d in load_dashboards().items() if n != name]
    assert doc.get("uid") and len(doc["uid"]) <= 40 and doc["uid"] not in {d["uid"] for d in others}
    assert doc.get("title") and doc["title"] not in {d["title"] for d in others}
    assert 36 <= doc["schemaVersion"] <= 41 and doc.get("id") is None  # importable into Grafana 10 and 11
    assert "loadgen" in doc["tags"]

    panels = all_panels(doc)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    assert len([p for p in panels if p["type"] != "row"]) >= 8

    # The grid: inside 24 columns, no two panels overlapping.
    cells: dict[tuple[int, int], int] = {}
    for p in doc["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, (name, p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{name}: {p['title']!r} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = p["id"]

    # Datasources: the provisioned ones, by uid and type, on every panel, target, variable, annotation.
    ds = provisioned_datasources()

    def check_ds(where: str, ref: Any) -> None:
        assert isinstance(ref, dict) and ref.get("uid") in ds, f"{name} {where}: datasource {ref!r} is not provisioned"
        assert ref.get("type") == ds[ref["uid"]], f"{name} {where}: datasource type {ref.get('type')!r}"

    for p in panels:
        if p["type"] == "row":
            continue
        check_ds(f"panel {p['title']!r}", p.get("datasource"))
        assert p.get("targets"), f"{name}: panel {p['title']!r} has no query"
        for t in p["targets"]:
            check_ds(f"panel {p['title']!r} target {t['refId']}", t.get("datasource", p["datasource"]))
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"{name}: panel {p['title']!r} repeats a refId"
    for v in variables(doc):
        if v["type"] == "query":
            check_ds(f"variable {v['name']}", v.get("datasource"))
    for a in annotations(doc):
        check_ds(f"annotation {a['name']!r}", a.get("datasource"))
    kinds = {p["datasource"]["uid"] for p in panels if p["type"] != "row"}
    assert len(kinds) == 1, f"{name} mixes datasources: {kinds}"

    # Template variables: every reference is defined (or a Grafana built-in), every variable used.
    defined = [v["name"] for v in variables(doc)]
    assert len(defined) == len(set(defined))
    texts = [text for _, text, _ in queries(doc)] + [var_query(v) for v in variables(doc)]
    texts += [p.get("title", "") for p in panels]
    texts += [t.get("legendFormat", "") for p in panels for t in p.get("targets", [])]
    used: set[str] = set()
    for text in texts:
        for ref in var_refs(text):
            if ref.startswith("__"):
                assert ref in BUILTINS, f"{name}: unknown built-in ${ref}"
            else:
                assert ref in defined, f"{name}: ${ref} is used but not defined ({text[:80]!r}...)"
                used.add(ref)
    assert used == set(defined), f"{name}: variables defined but never used: {set(defined) - used}"
    for v in variables(doc):
        assert v["type"] == "query" and v["multi"] and v["includeAll"] and v["refresh"] == 2, v["name"]

    if kinds == {"loadgen-prometheus"}:
        for where, text, t in queries(doc):
            # Variables only in regex matchers (they are multi-valued), then nothing left to substitute.
            left = prom_substitute(text)
            assert "$" not in left and "[[" not in left, f"{name} {where}: a variable outside =~\"...\": {left}"
            assert promql_metric_names(text), f"{name} {where} selects no series"
        for v in variables(doc):
            assert v.get("allValue") == ".*"
            m = _LABEL_VALUES.match(var_query(v))
            assert m and m["sel"], f"{name}: variable {v['name']} is not label_values(selector, label)"
            assert "$" not in prom_substitute(m["sel"])
    else:
        for where, text, t in queries(doc):
            assert t.get("rawQuery") is True and t.get("format") in ("table", "time_series"), f"{name} {where}"
            if t["format"] == "time_series":
                assert "$__timeGroupAlias(" in text and "ORDER BY 1" in text, f"{name} {where}"
            for ref in var_refs(text) - BUILTINS:
                assert f"IN (${ref})" in text, f"{name} {where}: ${ref} is multi-valued: use IN (${ref})"


def test_recording_rules_the_dashboards_use_exist():
    recorded = {m for f in RULE_FILES for m in re.findall(r"^\s*-\s*record:\s*(\S+)", f.read_text(), re.M)}
    used = {n for d in load_dashboards().values() for _, text, t in queries(d) if "expr" in t
            for n in promql_metric_names(text) if ":" in n}
    assert used, "the dashboards use no recording rule"
    assert used <= recorded, f"not recorded in prometheus/rules: {used - recorded}"


# -- 2. PromQL against a real exporter and a real Prometheus ---------------------------------------

SCENARIO = '''
from loadgen import User, task


class DashboardUser(User):
    async def on_start(self) -> None:
        r = await self.client.post("/api/auth/login", json={"username": f"dash-{self.index}", "password": "password"})
        if r.status == 200:
            self.client.headers["Authorization"] = "Bearer " + r.json()["access_token"]

    @task(3)
    async def campaigns(self) -> None:
        await self.client.get("/api/campaigns", params={"limit": 10})

    @task(2)
    async def content(self) -> None:
        r = await self.client.post("/api/content", json={"type": "simple", "prompt": "dashboards"})
        r.check(status=202)

    @task(1)
    async def health(self) -> None:
        await self.client.get("/health")
        if self.random.random() < 0.3:
            raise RuntimeError("a scenario bug: a failed iteration, exported by task")
'''


@dataclass
class Live:
    prom: Prometheus
    exporter: MetricsExporter
    run_id: str
    start: float
    end: float
    exported: list[str]  # the exporter's expositions, during and after the run
    target: str  # the demo target's


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A 4 s open-model run with collectors, exported, scraped by a real Prometheus (shared by the module)."""
    prometheus_bin = _binary("prometheus", "LOADGEN_PROMETHEUS_BIN")
    if prometheus_bin is None:
        pytest.skip("no prometheus binary: set LOADGEN_PROMETHEUS_BIN, put it on PATH, or apt-get install prometheus")
    from loadgen.collectors import ProcessCollectorRunner, parse_monitors, parse_queues
    from loadgen.config import RunConfig
    from loadgen.demo import DemoConfig, ThreadedDemo
    from loadgen.engine.engine import Engine
    from loadgen.scenario import load_scenario

    tmp = tmp_path_factory.mktemp("dashboards")
    scenario_file = tmp / "dashboard_scenario.py"
    scenario_file.write_text(SCENARIO)
    run_id = "dash-" + uuid.uuid4().hex[:8]
    demo = ThreadedDemo.start(DemoConfig(port=0, error_rate=0.1, seed=3, processing_scale=0.5, workers=2))
    exporter = MetricsExporter(run_id=run_id, app_version="9.9.9", test_type="load").start(port=0)
    prom = Prometheus(prometheus_bin, _config_for_test(exporter.port, demo.port), tmp)
    collector = None
    done = threading.Event()
    try:
        prom.wait_ready()
        _wait("the first scrapes", lambda: prom.scalar('sum(up{job=~"loadgen|demo-target"})') == 2, 20, prom.log)
        # As `loadgen run --monitor prometheus=pid:N --queue content=prometheus:URL` wires them.
        collector = ProcessCollectorRunner(
            parse_monitors([f"prometheus=pid:{prom.proc.pid}"]),
            parse_queues([f"content=prometheus:{demo.url}/metrics"]),
            [exporter.observe_samples],
            interval_s=0.5,
        )
        collector.start()
        # Scrapes of our own during the run as well as after it: a queue's processing time or
        # error ratio is only exported while the newest sample has one (jobs were processed).
        scrapes: list[str] = []

        def scrape() -> None:
            while not done.wait(0.5):
                with urllib.request.urlopen(exporter.url, timeout=10) as r:
                    scrapes.append(r.read().decode())

        scraper = threading.Thread(target=scrape, daemon=True)
        start = time.time()
        scraper.start()
        config = RunConfig(host=demo.url, model="open", rate=40, run_time_s=4.0, max_inflight=100, seed=1)
        result = Engine(config, scenario=load_scenario(scenario_file), sinks=[exporter], handle_signals=False).run()
        assert result.recorder.totals.overall.requests > 100
        done.set()
        scraper.join(10)
        collector.stop()
        exporter.finish()
        assert exporter.linger(20), f"prometheus did not scrape after the run{prom.log()}"
        with urllib.request.urlopen(exporter.url, timeout=10) as r:
            scrapes.append(r.read().decode())
        with urllib.request.urlopen(demo.url + "/metrics", timeout=10) as r:
            target = r.read().decode()
        # Every recording rule has evaluated with data.
        for rule in _rules(prom):
            if rule["type"] == "recording":
                _wait(f"recorded series {rule['name']}", lambda n=rule["name"]: prom.query(n), 20, prom.log)
        yield Live(prom, exporter, run_id, start, time.time(), scrapes, target)
    finally:
        done.set()
        if collector is not None:
            collector.stop()
        exporter.stop()
        prom.stop()
        demo.stop()


def _rules(prom: Prometheus) -> list[dict[str, Any]]:
    groups = _get_json(prom.url + "/api/v1/rules")["data"]["groups"]
    return [r for g in groups for r in g["rules"]]


def _families(*texts: str) -> dict[str, tuple[str, str]]:
    """sample name -> (family name as in METRICS, type) of expositions."""
    out = {}
    for f in (f for text in texts for f in text_string_to_metric_families(text)):
        family = f.name + "_total" if f.type == "counter" else f.name  # the parser strips _total
        for s in f.samples:
            out[s.name] = (family, f.type)
    return out


def _prom_expressions() -> list[tuple[str, str, str]]:
    """(dashboard, where, expr) of every PromQL expression: panels, annotations, variable selectors."""
    out = []
    for name, doc in load_dashboards().items():
        if doc["templating"]["list"][0]["datasource"]["uid"] != "loadgen-prometheus":
            continue
        out += [(name, where, text) for where, text, _ in queries(doc)]
        for v in variables(doc):
            m = _LABEL_VALUES.match(var_query(v))
            if m and m["sel"]:
                out.append((name, f"variable {v['name']}", m["sel"]))
    return out


def test_promql_names_only_series_that_exist(live):
    exported = _families(*live.exported)
    target = _families(live.target)
    rules = {r["name"]: r["query"] for r in _rules(live.prom) if r["type"] == "recording"}
    # The collectors' series are there: a service and the demo's queue were really sampled.
    assert {"loadgen_service_cpu_percent", "loadgen_service_network_sent_bytes_total",
            "loadgen_queue_length", "loadgen_queue_published_per_second"} <= set(exported)
    assert 'service="prometheus"' in live.exported[-1] and 'queue="content"' in live.exported[-1]

    def check(where: str, expr: str, depth: int = 0) -> set[str]:
        families = set()
        for name in promql_metric_names(expr):
            if ":" in name:
                assert name in rules, f"{where}: {name} is not a recording rule of prometheus/rules"
                assert depth < 3
                families |= check(f"{where} -> rule {name}", rules[name], depth + 1)
                continue
            assert name in exported or name in target, (
                f"{where}: {name} is in neither the exporter's nor the demo target's scrape"
            )
            family, mtype = exported.get(name) or target[name]
            suffix = name[len(family):]
            if mtype == "histogram":
                assert suffix in ("_bucket", "_sum", "_count"), f"{where}: {name} of histogram {family}"
            if name.endswith(("_bucket", "_sum", "_count")) and suffix:
                assert mtype == "histogram", f"{where}: {name} is not a series of a histogram family"
            if name.startswith("loadgen_"):
                assert family in METRICS, f"{where}: {family} is not in loadgen.observe.catalogue.METRICS"
                assert METRICS[family][0] == mtype, f"{where}: {family} is a {mtype}, METRICS says {METRICS[family][0]}"
                families.add(family)
        return families

    shown: set[str] = set()
    for dash, where, expr in _prom_expressions():
        shown |= check(f"{dash} {where}", expr)
    missing = set(METRICS) - NOT_ON_DASHBOARDS - shown
    assert not missing, f"exported families on no dashboard (add them, or to NOT_ON_DASHBOARDS): {missing}"


def _query_range(prom: Prometheus, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    qs = urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"})
    try:
        doc = _get_json(f"{prom.url}/api/v1/query_range?{qs}")
    except urllib.error.HTTPError as exc:
        pytest.fail(f"prometheus rejected {expr!r}: {exc.read().decode(errors='replace')}")
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_every_promql_expression_evaluates_with_data(live):
    start, end = live.start - 2, time.time()
    legends = {(n, w): t.get("legendFormat", "") for n, d in load_dashboards().items() for w, _, t in queries(d)}
    failures = []
    for dash, where, expr in _prom_expressions():
        result = _query_range(live.prom, prom_substitute(expr), start, end)
        if where.startswith("annotation"):
            continue  # they mark rare events (a saturated generator): evaluating is enough
        finite = [v for s in result for _, v in s["values"] if math.isfinite(float(v))]
        if not finite:
            failures.append(f"{dash} {where}: {expr}")
        # A legend's {{label}} is a label of every series the query returns.
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legends.get((dash, where), "")):
            assert all(label in s["metric"] for s in result), f"{dash} {where}: legend {{{{{label}}}}} not a label"
    assert not failures, "expressions with no data over the run:\n" + "\n".join(failures)
    # Spot checks that the panels show this run's real numbers.
    (req,) = _query_range(live.prom, prom_substitute(
        'sum(rate(loadgen_requests_total{run_id=~"$run_id"}[$__rate_interval]))'), live.start, live.end)
    assert max(float(v) for _, v in req["values"]) > 10
    classes = {s["metric"]["status_class"] for s in _query_range(live.prom, prom_substitute(
        'sum by (status_class) (rate(loadgen_requests_total{name=~"$name"}[$__rate_interval]))'), start, end)}
    assert {"2xx", "5xx"} <= classes  # errors were injected


def test_variable_queries_list_the_run(live):
    """label_values(selector, label) as Grafana runs it: the series API over the time range."""
    expected = {"run_id": {live.run_id}, "app_version": {"9.9.9"}, "test_type": {"load"},
                "name": {"/api/campaigns", "/api/content", "/health", "/api/auth/login"},
                "service": {"prometheus", "generator"}, "queue": {"content"}}
    for name, doc in load_dashboards().items():
        if doc["templating"]["list"][0]["datasource"]["uid"] != "loadgen-prometheus":
            continue
        for v in variables(doc):
            m = _LABEL_VALUES.match(var_query(v))
            qs = urllib.parse.urlencode({"match[]": prom_substitute(m["sel"]), "start": f"{live.start - 2:.3f}",
                                         "end": f"{time.time():.3f}"})
            series = _get_json(f"{live.prom.url}/api/v1/series?{qs}")["data"]
            values = {s[m["label"]] for s in series if m["label"] in s}
            assert values >= expected[v["name"]], f"{name}: variable {v['name']} lists {values}"


# -- 3. SQL against the real schema ------------------------------------------------------------


def _loadgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=120)


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sql_interpolate(sql: str, values: dict[str, list[str]], t_from: dt.datetime, t_to: dt.datetime,
                    interval: str = "1s") -> str:
    """Grafana's frontend interpolation, then its PostgreSQL macro engine (see the module docstring)."""
    sql = re.sub(r"\$\{__interval\}|\$__interval\b", interval, sql)

    def quote(name: str) -> str:
        assert values[name], f"variable {name} has no values"
        return ",".join("'" + v.replace("'", "''") + "'" for v in values[name])

    def variable(m: re.Match) -> str:
        name = m[1] or m[2] or m[3]
        return m.group(0) if name.startswith("__") else quote(name)  # macros are the backend's

    sql = _VAR_REF.sub(variable, sql)
    frm, to = _rfc3339(t_from), _rfc3339(t_to)

    def macro(m: re.Match) -> str:
        name, args = m[1], [a.strip() for a in m[2].split(",")]
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{frm}' AND '{to}'"
        if name == "__timeFrom":
            return f"'{frm}'"
        if name == "__timeTo":
            return f"'{to}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            m2 = re.fullmatch(r"'?(\d+)(ms|s|m|h|d)'?", args[1])
            assert m2, f"interval {args[1]!r}"
            secs = int(m2[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m2[2]]
            secs_text = f"{secs:g}"
            group = f"floor(extract(epoch from {args[0]})/{secs_text})*{secs_text}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        raise AssertionError(f"unknown macro ${name}")

    sql = re.sub(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)", macro, sql)
    assert "$" not in sql, f"uninterpolated: {sql}"
    return sql


def test_sql_interpolate():
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    sql = sql_interpolate("SELECT $__timeGroupAlias(ts, $__interval), x FROM t WHERE $__timeFilter(ts) "
                          "AND v IN ($v) AND w IN (${w}) AND ts < $__timeTo()",
                          {"v": ["a", "o'k"], "w": ["1"]}, t0, t0 + dt.timedelta(hours=1), "1m")
    assert sql == ("SELECT floor(extract(epoch from ts)/60)*60 AS \"time\", x FROM t WHERE ts BETWEEN "
                   "'2026-01-02T03:04:05.000000Z' AND '2026-01-02T04:04:05.000000Z' AND v IN ('a','o''k') "
                   "AND w IN ('1') AND ts < '2026-01-02T04:04:05.000000Z'")


def _fetch_all(url: str, sqls: list[str]) -> list[Any]:
    import asyncpg

    async def go() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            out = []
            for sql in sqls:
                try:
                    out.append(await conn.fetch(sql))
                except asyncpg.PostgresError as exc:
                    out.append(exc)
            return out
        finally:
            await conn.close()

    return asyncio.run(go())


def test_version_comparison_sql_runs_on_stored_runs(pg_url, start_demo, tmp_path):
    demo = start_demo(seed=4, processing_scale=0.5)
    url = demo.url + "/api/campaigns"
    common = ["--rate", "50", "--run-time", "2s", "--db", pg_url, "-q", "--monitor", f"demo=pid:{os.getpid()}",
              "--queue", f"content=prometheus:{demo.url}/metrics", "--collect-interval", "0.25s"]
    t_from = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    for version, env in (("1.0.0", "ci"), ("1.0.0", "ci"), ("1.1.0", "ci"), ("1.1.0", None)):
        p = _loadgen("run", "--url", url, "--app-version", version, *common, *(["--environment", env] if env else []))
        assert p.returncode == 0, p.stdout + p.stderr
    p = _loadgen("compare", "--baseline-version", "1.0.0", "--candidate-version", "1.1.0", "--db", pg_url)
    assert p.returncode in (0, 1), p.stdout + p.stderr  # 1: a regression, still a stored comparison
    t_to = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)

    doc = json.loads((JSON_DIR / "version-comparison.json").read_text())
    # The variables first, in order (a later one may use an earlier one), "All" of each selected.
    values: dict[str, list[str]] = {}
    for v in variables(doc):
        (rows,) = _fetch_all(pg_url, [sql_interpolate(var_query(v), values, t_from, t_to)])
        assert not isinstance(rows, Exception), f"variable {v['name']}: {rows}"
        assert rows and all(len(r) == 1 for r in rows), f"variable {v['name']} returned {rows}"
        values[v["name"]] = [str(r[0]) for r in rows]
    assert values["app_version"] == ["1.0.0", "1.1.0"]  # oldest first
    assert sorted(values["environment"]) == ["(none)", "ci"] and values["test_type"] == ["load"]
    assert values["scenario"] == ["GET /api/campaigns"]  # the identity: method and path, not the address

    found = list(queries(doc))
    panel_of = {id(t): p for p in all_panels(doc) for t in p.get("targets", [])}
    results = _fetch_all(pg_url, [sql_interpolate(text, values, t_from, t_to) for _, text, _ in found])
    by_title: dict[str, list[Any]] = {}
    for (where, text, target), rows in zip(found, results):
        assert not isinstance(rows, Exception), f"{where}: {type(rows).__name__}: {rows}\n{text}"
        assert rows, f"{where} returned no rows"
        columns = list(rows[0].keys())
        if target.get("format") == "time_series":
            assert "time" in columns and "metric" in columns, f"{where}: {columns}"
            times = [float(r["time"]) for r in rows]
            assert times == sorted(times), f"{where}: not ordered by time"
            for c in columns:
                if c not in ("time", "metric"):
                    assert all(r[c] is None or isinstance(r[c], (int, float)) or hasattr(r[c], "is_finite")
                               for r in rows), f"{where}: {c} is not numeric"
        panel = panel_of.get(id(target))
        if panel is None:  # an annotation
            assert {"time", "text", "tags"} <= set(columns), f"{where}: {columns}"
            continue
        by_title[panel["title"]] = rows
        # What the panel's settings name must be a column of its result.
        for o in panel["fieldConfig"]["overrides"]:
            matcher = o["matcher"]
            if matcher["id"] == "byName":
                assert matcher["options"] in columns, f"{where}: override for a missing column {matcher['options']!r}"
            elif matcher["id"] == "byRegexp":
                assert any(re.search(matcher["options"], c) for c in columns), f"{where}: {matcher['options']!r}"
        for tr in panel.get("transformations", []):
            if tr["id"] == "groupingToMatrix":
                o = tr["options"]
                assert {o["columnField"], o["rowField"], o["valueField"]} <= set(columns), f"{where}: {columns}"
        if panel["type"] == "barchart" and "xField" in panel["options"]:
            assert panel["options"]["xField"] in columns
        fields = panel.get("options", {}).get("reduceOptions", {}).get("fields", "")
        if fields.startswith("/"):
            assert any(re.search(fields.strip("/"), c) for c in columns), f"{where}: {fields}"

    # The numbers are the stored runs'.
    summary = by_title["Summary by version"]
    assert [(r["version"], r["runs"]) for r in summary] == [("1.0.0", 2), ("1.1.0", 2)]
    assert all(r["requests"] >= 80 and r["p95"] > 0 and r["rps"] > 20 for r in summary)
    services = {(r["version"], r["service"]) for r in by_title["Services by version"]}
    assert services == {(v, s) for v in ("1.0.0", "1.1.0") for s in ("demo", "generator")}
    assert {r["queue"] for r in by_title["Queues by version"]} == {"content"}
    (latest,) = by_title["Latest comparisons"]
    assert (latest["candidate version"], latest["baseline version"], latest["baseline runs"]) == ("1.1.0", "1.0.0", 2)
    assert latest["verdict"] in ("pass", "regression")
    assert {r["metric"] for r in by_title["Rows of the latest comparisons"]} >= {"error_rate", "throughput"}
    assert {r["metric"] for r in by_title["p95 latency per run"]} == {
        f"{r['version']} · {r['run']}" for r in by_title["Runs"]
    }
