"""Collectors: specs, redaction, the resource collector on real processes, and the runners.

Queue sources are in test_collectors_queues.py (demo target, Redis) and
test_collectors_rabbitmq.py. Bounds are wide: CI is a busy 2-core machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from collector_helpers import SECRET, free_port, wait_for
from loadgen.collectors import (
    PRESETS,
    BufferSink,
    CollectorRunner,
    MetricSelector,
    PrometheusQueueSpec,
    RabbitMQQueueSpec,
    RedisQueueSpec,
    ResourceSource,
    Sample,
    ServiceSpec,
    Source,
    SourceFailure,
    build_sources,
    parse_monitor,
    parse_monitors,
    parse_queue,
    parse_queues,
    parse_selector,
    queue_from_option,
    resolve_processes,
)
from loadgen.collectors.process_runner import ProcessCollectorRunner
from loadgen.collectors.procnet import parse_net_dev
from loadgen.collectors.resources import read_process

from loadgen.errors import UsageError
from loadgen.samples import ResourceSample

pytestmark = pytest.mark.timeout(60)


# --- specs --------------------------------------------------------------------


def _refusal(parse: Callable[[str], object], text: str) -> str:
    """The UsageError ``parse(text)`` raises, checked to be one sentence."""
    with pytest.raises(UsageError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message and message.endswith(".")
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api=pid:1234", ServiceSpec("api", "pid", "1234")),
        ("api=pid+children:1234", ServiceSpec("api", "pid", "1234", children=True)),
        ("api=pidfile:/run/api.pid", ServiceSpec("api", "pidfile", "/run/api.pid")),
        ("db=name:postgres", ServiceSpec("db", "name", "postgres")),
        ("workers=cmd:celery.*worker", ServiceSpec("workers", "cmd", "celery.*worker")),
        ("w.1-x=cmd+children:a:b=c", ServiceSpec("w.1-x", "cmd", "a:b=c", children=True)),
    ],
)
def test_monitor_specs_parse(text: str, expected: ServiceSpec) -> None:
    spec = parse_monitor(text)
    assert spec == expected
    assert parse_monitor(spec.display) == spec


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("api", "LABEL=VALUE"),
        ("api=", "LABEL=VALUE"),
        ("=pid:1", "label"),
        ("api=1234", "KIND:VALUE"),
        ("api=port:80", "KIND:VALUE"),
        ("api=pid:abc", "positive process id"),
        ("api=pid:0", "positive process id"),
        ("api=pid+kids:1", "+children"),
        ("api=name:", "needs a value"),
        ("api=cmd:celery(", "not a valid regular expression"),
        ("generator=pid:1", "built-in"),
        ("a b=pid:1", "label"),
    ],
)
def test_bad_monitor_specs_say_why_in_one_sentence(text: str, fragment: str) -> None:
    assert fragment in _refusal(parse_monitor, text)


def test_monitor_labels_must_be_unique_and_mappings_work() -> None:
    with pytest.raises(UsageError, match="twice"):
        parse_monitors(["api=pid:1", "api=pid:2"])
    assert parse_monitors({"api": "pid:1", "db": "name:postgres"}) == [
        ServiceSpec("api", "pid", "1"),
        ServiceSpec("db", "name", "postgres"),
    ]
    assert parse_monitors(None) == []


def test_queue_specs_parse() -> None:
    prom = parse_queue("content=prometheus:http://127.0.0.1:8000/metrics")
    assert isinstance(prom, PrometheusQueueSpec)
    assert prom.url == "http://127.0.0.1:8000/metrics" and prom.metrics == PRESETS["demo"]
    assert parse_queue("content=prometheus:http://127.0.0.1:8000/metrics#preset=demo") == prom

    custom = parse_queue(
        'jobs=prometheus:https://u:pw@m.example/metrics#length=q_len{queue="a,b&c"}'
        "&consumed=done_total,failed_total&failed=failed_total"
    )
    assert isinstance(custom, PrometheusQueueSpec)
    assert custom.url == "https://m.example/metrics" and custom.username == "u" and custom.password == "pw"
    assert custom.metrics.length == (MetricSelector("q_len", (("queue", "a,b&c"),)),)
    assert [str(s) for s in custom.metrics.consumed] == ["done_total", "failed_total"]
    assert custom.metrics.published == () and custom.metrics.backlog_age == ()

    overridden = parse_queue("c=prometheus:http://h/metrics#preset=demo&length=other_len")
    assert isinstance(overridden, PrometheusQueueSpec)
    assert overridden.metrics.length == (MetricSelector("other_len"),)
    assert overridden.metrics.published == PRESETS["demo"].published

    assert parse_queue("jobs=redis://127.0.0.1:6379/0/list/jobs") == RedisQueueSpec(
        "jobs", "127.0.0.1", 6379, 0, "list", "jobs"
    )
    stream = parse_queue(f"events=rediss://user:{SECRET}@redis.local:6380/3/stream/a/b%20c?group=g1")
    assert stream == RedisQueueSpec(
        "events", "redis.local", 6380, 3, "stream", "a/b c", "g1", username="user", password=SECRET, tls=True
    )
    assert parse_queue("x=redis://h/stream/s") == RedisQueueSpec("x", "h", 6379, 0, "stream", "s")

    mail = parse_queue(f"mail=rabbitmq:http://guest:{SECRET}@127.0.0.1:15672/%2F/mail")
    assert mail == RabbitMQQueueSpec("mail", "http://127.0.0.1:15672", "/", "mail", "guest", SECRET)
    assert isinstance(mail, RabbitMQQueueSpec)
    assert mail.queue_url == "http://127.0.0.1:15672/api/queues/%2F/mail"
    behind_proxy = parse_queue("mail=rabbitmq:https://mq.example/rabbit/prod/orders.v1")
    assert isinstance(behind_proxy, RabbitMQQueueSpec)
    assert (behind_proxy.api_url, behind_proxy.vhost, behind_proxy.queue) == (
        "https://mq.example/rabbit",
        "prod",
        "orders.v1",
    )


def test_queue_specs_from_scenario_mappings() -> None:
    specs = parse_queues(
        {
            "content": "prometheus:http://127.0.0.1:8000/metrics",
            "celery": {
                "source": "prometheus:http://127.0.0.1:9808/metrics",
                "metrics": {
                    "length": 'celery_queue_length{queue_name="celery"}',
                    "published": ["a_total", "b_total"],
                },
            },
        }
    )
    assert [s.label for s in specs] == ["content", "celery"]
    celery = specs[1]
    assert isinstance(celery, PrometheusQueueSpec)
    assert celery.metrics.length == (MetricSelector("celery_queue_length", (("queue_name", "celery"),)),)
    assert len(celery.metrics.published) == 2 and celery.metrics.consumed == ()
    with pytest.raises(UsageError, match="only to a prometheus"):
        queue_from_option("x", {"source": "redis://h/0/list/k", "metrics": {"length": "x"}})
    with pytest.raises(UsageError, match="unknown key"):
        queue_from_option("x", {"source": "prometheus:http://h/m", "mapping": {}})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("content", "LABEL=VALUE"),
        ("prometheus:http://h/metrics", "LABEL=VALUE"),
        ("q=http://h/metrics", "must start with"),
        ("q=prometheus:ftp://h/metrics", "http:// or https://"),
        ("q=prometheus:http://h:99999/metrics", "not a valid URL"),
        ("q=prometheus:http://h/m#preset=nope", "unknown preset"),
        ("q=prometheus:http://h/m#lenght=x", "Unknown queue metric field"),
        ("q=prometheus:http://h/m#length", "KEY=VALUE"),
        ("q=prometheus:http://h/m#length=9bad", "not a metric selector"),
        ("q=prometheus:http://h/m#length=x{a=1}", "malformed label matcher"),
        ("q=redis://h/0/jobs", "/DB/list/KEY"),
        ("q=redis://h/0/list/", "/DB/list/KEY"),
        ("q=redis:///0/list/k", "names no host"),
        ("q=redis://h/0/list/k?group=g", "streams only"),
        ("q=redis://h/0/stream/k?group=", "needs the consumer group"),
        ("q=redis://h/0/stream/k?grp=g", "unknown Redis URL parameter"),
        ("q=rabbitmq:http://h:15672/mail", "/VHOST/QUEUE"),
    ],
)
def test_bad_queue_specs_say_why_in_one_sentence(text: str, fragment: str) -> None:
    assert fragment in _refusal(parse_queue, text)


@pytest.mark.parametrize(
    "text",
    [
        f"q=redis://:{SECRET}@h/0/jobs",
        f"q=redis://user:{SECRET}@h:99999999/0/list/k",
        f"q=prometheus:ftp://u:{SECRET}@h/m",
        f"q=rabbitmq:http://guest:{SECRET}@h:15672/mail",
        f"q=amqp://guest:{SECRET}@h/mail",
        f"prometheus:http://u:{SECRET}@h/m",
    ],
)
def test_passwords_never_reach_error_messages(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_queue(text)
    assert SECRET not in str(info.value)


def test_passwords_never_reach_reprs_or_displays() -> None:
    for text in (
        f"q=redis://user:{SECRET}@h/0/list/k",
        f"q=rabbitmq:http://guest:{SECRET}@h:15672/%2F/mail",
        f"q=prometheus:http://u:{SECRET}@h/metrics",
    ):
        spec = parse_queue(text)
        assert SECRET not in repr(spec)
        assert SECRET not in spec.display and "***" in spec.display
        assert parse_queue(spec.display.replace("***", SECRET)) == spec


def test_selectors() -> None:
    selector = parse_selector('demo_jobs_processed_total{type="simple", x="a\\"b"}')
    assert selector == MetricSelector("demo_jobs_processed_total", (("type", "simple"), ("x", 'a"b')))
    assert selector.matches({"type": "simple", "x": 'a"b', "other": "1"})
    assert not selector.matches({"type": "medium", "x": 'a"b'})
    assert parse_selector(str(selector)) == selector


def test_net_dev_parsing() -> None:
    text = (
        "Inter-|   Receive                            |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:  1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n"
        "  eth0: 52000     100    0    0    0     0          0         0     7000      50    0    0    0     0       0          0\n"
    )
    assert parse_net_dev(text) == (8000, 53000)


# --- resources ------------------------------------------------------------------

BURNER = """
import sys, time
block = b"x" * (200 * 1024 * 1024)   # written, so resident (bytearray(n) would be lazily zero-mapped)
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    pass
"""


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)


def _end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def burner() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A Python child burning one core with 200 MB resident; its command line carries a unique token."""
    token = f"lgburn-{uuid.uuid4().hex[:12]}"
    process = _spawn([sys.executable, "-c", BURNER, token])
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process, token
    finally:
        _end(process)


def test_resource_collector_measures_a_busy_process(burner: tuple[subprocess.Popen[str], str]) -> None:
    process, token = burner
    source = ResourceSource(ServiceSpec("burner", "pid", str(process.pid)))
    assert source.sample() == []  # the first reading only sets the CPU baseline
    time.sleep(1.0)
    [sample] = source.sample()
    assert isinstance(sample, ResourceSample)
    assert sample.service == "burner" and sample.pids == (process.pid,)
    assert 30.0 < sample.cpu_percent < 250.0, sample
    assert sample.rss_bytes > 150 * 1024 * 1024
    assert sample.threads >= 1
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        assert sample.disk_read_bytes is not None and sample.disk_write_bytes is not None
    assert sample.net_scope in ("system", "namespace")
    if sample.net_scope == "system":  # same namespace as us: host-wide counters, labelled so
        counters = psutil.net_io_counters()
        assert sample.net_sent_bytes is not None and sample.net_sent_bytes <= counters.bytes_sent
    # the same process found through its command line
    by_cmd = ResourceSource(ServiceSpec("burner", "cmd", token))
    by_cmd.sample()
    time.sleep(0.3)
    [again] = by_cmd.sample()
    assert again.pids == (process.pid,) and again.rss_bytes > 150 * 1024 * 1024


def test_name_and_cmd_resolution_and_children(tmp_path: Path) -> None:
    sleeper = tmp_path / f"lgs{uuid.uuid4().hex[:8]}"  # a unique process name (<= 15 chars)
    shutil.copy(shutil.which("sleep") or "/bin/sleep", sleeper)
    token = f"lgparent-{uuid.uuid4().hex[:8]}"
    parent = _spawn(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; c = subprocess.Popen([sys.argv[1], '30']); print(c.pid, flush=True); c.wait()",
            str(sleeper),
            token,
        ]
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        by_name = resolve_processes(ServiceSpec("s", "name", sleeper.name))
        assert [p.pid for p in by_name] == [child_pid]
        by_cmd = resolve_processes(ServiceSpec("p", "cmd", token))
        assert [p.pid for p in by_cmd] == [parent.pid]
        with_children = resolve_processes(ServiceSpec("p", "cmd", token, children=True))
        assert sorted(p.pid for p in with_children) == sorted([parent.pid, child_pid])
        assert [p.pid for p in resolve_processes(ServiceSpec("p", "pid", str(parent.pid)))] == [parent.pid]
        # our own command line matches every cmd: pattern given on it; loadgen never monitors itself that way
        assert os.getpid() not in {p.pid for p in resolve_processes(ServiceSpec("me", "cmd", "."))}
        pidfile = tmp_path / "svc.pid"
        pidfile.write_text(f"{parent.pid}\n")
        assert [p.pid for p in resolve_processes(ServiceSpec("p", "pidfile", str(pidfile)))] == [parent.pid]
        pidfile.write_text("garbage")
        assert resolve_processes(ServiceSpec("p", "pidfile", str(pidfile))) == []
    finally:
        _end(parent)
        for proc in psutil.process_iter(["name"]):  # the grandchild, if the parent died first
            if proc.info["name"] == sleeper.name:
                proc.kill()


def test_vanished_processes_do_not_crash_the_collector() -> None:
    token = f"lgpair-{uuid.uuid4().hex[:8]}"
    first = _spawn([sys.executable, "-c", "import time; print(1, flush=True); time.sleep(30)", token])
    second = _spawn([sys.executable, "-c", "import time; print(1, flush=True); time.sleep(30)", token])
    try:
        for p in (first, second):
            assert p.stdout is not None and p.stdout.readline()
        source = ResourceSource(ServiceSpec("pair", "cmd", token))
        assert source.sample() == []
        handles = resolve_processes(source.spec)
        assert len(handles) == 2
        _end(first)  # gone (and reaped) between two samples
        assert read_process(next(h for h in handles if h.pid == first.pid)) is None
        [sample] = source.sample()
        assert sample.pids == (second.pid,)
        _end(second)
        with pytest.raises(SourceFailure, match="no running process matches"):
            source.sample()
        by_pid = ResourceSource(ServiceSpec("gone", "pid", str(second.pid)))
        with pytest.raises(SourceFailure):
            by_pid.sample()
    finally:
        _end(first)
        _end(second)


def test_build_sources_adds_the_generator_itself() -> None:
    sources = build_sources(parse_monitors(["api=pid:1"]), parse_queues(["q=redis://127.0.0.1/0/list/k"]))
    assert [s.name for s in sources] == ["resource:generator", "resource:api", "queue:q"]
    generator = sources[0]
    assert isinstance(generator, ResourceSource) and generator.spec.value == str(os.getpid())
    assert [s.name for s in build_sources(include_generator=False)] == []


# --- runners ----------------------------------------------------------------------


class BlockingSource(Source):
    """A source stuck in a call until released (like a network read with a long timeout)."""

    def __init__(self) -> None:
        super().__init__("queue:stuck")
        self.entered = threading.Event()
        self.release = threading.Event()

    def _sample(self) -> list[Sample]:
        self.entered.set()
        self.release.wait(30)
        return []


def test_runner_survives_failing_sources_and_sinks() -> None:
    sources = build_sources(
        queues=parse_queues([f"down=prometheus:http://user:{SECRET}@127.0.0.1:{free_port()}/metrics"]),
        timeout_s=1.0,
    )
    buffer = BufferSink()
    batches: list[list[Sample]] = []

    def broken_sink(batch: list[Sample]) -> None:
        raise RuntimeError("sink exploded")

    runner = CollectorRunner(sources, [broken_sink, buffer, batches.append], interval_s=0.1)
    runner.start()
    try:
        assert wait_for(lambda: len(batches) >= 3, timeout=10)
    finally:
        assert runner.stop() is True
    assert not runner.running
    samples = buffer.drain()
    assert samples and all(isinstance(s, ResourceSample) and s.service == "generator" for s in samples)
    assert buffer.drain() == []
    errors = runner.errors
    assert set(errors) == {
        "queue:down",
        "sink:test_runner_survives_failing_sources_and_sinks.<locals>.broken_sink",
    }
    down = errors["queue:down"]
    assert down.count >= 3 and down.failing and "cannot be reached" in down.message
    assert SECRET not in down.message and "127.0.0.1" in down.message
    assert "sink exploded" in errors[next(k for k in errors if k.startswith("sink:"))].message


def test_runner_stop_is_bounded_when_a_source_hangs() -> None:
    stuck = BlockingSource()
    runner = CollectorRunner([stuck], interval_s=0.1, stop_timeout_s=0.3)
    runner.start()
    try:
        assert stuck.entered.wait(10)
        began = time.monotonic()
        assert runner.stop() is False  # it could not join in time, and says so
        assert time.monotonic() - began < 5.0  # bounded (0.3 s asked; generous for a busy machine)
    finally:
        stuck.release.set()
    assert wait_for(lambda: not runner.running, timeout=10)
    with pytest.raises(RuntimeError):
        runner.start()


def test_runner_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        CollectorRunner([], interval_s=0)
    gen = build_sources()
    with pytest.raises(ValueError, match="unique"):
        CollectorRunner([gen[0], gen[0]])


def test_process_runner_samples_in_a_child_process(burner: tuple[subprocess.Popen[str], str]) -> None:
    process, token = burner
    buffer = BufferSink()
    runner = ProcessCollectorRunner(
        parse_monitors([f"burner=cmd:{token}"]),
        parse_queues([f"down=redis://:{SECRET}@127.0.0.1:{free_port()}/0/list/jobs"]),
        [buffer],
        interval_s=0.2,
        timeout_s=1.0,
    )
    runner.start()
    try:
        child = runner.pid
        assert child is not None and child != os.getpid()
        assert wait_for(lambda: runner.rounds >= 3, timeout=20)
    finally:
        assert runner.stop() is True
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    samples = [s for s in buffer.drain() if isinstance(s, ResourceSample)]
    services = {s.service for s in samples}
    assert services == {"generator", "burner"}
    generator = [s for s in samples if s.service == "generator"]
    assert all(s.pids == (os.getpid(),) for s in generator)  # the parent, not the collector child
    burning = [s for s in samples if s.service == "burner"]
    assert all(s.pids == (process.pid,) and s.rss_bytes > 150 * 1024 * 1024 for s in burning)
    assert max(s.cpu_percent for s in burning) > 30.0
    down = runner.errors["queue:down"]
    assert "cannot connect to Redis" in down.message and SECRET not in down.message
