"""The Prometheus exporter: exact counts from real runs over HTTP, buckets, windows, samples, errors."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from loadgen.engine import histogram as hdr
from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.errors import UsageError
from loadgen.observe.catalogue import CONST_LABELS, DURATION_BUCKETS_S, METRICS
from loadgen.observe.exporter import MetricsExporter
from loadgen.engine.recorder import EndpointInterval, IntervalSnapshot, Recorder
from loadgen.samples import QueueSample, ResourceSample
from loadgen.scenario import load_scenario

CONST = {"run_id": "run-1", "app_version": "1.2.3", "test_type": "load"}


# -- helpers ------------------------------------------------------------------------


def scrape(url: str) -> dict[str, Any]:
    """GET /metrics over HTTP; the parsed families by name."""
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict[str, Any], sample_name: str, **labels: str) -> list[Any]:
    out = []
    for f in fams.values():
        for s in f.samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(s)
    return out


def total(fams: dict[str, Any], sample_name: str, **labels: str) -> float:
    return sum(s.value for s in samples(fams, sample_name, **labels))


def window_quantiles_us(hists: list, percents=(50.0, 95.0, 99.0)) -> list[int]:
    """What the quantile gauges must say: hdr percentiles of the merged window, clamped to min/max."""
    merged = hdr.new_histogram()
    for h in hists:
        hdr.merge(merged, h)
    lo, hi = merged.min_value, merged.max_value
    return [min(max(hdr.percentile_us(merged, p), lo), hi) for p in percents]


def expected_buckets(hist, bounds_s=DURATION_BUCKETS_S) -> list[int]:
    """Reference bucket counts: cumulative HDR counts through each bound's sub-bucket."""
    cum = np.cumsum(np.ctypeslib.as_array(hist.counts).astype(np.int64))
    # Histograms grow on demand: past their top every count is below the bound.
    return [int(cum[min(hist.get_counts_array_index(round(b * 1e6)), cum.size - 1)]) for b in bounds_s]


def endpoint(name: str, values_us: Any, *, method: str = "GET", status: dict | None = None) -> EndpointInterval:
    ei = EndpointInterval(method, name)
    hdr.record_us(ei.latency, np.asarray(values_us, dtype=np.int64))
    ei.requests = len(values_us)
    ei.status_codes = status if status is not None else {200: len(values_us)}
    return ei


def snapshot(i: int, *eps: EndpointInterval, **kw: Any) -> IntervalSnapshot:
    overall = EndpointInterval("ALL", "total")
    for ep in eps:
        overall.merge(ep)
    return IntervalSnapshot(
        index=i,
        start_s=float(i),
        end_s=float(i + 1),
        endpoints={f"{e.method} {e.name}": e for e in eps},
        overall=overall,
        **kw,
    )


@dataclass
class FakeRun:
    """A run as sinks see it (loadgen.sinks.RunView), for snapshots made by hand."""

    model: str = "open"
    config: RunConfig = field(default_factory=lambda: RunConfig(model="open", rate=1))
    scenario: None = None
    adhoc: None = None
    recorder: Recorder = field(default_factory=Recorder)
    warnings: list[str] = field(default_factory=list)
    stopping: bool = False

    def stop(self) -> None:
        self.stopping = True


OPEN_RUN = FakeRun()


@pytest.fixture
def exporter():
    made: list[MetricsExporter] = []

    def make(**kw: Any) -> MetricsExporter:
        kw = {**CONST, **kw}
        ex = MetricsExporter(**kw)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.stop()


# -- real runs against the demo target ------------------------------------------------


def test_live_run_exports_exactly_what_the_run_recorded(start_demo, exporter):
    demo = start_demo()
    ex = exporter().start(port=0)
    snaps: list[IntervalSnapshot] = []
    during: list[float] = []
    stop = threading.Event()

    def scraper() -> None:  # scrapes over real HTTP while the run goes on
        while not stop.is_set():
            during.append(total(scrape(ex.url), "loadgen_requests_total"))
            stop.wait(0.2)

    t = threading.Thread(target=scraper, daemon=True)
    t.start()
    config = RunConfig(model="open", rate=300, run_time_s=2.5, max_inflight=200)
    engine = Engine(
        config,
        adhoc=AdHocRequest(demo.url + "/health?x=1"),
        sinks=[ex, lambda s, e: snaps.append(s)],
        handle_signals=False,
    )
    result = engine.run()
    ex.finish()
    stop.set()
    t.join(10)

    tot = result.recorder.totals
    n = tot.overall.requests
    assert tot.iterations + tot.dropped_iterations == 750 and n == tot.iterations > 0
    # Scrapes during the run saw a counter that only grew, and not yet the end.
    assert len(during) >= 5 and during == sorted(during) and during[0] < n

    fams = scrape(ex.url)
    assert total(fams, "loadgen_requests_total") == n
    assert total(fams, "loadgen_requests_total", name="/health", method="GET", status_class="2xx") == n
    assert total(fams, "loadgen_request_duration_seconds_count") == n
    assert total(fams, "loadgen_request_duration_seconds_bucket", le="+Inf") == n
    assert total(fams, "loadgen_iterations_total") == tot.iterations == n
    assert total(fams, "loadgen_dropped_iterations_total") == tot.dropped_iterations
    assert total(fams, "loadgen_sent_bytes_total") == tot.overall.bytes_sent > 0
    assert total(fams, "loadgen_received_bytes_total") == tot.overall.bytes_received > 0
    assert total(fams, "loadgen_intervals_total") == tot.intervals == len(snaps)
    assert total(fams, "loadgen_run_finished") == 1
    assert total(fams, "loadgen_scheduler_lag_seconds_count") == tot.lag.total_count > 0
    assert total(fams, "loadgen_target_arrival_rate") in (0.0, 300.0)  # 0 once the schedule has ended
    assert 0 < total(fams, "loadgen_achieved_arrival_rate") <= 400
    assert total(fams, "loadgen_generator_memory_bytes") > 1e6
    assert samples(fams, "loadgen_generator_cpu_percent") and samples(fams, "loadgen_generator_saturated")
    assert "loadgen_errors" not in fams  # no error happened

    # Buckets: the run's HDR histogram, cumulated through each bound.
    hist = tot.endpoints["GET /health"].latency
    got = [
        total(fams, "loadgen_request_duration_seconds_bucket", le=le)
        for le in [floatToGoString(b) for b in DURATION_BUCKETS_S]
    ]
    assert got == expected_buckets(hist)
    assert total(fams, "loadgen_request_duration_seconds_sum") == pytest.approx(hdr.mean_us(hist) * n / 1e6, rel=1e-9)

    # Quantile gauges: exactly the HDR percentiles of the last 10 intervals merged.
    key = "GET /health"
    want = window_quantiles_us([s.endpoints[key].latency for s in snaps[-10:] if key in s.endpoints])
    got_q = [total(fams, "loadgen_request_duration_quantile_seconds", quantile=q) for q in ("0.5", "0.95", "0.99")]
    assert [round(v * 1e6) for v in got_q] == want

    # Constant labels on every series; run info names the run without the URL's path.
    for f in fams.values():
        for s in f.samples:
            assert {k: s.labels.get(k) for k in CONST_LABELS} == CONST, s
    (info,) = samples(fams, "loadgen_run_info")
    assert info.labels["scenario"] == "adhoc" and info.labels["model"] == "open"
    assert info.labels["host"] == demo.url and "?" not in info.labels["host"]
    assert ex.scrapes >= len(during) + 1


SCENARIO = """
from loadgen import User, task

class Mixed(User):
    @task(3)
    async def campaign(self):
        cid = self.random.randint(1, 20)
        await self.client.get(f"/api/campaigns/{cid}", name="/api/campaigns/[id]")

    @task
    async def missing(self):
        await self.client.get("/api/campaigns/999999", name="/api/campaigns/missing", expect=404)

    @task
    async def unexpected(self):
        await self.client.get("/no/such/page", name="/no/such/page")

    @task
    async def refused(self):
        await self.client.get("http://127.0.0.1:{dead}/x", name="refused")

    @task
    async def checked(self):
        r = await self.client.post("/api/campaigns", json={{}}, name="POST campaigns")
        r.check(status=201)
"""


def test_scenario_run_counts_by_name_status_class_and_error_kind(start_demo, exporter, tmp_path):
    demo = start_demo(error_rate=0.3, seed=7)
    with socket.socket() as s:  # a port nobody listens on: connect errors
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    path = tmp_path / "mixed.py"
    path.write_text(SCENARIO.replace("{dead}", str(dead)).replace("{{}}", "{}"))
    ex = exporter().start(port=0)
    config = RunConfig(host=demo.url, model="open", rate=200, run_time_s=2.0, seed=3, max_inflight=100)
    result = Engine(config, scenario=load_scenario(path), sinks=[ex], handle_signals=False).run()
    ex.finish()
    fams = scrape(ex.url)
    tot = result.recorder.totals

    assert total(fams, "loadgen_requests_total") == tot.overall.requests > 300
    names = {s.labels["name"] for s in samples(fams, "loadgen_requests_total")}
    assert names == {"/api/campaigns/[id]", "/api/campaigns/missing", "/no/such/page", "refused", "POST campaigns"}
    for key, ep in tot.endpoints.items():
        lbl = {"name": ep.name, "method": ep.method}
        assert total(fams, "loadgen_requests_total", **lbl) == ep.requests, key
        by_class: dict[str, int] = {}
        for code, n in ep.status_codes.items():
            by_class[f"{code // 100}xx"] = by_class.get(f"{code // 100}xx", 0) + n
        no_response = ep.requests - sum(ep.status_codes.values())
        if no_response:
            by_class["error"] = no_response
        for cls, n in by_class.items():
            assert total(fams, "loadgen_requests_total", status_class=cls, **lbl) == n, (key, cls)
        for kind, n in ep.errors_by_kind.items():
            assert total(fams, "loadgen_errors_total", kind=kind, **lbl) == n, (key, kind)
        assert total(fams, "loadgen_errors_total", **lbl) == ep.errors
        # The histogram counts requests with a latency: refused connections have none.
        assert total(fams, "loadgen_request_duration_seconds_count", **lbl) == ep.latency.total_count
    refused = {"name": "refused", "method": "GET"}
    n_refused = tot.endpoints["GET refused"].requests
    assert total(fams, "loadgen_requests_total", status_class="error", **refused) == n_refused > 0
    assert total(fams, "loadgen_errors_total", kind="connect", **refused) > 0
    assert total(fams, "loadgen_requests_total", name="/api/campaigns/[id]", status_class="5xx") > 0  # injected
    assert total(fams, "loadgen_errors_total", kind="http_5xx") > 0
    assert total(fams, "loadgen_errors_total", kind="http_4xx", name="/no/such/page") > 0
    assert total(fams, "loadgen_errors_total", name="/api/campaigns/missing", kind="http_4xx") == 0  # expected 404
    assert total(fams, "loadgen_requests_total", name="/api/campaigns/missing", status_class="4xx") > 0
    (info,) = samples(fams, "loadgen_run_info")
    assert info.labels["scenario"] == "mixed.py" and info.labels["host"] == demo.url


def test_closed_model_has_no_open_model_series(start_demo, exporter):
    demo = start_demo()
    ex = exporter(test_type="soak").start(port=0)
    config = RunConfig(model="closed", users=2, spawn_rate=100, run_time_s=1.2)
    result = Engine(config, adhoc=AdHocRequest(demo.url + "/health"), sinks=[ex], handle_signals=False).run()
    fams = scrape(ex.url)
    assert total(fams, "loadgen_requests_total") == result.recorder.totals.overall.requests > 0
    assert total(fams, "loadgen_run_finished") == 0  # finish() not called yet
    for name in ("loadgen_target_arrival_rate", "loadgen_achieved_arrival_rate", "loadgen_scheduler_lag_seconds"):
        assert name not in fams
    assert {s.labels["test_type"] for f in fams.values() for s in f.samples} == {"soak"}


# -- buckets and windows, from synthetic snapshots --------------------------------------


def test_buckets_count_values_at_or_below_each_bound():
    rng = np.random.default_rng(5)
    # Values in µs: many exactly at bounds, just above them, and a lognormal spread.
    edges = np.array([round(b * 1e6) for b in DURATION_BUCKETS_S])
    values = np.concatenate([edges, edges + 1, edges - 1, rng.lognormal(np.log(20_000), 1.5, 20_000).astype(np.int64)])
    values = np.clip(values, 1, 100_000_000)
    ex = MetricsExporter(**CONST)
    halves = np.array_split(values, 2)
    for i, part in enumerate(halves):
        ex(snapshot(i, endpoint("/a", part)), OPEN_RUN)
    fams = {f.name: f for f in text_string_to_metric_families(ex.render().decode())}
    got = [total(fams, "loadgen_request_duration_seconds_bucket", le=floatToGoString(b)) for b in DURATION_BUCKETS_S]
    full = hdr.new_histogram()
    hdr.record_us(full, values)
    assert got == expected_buckets(full)
    # Against the raw values: exact up to 2.047 ms, where HDR keeps every µs ...
    for b, n in zip(edges, got):
        brute = int(np.count_nonzero(values <= b))
        if b < 2048:
            assert n == brute
        else:  # ... and above, off only by values HDR cannot tell from the bound (3 significant figures)
            same = int(np.count_nonzero((values > b) & (values <= full.get_highest_equivalent_value(b))))
            assert brute <= n <= brute + same
    assert total(fams, "loadgen_request_duration_seconds_count") == len(values)
    assert total(fams, "loadgen_request_duration_seconds_sum") == pytest.approx(values.sum() / 1e6, rel=1e-3)


def test_quantile_gauges_cover_a_sliding_window_of_intervals():
    rng = np.random.default_rng(9)
    ex = MetricsExporter(**CONST, quantile_window=4)
    hists = []
    for i in range(9):
        # Each interval slower than the last, so the window's position shows in the quantiles.
        ep = endpoint("/slow", rng.integers(1000 * (i + 1), 3000 * (i + 1), 200 + i))
        hists.append(ep.latency)
        ex(snapshot(i, ep), OPEN_RUN)
        fams = {f.name: f for f in text_string_to_metric_families(ex.render().decode())}
        got = [total(fams, "loadgen_request_duration_quantile_seconds", quantile=q) for q in ("0.5", "0.95", "0.99")]
        assert [round(v * 1e6) for v in got] == window_quantiles_us(hists[-4:]), i
    # Intervals without requests slide the old ones out; an empty window has no gauges.
    for i in range(9, 13):
        ex(snapshot(i), OPEN_RUN)
        fams = {f.name: f for f in text_string_to_metric_families(ex.render().decode())}
        got = [total(fams, "loadgen_request_duration_quantile_seconds", quantile=q) for q in ("0.5", "0.95", "0.99")]
        live = hists[i - 3 : 9]
        if live:
            assert [round(v * 1e6) for v in got] == window_quantiles_us(live)
        else:
            assert not samples(fams, "loadgen_request_duration_quantile_seconds")
    assert total(fams, "loadgen_request_duration_seconds_count") == sum(h.total_count for h in hists)


def test_names_beyond_the_cap_fold_into_other():
    ex = MetricsExporter(**CONST, max_endpoints=2, quantile_window=3)
    rng = np.random.default_rng(1)
    eps = [endpoint(f"/p{k}", rng.integers(100, 50_000, 100)) for k in range(5)]
    ex(snapshot(0, *eps), OPEN_RUN)
    fams = {f.name: f for f in text_string_to_metric_families(ex.render().decode())}
    names = {s.labels["name"] for s in samples(fams, "loadgen_requests_total")}
    assert names == {"/p0", "/p1", "__other__"}
    assert total(fams, "loadgen_requests_total", name="__other__") == 300
    got = [
        total(fams, "loadgen_request_duration_quantile_seconds", name="__other__", quantile=q)
        for q in ("0.5", "0.95", "0.99")
    ]
    assert [round(v * 1e6) for v in got] == window_quantiles_us([e.latency for e in eps[2:]])


# -- samples, exposition, serving --------------------------------------------------------


def test_collector_samples_are_exposed(exporter):
    ex = exporter().start(port=0)
    now = time.time()
    batch = [
        ResourceSample(now - 1, "api", (10,), 10.0, 100, 2, 1, 2, 3, 4),  # older: replaced below
        ResourceSample(now, "api", (10, 11), 150.5, 200_000_000, 12, 4096, 8192, 1000, 2000),
        ResourceSample(now, "db", (20,), 30.0, 50_000_000, 4, None, None, 70, 80, net_scope="system"),
        QueueSample(now, "content", "prometheus", length=5, processing_time_s=0.2, published_per_s=10.0,
                    consumed_per_s=9.5, error_rate=0.01, backlog_age_s=1.5),
        QueueSample(now, "mail", "redis", length=0),
    ]  # fmt: skip
    t = threading.Thread(target=ex.observe_samples, args=(batch,))  # collectors call from their own threads
    t.start()
    t.join()
    fams = scrape(ex.url)
    api, db = {"service": "api"}, {"service": "db"}
    assert total(fams, "loadgen_service_cpu_percent", **api) == 150.5
    assert total(fams, "loadgen_service_memory_bytes", **api) == 200_000_000
    assert total(fams, "loadgen_service_threads", **api) == 12
    assert total(fams, "loadgen_service_disk_read_bytes_total", **api) == 4096
    assert total(fams, "loadgen_service_disk_write_bytes_total", **api) == 8192
    assert total(fams, "loadgen_service_network_sent_bytes_total", scope="process", **api) == 1000
    assert total(fams, "loadgen_service_network_received_bytes_total", scope="process", **api) == 2000
    assert total(fams, "loadgen_service_network_received_bytes_total", scope="system", **db) == 80
    assert not samples(fams, "loadgen_service_disk_read_bytes_total", **db)  # unknown: no series
    assert fams["loadgen_service_disk_read_bytes"].type == "counter"
    q = {"queue": "content", "source": "prometheus"}
    assert total(fams, "loadgen_queue_length", **q) == 5
    assert total(fams, "loadgen_queue_processing_seconds", **q) == 0.2
    assert total(fams, "loadgen_queue_published_per_second", **q) == 10.0
    assert total(fams, "loadgen_queue_consumed_per_second", **q) == 9.5
    assert total(fams, "loadgen_queue_error_ratio", **q) == 0.01
    assert total(fams, "loadgen_queue_backlog_age_seconds", **q) == 1.5
    assert total(fams, "loadgen_queue_length", queue="mail", source="redis") == 0
    assert not samples(fams, "loadgen_queue_backlog_age_seconds", queue="mail")
    for f in fams.values():
        for s in f.samples:
            assert {k: s.labels.get(k) for k in CONST_LABELS} == CONST
    with pytest.raises(TypeError):
        ex.observe_samples([object()])  # type: ignore[list-item]


def test_registry_exposition_matches_the_endpoint_and_names_follow_conventions(exporter):
    ex = exporter(info={"scenario": "x.py", "host": "http://user:pw@h:1/p?q=1", "note": 'a "quoted"\\ value\n'})
    rng = np.random.default_rng(2)
    ep = endpoint("/a", rng.integers(100, 9000, 50), status={200: 40, 503: 10})
    ep.errors_by_kind = {"http_5xx": 10}
    lag = hdr.new_histogram()
    hdr.record_us(lag, rng.integers(0, 5000, 50))
    snap = snapshot(0, ep, iterations=50, users=3, lag=lag, target_rate=50.0, cpu_percent=12.0)
    snap.failed_iterations = {"ApiUser.read": 2}  # every family is shown
    ex(snap, OPEN_RUN)
    ex.observe_samples(
        [ResourceSample(1.0, "svc", (1,), 1.0, 2, 3, 4, 5, 6, 7), QueueSample(1.0, "q", "redis", 1, 2, 3, 4, 5, 6)]
    )
    ex.finish()
    ours = {f.name: f for f in text_string_to_metric_families(ex.render().decode())}
    theirs = {f.name: f for f in text_string_to_metric_families(generate_latest(ex.registry).decode())}
    assert ours == theirs
    assert {f.name + ("_total" if f.type == "counter" else "") for f in ours.values()} == set(METRICS)  # all shown
    (info,) = samples(ours, "loadgen_run_info")
    assert info.labels["note"] == 'a "quoted"\\ value\n'  # escaped and parsed back
    assert info.labels["host"] == "http://h:1"
    for name, f in ours.items():
        assert name.startswith("loadgen_"), name
        full = name + "_total" if f.type == "counter" else name
        mtype, labels, doc = METRICS[full]  # every family is in the catalogue, as typed and documented there
        assert (f.type, f.documentation) == (mtype, doc)
        for s in f.samples:
            own = set(s.labels) - set(CONST_LABELS) - ({"le"} if s.name.endswith("_bucket") else set())
            assert own == set(labels) or (name == "loadgen_run_info" and own >= set(labels)), (s, labels)
        if f.type == "counter":
            assert all(s.name == full for s in f.samples)
        if f.type == "histogram":
            assert name.endswith("_seconds")


def test_port_in_use_is_a_one_sentence_usage_error(exporter):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UsageError) as err:
            exporter().start(port=port, addr="127.0.0.1")
    assert str(err.value) == f"--metrics-port {port} is in use on 127.0.0.1"
    with pytest.raises(UsageError, match="not a port number"):
        exporter().start(port=70000)
    with pytest.raises(UsageError, match="--metrics-addr"):
        exporter().start(port=0, addr="192.0.2.123")  # TEST-NET-1: not this machine's


def test_linger_serves_until_a_scrape_after_the_run(exporter):
    ex = exporter().start(port=0)
    url = ex.url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    scrape(url)  # a scrape before the end does not count
    assert ex.linger(0.2) is False
    threading.Timer(0.3, scrape, args=(url,)).start()
    assert ex.linger(30) is True  # returned once the scraper came, long before 30 s
    ex.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
    ex.stop()  # idempotent


def test_the_other_paths_of_the_endpoint(exporter):
    ex = exporter().start(port=0)
    base = ex.url.removesuffix("/metrics")
    with urllib.request.urlopen(base + "/", timeout=5) as r:
        assert b"/metrics" in r.read()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base + "/nope", timeout=5)
    assert err.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(ex.url, data=b"x", method="POST"), timeout=5)
    assert err.value.code == 405


def test_generator_stalls_and_failed_iterations_are_exported(exporter):
    # Issue 10 (symptoms 6 and 13): the loop's stalls and failed iterations reach /metrics.
    ex = exporter()
    stall = hdr.new_histogram()
    hdr.record_ns(stall, [2_000_000, 250_000_000])
    s0 = snapshot(0, endpoint("/a", [1000], status={200: 1}))
    s0.stall, s0.stalled, s0.stall_cause = stall, True, "a blocking call in ApiUser.read"
    s0.failed_iterations = {"ApiUser.on_start": 3, "ApiUser.read": 1}
    ex(s0, OPEN_RUN)
    s1 = snapshot(1, endpoint("/a", [1000], status={200: 1}))
    s1.failed_iterations = {"ApiUser.read": 2}
    ex(s1, OPEN_RUN)
    fams = {f.name: f for f in text_string_to_metric_families(ex.render().decode())}
    assert total(fams, "loadgen_stalled_intervals_total") == 1
    assert total(fams, "loadgen_generator_stalled") == 0  # the last interval did not stall
    assert total(fams, "loadgen_event_loop_stall_seconds") == 0.0
    assert total(fams, "loadgen_failed_iterations_total", task="ApiUser.read") == 3
    assert total(fams, "loadgen_failed_iterations_total", task="ApiUser.on_start") == 3
