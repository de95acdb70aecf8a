"""Collector specs: what the user asked to watch, parsed from CLI or scenario strings.

Services (``--monitor LABEL=KIND[+children]:VALUE``)::

    api=pid:1234                  one process (by id)
    api=pid+children:1234         ... and all its descendants (forked workers)
    api=pidfile:/run/api.pid      the process whose id is in the file (re-read every sample)
    db=name:postgres              every process named exactly "postgres"
    workers=cmd:celery.*worker    every process whose command line matches the regex

Queues (``--queue LABEL=SOURCE``)::

    content=prometheus:http://127.0.0.1:8000/metrics                 the demo preset
    content=prometheus:http://host/metrics#preset=demo               the same, said explicitly
    jobs=prometheus:http://host/metrics#length=q_len{queue="jobs"}&published=q_in_total
    jobs=redis://127.0.0.1:6379/0/list/jobs                          LLEN
    events=redis://:pw@127.0.0.1:6379/0/stream/events?group=g1       a stream and its consumer group
    mail=rabbitmq:http://guest:guest@127.0.0.1:15672/%2F/mail         management API, vhost "/", queue "mail"

A scenario's ``options`` may give the same strings in lists, or mappings
``{"LABEL": "SOURCE"}`` / ``{"LABEL": {"source": "prometheus:URL", "metrics": {...}}}``.

Every bad value raises :class:`~loadgen.errors.UsageError` with one sentence,
and a password in a URL never appears in a message or a ``repr``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

from loadgen.collectors.metric_map import FIELDS, PRESETS, QueueMetricMap, split_top_level

from loadgen.errors import UsageError
from loadgen.redact import REDACTED, redact_text, split_credentials

__all__ = [
    "GENERATOR_LABEL",
    "ProcessKind",
    "PrometheusQueueSpec",
    "QueueSpec",
    "RabbitMQQueueSpec",
    "RedisQueueSpec",
    "ServiceSpec",
    "generator_service",
    "parse_monitor",
    "parse_monitors",
    "parse_queue",
    "parse_queues",
    "queue_from_option",
    "redis_extra_missing",
]

#: The built-in service: loadgen's own process.
GENERATOR_LABEL = "generator"

ProcessKind = Literal["pid", "pidfile", "name", "cmd"]
_KINDS: tuple[str, ...] = ("pid", "pidfile", "name", "cmd")
_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


# --- values -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service to monitor: the processes that match, re-resolved at every sample."""

    label: str
    kind: ProcessKind
    value: str  #: the pid, the pid file's path, the process name or the command-line regex
    children: bool = False  #: also sum every descendant of the matched processes

    @property
    def display(self) -> str:
        """The spec as the user would write it."""
        plus = "+children" if self.children else ""
        return f"{self.label}={self.kind}{plus}:{self.value}"


@dataclass(frozen=True, slots=True)
class PrometheusQueueSpec:
    """A queue read from a Prometheus text endpoint through a metric mapping."""

    label: str
    url: str  #: without credentials
    metrics: QueueMetricMap
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        return f"{self.label}=prometheus:{_with_user(self.url, self.username, self.password)}"


@dataclass(frozen=True, slots=True)
class RedisQueueSpec:
    """A Redis list (LLEN) or stream (XLEN, or a consumer group's lag and pending entries)."""

    label: str
    host: str
    port: int
    db: int
    kind: Literal["list", "stream"]
    key: str
    group: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    @property
    def display(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{REDACTED}@"
        elif self.username:
            auth = f"{quote(self.username, safe='')}@"
        group = f"?group={quote(self.group, safe='')}" if self.group else ""
        return (
            f"{self.label}={scheme}://{auth}{host}:{self.port}/{self.db}/{self.kind}/{quote(self.key)}{group}"
        )


@dataclass(frozen=True, slots=True)
class RabbitMQQueueSpec:
    """A RabbitMQ queue read through the management plugin's HTTP API."""

    label: str
    api_url: str  #: the API's base, e.g. http://127.0.0.1:15672 (no credentials, no /api)
    vhost: str
    queue: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def queue_url(self) -> str:
        """``GET`` this for the queue's state."""
        return f"{self.api_url}/api/queues/{quote(self.vhost, safe='')}/{quote(self.queue, safe='')}"

    @property
    def display(self) -> str:
        base = _with_user(self.api_url, self.username, self.password)
        return f"{self.label}=rabbitmq:{base}/{quote(self.vhost, safe='')}/{quote(self.queue, safe='')}"


QueueSpec = PrometheusQueueSpec | RedisQueueSpec | RabbitMQQueueSpec
_SpecT = TypeVar("_SpecT", ServiceSpec, QueueSpec)


def generator_service(pid: int) -> ServiceSpec:
    """The built-in "generator" service: loadgen's own process ``pid``."""
    return ServiceSpec(GENERATOR_LABEL, "pid", str(pid))


# --- services -----------------------------------------------------------------


def parse_monitor(text: str) -> ServiceSpec:
    """``LABEL=KIND[+children]:VALUE`` -> ServiceSpec (UsageError on bad input)."""
    label, value = _split_label(text, "--monitor", "api=pid:1234")
    return _service(label, value)


def parse_monitors(values: Iterable[str] | Mapping[str, str] | None) -> list[ServiceSpec]:
    """Several services (CLI strings, or a scenario's ``{"LABEL": "KIND:VALUE"}``); labels must be unique."""
    return _parse_many(values, "--monitor", parse_monitor, _monitor_entry)


def _monitor_entry(label: str, value: object) -> ServiceSpec:
    return _service(_check_label(label, "--monitor"), _need_str(value, "--monitor", label))


def _service(label: str, value: str) -> ServiceSpec:
    if label == GENERATOR_LABEL:
        raise UsageError(
            f'"{GENERATOR_LABEL}" is the built-in label of loadgen itself; pick another --monitor label.'
        )
    kind_part, sep, target = value.partition(":")
    kind, plus, option = kind_part.partition("+")
    if not sep or kind not in _KINDS:
        raise UsageError(
            f"--monitor {label}= needs KIND:VALUE with KIND one of pid, pidfile, name, cmd "
            f"(e.g. {label}=pid:1234 or {label}=name:postgres), got {redact_text(value)!r}."
        )
    if plus and option != "children":
        raise UsageError(f"--monitor {label}={kind}+{option}: the only option is +children.")
    if not target:
        raise UsageError(f"--monitor {label}={kind}: needs a value after the colon.")
    if kind == "pid" and not (target.isdigit() and int(target) > 0):
        raise UsageError(f"--monitor {label}=pid: needs a positive process id, got {target!r}.")
    if kind == "cmd":
        try:
            re.compile(target)
        except re.error as exc:
            raise UsageError(
                f"--monitor {label}=cmd: {target!r} is not a valid regular expression ({exc})."
            ) from None
    return ServiceSpec(label, cast(ProcessKind, kind), target, children=bool(plus))


# --- queues -------------------------------------------------------------------


def parse_queue(text: str) -> QueueSpec:
    """``LABEL=SOURCE`` -> a queue spec (UsageError on bad input)."""
    label, value = _split_label(text, "--queue", "content=prometheus:http://127.0.0.1:8000/metrics")
    return queue_from_option(label, value)


def parse_queues(values: Iterable[str] | Mapping[str, Any] | None) -> list[QueueSpec]:
    """Several queues (CLI strings, or a scenario's ``{"LABEL": SOURCE or {...}}``); labels must be unique."""
    return _parse_many(values, "--queue", parse_queue, queue_from_option)


def queue_from_option(label: str, value: str | Mapping[str, Any]) -> QueueSpec:
    """One queue from its label and either a SOURCE string or ``{"source": SOURCE, "metrics": {...}, "preset": NAME}``."""
    label = _check_label(label, "--queue")
    metrics: Mapping[str, Any] | None = None
    preset: str | None = None
    if isinstance(value, Mapping):
        unknown = set(value) - {"source", "metrics", "preset"}
        if unknown:
            raise UsageError(
                f"Queue {label}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; use source, metrics, preset."
            )
        source = _need_str(value.get("source"), "--queue", label)
        metrics = value.get("metrics")
        preset = value.get("preset")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise UsageError(f"Queue {label}: metrics must be a mapping of field to metric selector.")
        if (metrics is not None or preset is not None) and not source.startswith("prometheus:"):
            raise UsageError(f"Queue {label}: metrics and preset apply only to a prometheus: source.")
    elif isinstance(value, str):
        source = value
    else:
        raise UsageError(f"Queue {label}: expected a source string or a mapping, got {type(value).__name__}.")

    if source.startswith("prometheus:"):
        return _prometheus(label, source[len("prometheus:") :], metrics, preset)
    if source.startswith(("redis://", "rediss://")):
        return _redis(label, source)
    if source.startswith("rabbitmq:"):
        return _rabbitmq(label, source[len("rabbitmq:") :])
    raise UsageError(
        f"--queue {label}= must start with prometheus:, redis://, rediss:// or rabbitmq:, "
        f"got {redact_text(source)!r}."
    )


def _prometheus(
    label: str, url: str, metrics: Mapping[str, Any] | None, preset: str | None
) -> PrometheusQueueSpec:
    url, _, fragment = url.partition("#")
    _check_http(url, label, "prometheus:")
    bare, user, password = split_credentials(url)
    base: QueueMetricMap | None = None
    fields: dict[str, str] = {}
    if fragment:
        for item in split_top_level(fragment, "&"):
            if not item:
                continue
            key, eq, raw = item.partition("=")
            if not eq or not raw:
                raise UsageError(
                    f"--queue {label}: the #{item} part needs KEY=VALUE, e.g. #preset=demo or #length=my_queue_length."
                )
            if key == "preset":
                preset = unquote(raw)
            else:
                fields[key] = unquote(raw)
    if metrics:
        fields.update({str(k): v for k, v in metrics.items()})
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(f"--queue {label}: unknown preset {preset!r}; known: {', '.join(PRESETS)}.")
        base = PRESETS[preset]
    elif not fields:
        base = PRESETS["demo"]  # the documented default: the demo target's metric names
    try:
        mapping = QueueMetricMap.from_mapping(fields, base)
    except UsageError as exc:
        raise UsageError(f"--queue {label}: {exc}") from None
    if mapping.is_empty():
        raise UsageError(
            f"--queue {label}: the metric mapping is empty; name at least one of {', '.join(FIELDS)}."
        )
    return PrometheusQueueSpec(label, bare, mapping, user, password)


def _redis(label: str, url: str) -> RedisQueueSpec:
    shown = redact_text(url)
    example = "redis://127.0.0.1:6379/0/list/jobs or redis://127.0.0.1:6379/0/stream/events?group=g1"
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as exc:
        raise UsageError(f"--queue {label}: {shown!r} is not a valid Redis URL ({exc}).") from None
    if not parts.hostname:
        raise UsageError(f"--queue {label}: {shown!r} names no host; use e.g. {example}.")
    segments = [s for s in parts.path.split("/")[1:]]
    db = 0
    if segments and segments[0].isdigit():
        db = int(segments.pop(0))
    if len(segments) < 2 or segments[0] not in ("list", "stream") or not "/".join(segments[1:]):
        raise UsageError(f"--queue {label}: {shown!r} needs /DB/list/KEY or /DB/stream/KEY, e.g. {example}.")
    kind = segments[0]
    key = unquote("/".join(segments[1:]))
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise UsageError(f"--queue {label}: {shown!r} has a malformed query string.") from None
    unknown = set(query) - {"group"}
    if unknown:
        raise UsageError(
            f"--queue {label}: unknown Redis URL parameter(s) {', '.join(sorted(unknown))}; only group= is known."
        )
    group = query.get("group", [None])[-1]
    if group is not None and kind != "stream":
        raise UsageError(f"--queue {label}: group= applies to streams only (/stream/KEY).")
    if group == "":
        raise UsageError(f"--queue {label}: group= needs the consumer group's name.")
    if importlib.util.find_spec("redis") is None:  # said before the run rather than by its collector
        raise UsageError(redis_extra_missing(label))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return RedisQueueSpec(
        label,
        parts.hostname,
        port,
        db,
        cast(Literal["list", "stream"], kind),
        key,
        group,
        username=username,
        password=password,
        tls=parts.scheme == "rediss",
    )


def redis_extra_missing(label: str) -> str:
    """The sentence for a Redis queue without the optional ``redis`` package."""
    return (
        f"--queue {label}: reading a Redis queue needs the redis package, which is not installed; "
        "install it with: pip install 'loadgen[redis]'."
    )


def _rabbitmq(label: str, url: str) -> RabbitMQQueueSpec:
    _check_http(url, label, "rabbitmq:")
    bare, user, password = split_credentials(url)
    parts = urlsplit(bare)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2:
        raise UsageError(
            f"--queue {label}=rabbitmq: needs the management API URL then /VHOST/QUEUE "
            f"(the vhost / is %2F), e.g. rabbitmq:http://guest:guest@127.0.0.1:15672/%2F/mail."
        )
    vhost, queue = unquote(segments[-2]), unquote(segments[-1])
    prefix = "/".join(segments[:-2])
    api = f"{parts.scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
    return RabbitMQQueueSpec(label, api, vhost, queue, user, password)


# --- helpers ------------------------------------------------------------------


def _parse_many(
    values: Iterable[str] | Mapping[str, Any] | None,
    option: str,
    parse_text: Callable[[str], _SpecT],
    parse_entry: Callable[[str, Any], _SpecT],
) -> list[_SpecT]:
    """Specs from CLI strings (``parse_text``) or a scenario's mapping of label to value (``parse_entry``)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if isinstance(values, Mapping):
        specs = [parse_entry(str(k), v) for k, v in values.items()]
    else:
        specs = [parse_text(_need_str(v, option)) for v in values]
    _unique([s.label for s in specs], option)
    return specs


def _split_label(text: str, option: str, example: str) -> tuple[str, str]:
    label, sep, value = text.partition("=")
    if not sep or not value or ":" in label or "/" in label:
        raise UsageError(f"{option} needs LABEL=VALUE, e.g. {option} {example}; got {redact_text(text)!r}.")
    return _check_label(label.strip(), option), value.strip()


def _check_label(label: str, option: str) -> str:
    if not _LABEL.match(label):
        raise UsageError(
            f"{option} label {redact_text(label)!r} must be 1-64 letters, digits, '_', '.' or '-' (not starting with '.' or '-')."
        )
    return label


def _check_http(url: str, label: str, prefix: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(
            f"--queue {label}={prefix}{redact_text(url)!r} is not a valid URL ({exc})."
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--queue {label}={prefix} needs an http:// or https:// URL with a host, got {redact_text(url)!r}."
        )


def _need_str(value: object, option: str, label: object = None) -> str:
    if not isinstance(value, str) or not value:
        where = f" {label}" if label is not None else ""
        raise UsageError(f"{option}{where}: expected a non-empty string, got {type(value).__name__}.")
    return value


def _unique(labels: list[str], option: str) -> None:
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise UsageError(f"{option} label {label!r} is given twice; labels must be unique.")
        seen.add(label)


def _with_user(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``user:***@`` put back for display (never the password)."""
    if username is None and password is None:
        return url
    scheme, _, rest = url.partition("://")
    user = quote(username or "", safe="")
    auth = f"{user}:{REDACTED}@" if password is not None else f"{user}@"
    return f"{scheme}://{auth}{rest}"
