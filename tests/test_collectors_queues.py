"""Queue collectors against real queues: the demo target's job queue (Prometheus) and Redis.

Redis is found through LOADGEN_REDIS_URL, else at 127.0.0.1:6379; without it
these tests skip with the reason (which CI turns into a failure).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from collector_helpers import SECRET, one_queue_sample, wait_for
from loadgen.collectors import (
    MetricSelector,
    PrometheusQueueSource,
    RedisQueueSource,
    SourceFailure,
    parse_queue,
)
from loadgen.collectors.prometheus_text import Exposition
from loadgen.collectors.queue_redis import stream_id_ms
from loadgen.collectors.spec import PrometheusQueueSpec, RedisQueueSpec
from redis import Redis as RedisConnection
from redis.exceptions import RedisError

pytestmark = pytest.mark.timeout(60)


# --- the demo target's queue, through its /metrics ----------------------------


def _request(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(
        urllib.request.Request(url, data, headers, method=method), timeout=10
    ) as resp:
        raw = resp.read()
        return json.loads(raw) if resp.headers.get_content_type() == "application/json" else raw.decode()


def _login(base: str) -> str:
    return str(
        _request("POST", f"{base}/api/auth/login", {"username": "qa", "password": "password"})["access_token"]
    )


def _submit(base: str, token: str, count: int, prompt: str = "hello") -> None:
    for _ in range(count):
        _request("POST", f"{base}/api/content", {"type": "simple", "prompt": prompt}, token)


def _demo_metric(base: str, name: str) -> float:
    """The demo's own value of an unlabelled series, read independently of the collector."""
    for line in _request("GET", f"{base}/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the demo's /metrics")


def _queue_source(base: str, **kwargs: Any) -> PrometheusQueueSource:
    spec = parse_queue(f"content=prometheus:{base}/metrics")
    assert isinstance(spec, PrometheusQueueSpec)
    return PrometheusQueueSource(spec, **kwargs)


def test_prometheus_collector_reads_the_demo_backlog(start_demo: Callable[..., Any]) -> None:
    # one worker, simple jobs of 0.05 s x 200 = 10 s: the backlog holds still while we look
    demo = start_demo(workers=1, processing_scale=200.0)
    token = _login(demo.url)
    _submit(demo.url, token, 6)
    # one is being processed
    assert wait_for(lambda: _demo_metric(demo.url, "demo_queue_length") == 5, timeout=15)

    source = _queue_source(demo.url)
    first = one_queue_sample(source)
    assert first.queue == "content" and first.source == "prometheus"
    assert first.length == 5 == _demo_metric(demo.url, "demo_queue_length") == len(demo.state.jobs)
    assert first.backlog_age_s is not None and first.backlog_age_s > 0
    assert first.published_per_s is None and first.consumed_per_s is None  # rates need two readings
    assert first.processing_time_s is None and first.error_rate is None

    _submit(demo.url, token, 3)
    second = one_queue_sample(source)
    assert second.length == 8 == _demo_metric(demo.url, "demo_queue_length")
    assert second.published_per_s is not None and second.published_per_s > 0
    assert second.consumed_per_s == 0.0  # nothing finished yet
    assert second.error_rate is None  # nothing finished: no rate to speak of
    assert second.backlog_age_s is not None and second.backlog_age_s >= first.backlog_age_s


def test_prometheus_collector_rates_processing_time_and_errors(start_demo: Callable[..., Any]) -> None:
    demo = start_demo(workers=4, processing_scale=0.2)  # simple jobs take 10 ms
    token = _login(demo.url)
    source = _queue_source(demo.url)
    one_queue_sample(source)  # the baseline
    _submit(demo.url, token, 6, prompt="fine")
    _submit(demo.url, token, 2, prompt="!fail please")

    def finished() -> float:
        text = _request("GET", f"{demo.url}/metrics")
        exposition = Exposition(text)
        done = exposition.total(MetricSelector("demo_jobs_processed_total")) or 0.0
        failed = exposition.total(MetricSelector("demo_jobs_failed_total")) or 0.0
        return done + failed

    assert wait_for(lambda: finished() == 8, timeout=15)
    sample = one_queue_sample(source)
    assert sample.length == 0 and sample.backlog_age_s == 0
    assert sample.error_rate == pytest.approx(2 / 8)
    assert sample.consumed_per_s is not None and sample.consumed_per_s > 0
    assert sample.published_per_s is not None and sample.published_per_s > 0
    assert sample.processing_time_s is not None and 0.005 <= sample.processing_time_s < 2.0


def test_prometheus_collector_selectors_with_labels(start_demo: Callable[..., Any]) -> None:
    demo = start_demo(workers=2, processing_scale=0.2)
    token = _login(demo.url)
    spec = parse_queue(
        f'simple=prometheus:{demo.url}/metrics#consumed=demo_jobs_processed_total{{type="simple"}}'
        f'&processing_time=demo_job_processing_seconds{{type="simple"}}&length=demo_queue_length'
    )
    assert isinstance(spec, PrometheusQueueSpec)
    source = PrometheusQueueSource(spec)
    one_queue_sample(source)
    _submit(demo.url, token, 4)
    simple_done = MetricSelector("demo_jobs_processed_total", (("type", "simple"),))
    assert wait_for(
        lambda: Exposition(_request("GET", f"{demo.url}/metrics")).total(simple_done) == 4, timeout=15
    )
    sample = one_queue_sample(source)
    assert sample.consumed_per_s is not None and sample.consumed_per_s > 0
    assert sample.processing_time_s is not None and sample.processing_time_s > 0
    assert sample.published_per_s is None  # not mapped


def test_prometheus_collector_failures_are_one_sentence_without_secrets(
    start_demo: Callable[..., Any],
) -> None:
    demo = start_demo()
    # a page without any of the mapped metrics
    spec = parse_queue(f"q=prometheus:http://u:{SECRET}@127.0.0.1:{demo.port}/metrics#length=no_such_metric")
    assert isinstance(spec, PrometheusQueueSpec)
    with pytest.raises(SourceFailure) as info:
        PrometheusQueueSource(spec).sample()
    assert "no_such_metric" in str(info.value) and SECRET not in str(info.value)
    # not a metrics page at all / a 404
    for path, fragment in (("/api/campaigns", "Prometheus text format"), ("/nope", "HTTP 404")):
        spec = parse_queue(f"q=prometheus:http://u:{SECRET}@127.0.0.1:{demo.port}{path}")
        assert isinstance(spec, PrometheusQueueSpec)
        with pytest.raises(SourceFailure) as info:
            PrometheusQueueSource(spec).sample()
        message = str(info.value)
        assert fragment in message, message
        assert SECRET not in message and "u:***@" in message


# --- Redis ---------------------------------------------------------------------


def _connect(url: str, timeout_s: float | None = None) -> RedisConnection:
    """A connection to db 0 of the Redis at ``url`` (``redis[s]://[user:password@]host[:port]``)."""
    parts = urlsplit(url)
    return RedisConnection(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        password=parts.password,
        username=parts.username or None,
        ssl=parts.scheme == "rediss",
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


@pytest.fixture
def redis_url() -> str:
    """LOADGEN_REDIS_URL, else redis://127.0.0.1:6379; skip (with the reason) when it does not answer PING."""
    parts = urlsplit(os.environ.get("LOADGEN_REDIS_URL", "redis://127.0.0.1:6379"))
    url = f"{parts.scheme}://{parts.netloc}"  # the tests add /DB/list/KEY themselves
    connection = _connect(url, timeout_s=2.0)
    try:
        connection.execute_command("PING")
    except RedisError as exc:
        pytest.skip(f"no Redis at {parts.hostname}:{parts.port or 6379} (set LOADGEN_REDIS_URL): {exc}")
    finally:
        connection.close()
    return url


@pytest.fixture
def redis(redis_url: str) -> Iterator[tuple[RedisConnection, str]]:
    """A connection to db 0 and a unique key prefix; every key under it is deleted afterwards."""
    connection = _connect(redis_url)
    prefix = f"loadgen-test:{uuid.uuid4().hex}"
    try:
        yield connection, prefix
    finally:
        for key in connection.execute_command("KEYS", f"{prefix}*") or []:
            connection.execute_command("DEL", key)
        connection.close()


def _redis_source(redis_url: str, path: str) -> RedisQueueSource:
    spec = parse_queue(f"q={redis_url}/0/{path}")
    assert isinstance(spec, RedisQueueSpec)
    return RedisQueueSource(spec)


def test_redis_list_backlog(redis_url: str, redis: tuple[RedisConnection, str]) -> None:
    connection, prefix = redis
    key = f"{prefix}:jobs"
    source = _redis_source(redis_url, f"list/{key}")
    assert one_queue_sample(source).length == 0  # a missing list is an empty one
    connection.execute_command("RPUSH", key, *[f"job-{i}" for i in range(7)])
    sample = one_queue_sample(source)
    assert sample.source == "redis" and sample.length == 7 == connection.execute_command("LLEN", key)
    assert sample.published_per_s is None and sample.backlog_age_s is None
    connection.execute_command("LPOP", key)
    assert one_queue_sample(source).length == 6
    source.close()


def test_redis_stream_group_backlog(redis_url: str, redis: tuple[RedisConnection, str]) -> None:
    connection, prefix = redis
    key = f"{prefix}:events"
    seconds, micros = connection.execute_command("TIME")
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    ids = [f"{now_ms - 20_000 + i * 1000}-0" for i in range(6)]  # added 20 s, 19 s, ... 15 s ago
    for entry_id in ids:
        connection.execute_command("XADD", key, entry_id, "n", entry_id)
    connection.execute_command("XGROUP", "CREATE", key, "g1", "0")

    plain = _redis_source(redis_url, f"stream/{key}")
    assert one_queue_sample(plain).length == 6

    source = _redis_source(redis_url, f"stream/{key}?group=g1")
    first = one_queue_sample(source)
    assert first.length == 6  # the group's lag: nothing delivered yet
    assert (
        first.backlog_age_s is not None and 19.0 <= first.backlog_age_s < 120.0
    )  # the first undelivered entry

    # a consumer takes two and acknowledges the first; three more are published
    delivered = connection.execute_command("XREADGROUP", "GROUP", "g1", "c1", "COUNT", 2, "STREAMS", key, ">")
    assert [e[0].decode() for e in delivered[0][1]] == ids[:2]
    connection.execute_command("XACK", key, "g1", ids[0])
    for _ in range(3):
        connection.execute_command("XADD", key, "*", "n", "new")
    second = one_queue_sample(source)
    assert second.length == 7  # 4 old + 3 new not yet delivered
    assert second.published_per_s is not None and second.published_per_s > 0
    assert second.consumed_per_s is not None and second.consumed_per_s > 0  # one acknowledged
    # the oldest unacknowledged entry is the pending second one (19 s old)
    assert second.backlog_age_s is not None and 18.0 <= second.backlog_age_s < first.backlog_age_s + 60
    assert stream_id_ms(ids[1]) - stream_id_ms(ids[0]) == 1000

    # everything read and acknowledged: no backlog
    rest = connection.execute_command("XREADGROUP", "GROUP", "g1", "c1", "COUNT", 100, "STREAMS", key, ">")
    connection.execute_command("XACK", key, "g1", ids[1], *[e[0] for e in rest[0][1]])
    done = one_queue_sample(source)
    assert done.length == 0 and done.backlog_age_s == 0.0
    source.close()
    plain.close()


def test_redis_failures_are_clear(redis_url: str, redis: tuple[RedisConnection, str]) -> None:
    connection, prefix = redis
    stream = f"{prefix}:s"
    connection.execute_command("XADD", stream, "*", "a", "1")
    with pytest.raises(SourceFailure, match="no consumer group 'nope'"):
        _redis_source(redis_url, f"stream/{stream}?group=nope").sample()
    with pytest.raises(SourceFailure, match="is a stream, not a list"):
        _redis_source(redis_url, f"list/{stream}").sample()
    with pytest.raises(SourceFailure, match="does not exist"):
        _redis_source(redis_url, f"stream/{prefix}:missing?group=g").sample()
    # a wrong password: Redis refuses, and the password appears nowhere
    host = urlsplit(redis_url)
    spec = parse_queue(f"q=redis://nobody:{SECRET}@{host.hostname}:{host.port or 6379}/0/list/{prefix}:x")
    assert isinstance(spec, RedisQueueSpec)
    with pytest.raises(SourceFailure) as info:
        RedisQueueSource(spec).sample()
    assert "refused" in str(info.value) and SECRET not in str(info.value)


def test_a_redis_queue_without_the_redis_package_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadgen.errors import UsageError

    monkeypatch.setitem(sys.modules, "redis", None)  # as if `loadgen[redis]` was not installed
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(UsageError, match=r"^--queue q: .* pip install 'loadgen\[redis\]'\.$"):
        parse_queue("q=redis://127.0.0.1:6379/0/list/jobs")
    spec = RedisQueueSpec("q", "127.0.0.1", 6379, 0, "list", "jobs")
    with pytest.raises(UsageError, match=r"needs the redis package"):
        RedisQueueSource(spec)
