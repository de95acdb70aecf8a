"""The RabbitMQ queue collector against a real management API.

Where the API comes from, first found wins:

1. ``LOADGEN_RABBITMQ_API`` (e.g. ``http://guest:guest@127.0.0.1:15672``);
2. a management plugin already listening on 127.0.0.1:15672 (guest/guest);
3. a private, throw-away RabbitMQ node started by this module from the
   installed ``rabbitmq-server`` (Debian's package, as on the CI machines):
   its own node name, data and log directories under a temporary directory,
   free loopback ports, the management plugin enabled in its own
   enabled-plugins file. The machine's broker and its configuration are not
   touched; the node's process group is killed when the module's tests end.
   It takes about 10 s to boot, once per test session.

Otherwise the tests skip with the reason (which CI turns into a failure).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from collector_helpers import SECRET, free_port, one_queue_sample, wait_for
from loadgen.collectors import RabbitMQQueueSource, SourceFailure, parse_queue
from loadgen.collectors.spec import RabbitMQQueueSpec

from loadgen.redact import split_credentials

pytestmark = pytest.mark.timeout(120)

_DEBIAN_SERVER = Path(
    "/usr/lib/rabbitmq/bin/rabbitmq-server"
)  # the real script; /usr/sbin's wrapper su's to rabbitmq
_BOOT_TIMEOUT_S = 60.0


class Api:
    """A tiny management-API client for arranging the test (declare, publish, get, delete)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")  # with credentials
        self.base, user, password = split_credentials(self.url)
        token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data, self._headers, method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def alive(self) -> bool:
        try:
            self.call("GET", "/api/overview", timeout=2.0)
        except (OSError, ValueError):
            return False
        return True


def _server_script() -> Path | None:
    if _DEBIAN_SERVER.exists():
        return _DEBIAN_SERVER
    found = shutil.which("rabbitmq-server")
    if found and "/sbin/" not in found:  # a distribution wrapper would run the machine's own node
        return Path(found)
    return None


@pytest.fixture(scope="module")
def rabbitmq_api() -> Iterator[Api]:
    explicit = os.environ.get("LOADGEN_RABBITMQ_API")
    if explicit:
        api = Api(explicit)
        if not api.alive():
            pytest.skip(
                f"LOADGEN_RABBITMQ_API={split_credentials(explicit)[0]} does not answer /api/overview"
            )
        yield api
        return
    local = Api("http://guest:guest@127.0.0.1:15672")
    if local.alive():
        yield local
        return
    script = _server_script()
    if script is None:
        pytest.skip(
            "no RabbitMQ management API (set LOADGEN_RABBITMQ_API or enable rabbitmq_management on :15672) "
            "and no rabbitmq-server installed to start a private node"
        )
    yield from _private_node(script)


def _private_node(script: Path) -> Iterator[Api]:
    home = Path(tempfile.mkdtemp(prefix="loadgen-rabbitmq-"))
    node_port, dist_port, api_port = free_port(), free_port(), free_port()
    (home / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (home / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{node_port}\n"
        f"management.tcp.ip = 127.0.0.1\n"
        f"management.tcp.port = {api_port}\n"
    )
    (home / "rabbitmq-env.conf").write_text("")  # not the machine's /etc/rabbitmq/rabbitmq-env.conf
    env = {
        **os.environ,
        "HOME": str(home),  # its own Erlang cookie
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_NODENAME": f"loadgen-test-{uuid.uuid4().hex[:8]}@localhost",
        "RABBITMQ_NODE_PORT": str(node_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(home / "plugins-expand"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(script)],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown kills exactly what it started
        )
    api = Api(f"http://guest:guest@127.0.0.1:{api_port}")
    try:
        if not wait_for(
            lambda: api.alive() or process.poll() is not None, timeout=_BOOT_TIMEOUT_S, step=0.25
        ) or (process.poll() is not None):
            tail = log_path.read_text(errors="replace")[-600:]
            pytest.skip(f"the private RabbitMQ node did not start within {_BOOT_TIMEOUT_S:g} s: {tail}")
        yield api
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def queue_name(rabbitmq_api: Api) -> Iterator[str]:
    name = f"loadgen-test-{uuid.uuid4().hex[:12]}"
    rabbitmq_api.call("PUT", f"/api/queues/%2F/{name}", {"durable": False, "auto_delete": False})
    try:
        yield name
    finally:
        try:
            rabbitmq_api.call("DELETE", f"/api/queues/%2F/{name}")
        except (OSError, ValueError):
            pass


def _source(api: Api, queue: str) -> RabbitMQQueueSource:
    spec = parse_queue(f"mail=rabbitmq:{api.url}/%2F/{quote(queue, safe='')}")
    assert isinstance(spec, RabbitMQQueueSpec)
    return RabbitMQQueueSource(spec)


def test_rabbitmq_collector_reads_a_real_queue(rabbitmq_api: Api, queue_name: str) -> None:
    published_at = int(time.time()) - 30
    for i in range(5):
        routed = rabbitmq_api.call(
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            {
                "properties": {"timestamp": published_at},
                "routing_key": queue_name,
                "payload": f"m{i}",
                "payload_encoding": "string",
            },
        )
        assert routed == {"routed": True}
    got = rabbitmq_api.call(
        "POST",
        f"/api/queues/%2F/{queue_name}/get",
        {"count": 2, "ackmode": "ack_requeue_false", "encoding": "auto"},
    )
    assert len(got) == 2
    source = _source(rabbitmq_api, queue_name)
    # the API's figures follow the broker's statistics interval (5 s by default): wait for them
    assert wait_for(lambda: one_queue_sample(source).length == 3, timeout=20, step=0.1)
    sample = one_queue_sample(source)
    assert sample.queue == "mail" and sample.source == "rabbitmq"
    assert (
        sample.backlog_age_s is not None and 25.0 <= sample.backlog_age_s < 600.0
    )  # the messages' own timestamp
    assert wait_for(
        lambda: None not in (one_queue_sample(source).published_per_s, one_queue_sample(source).consumed_per_s),
        timeout=20,
        step=0.1,
    )
    after = one_queue_sample(source)
    assert after.published_per_s is not None and after.published_per_s >= 0
    assert after.consumed_per_s is not None and after.consumed_per_s >= 0
    assert after.error_rate is None or 0.0 <= after.error_rate <= 1.0


def test_rabbitmq_collector_failures_are_clear(rabbitmq_api: Api) -> None:
    with pytest.raises(SourceFailure, match="has no queue 'no-such-queue' in vhost '/'"):
        _source(rabbitmq_api, "no-such-queue").sample()
    parts = urlsplit(rabbitmq_api.base)
    spec = parse_queue(f"mail=rabbitmq:http://guest:{SECRET}@{parts.hostname}:{parts.port}/%2F/x")
    assert isinstance(spec, RabbitMQQueueSpec)
    with pytest.raises(SourceFailure) as info:
        RabbitMQQueueSource(spec).sample()
    message = str(info.value)
    assert "HTTP 401" in message and "guest:***@" in message and SECRET not in message
