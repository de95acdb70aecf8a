"""Run configuration: parsed and validated once, then immutable.

Everything a user types (durations like ``1h30m``, stage lists like
``30s:100,1m:500``, URLs) is parsed here, so a bad value is rejected with one
sentence before any connection is opened.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Union
from urllib.parse import urlsplit

from .errors import UsageError
from .redact import redact

try:  # the response-size defaults live with the HTTP client that enforces them
    from .http.limits import DEFAULT_LIMITS as _DEFAULT_LIMITS

    _HEAD_BYTES = _DEFAULT_LIMITS.max_head_bytes
    _BODY_BYTES = _DEFAULT_LIMITS.max_body_bytes
    _DECODED_BYTES = _DEFAULT_LIMITS.max_decoded_bytes
except ImportError:  # pragma: no cover - only while loadgen/http/limits.py does not exist yet
    _HEAD_BYTES, _BODY_BYTES, _DECODED_BYTES = 1 << 20, 64 << 20, 64 << 20

__all__ = [
    "Stage",
    "RunConfig",
    "parse_duration",
    "parse_stages",
    "parse_url",
    "parse_size",
    "parse_header",
    "parse_method",
    "number",
    "shown",
    "TEST_TYPES",
    "MAX_RATE",
    "MAX_USERS",
    "MAX_DURATION_S",
    "DEFAULT_MAX_NAMES",
]

TEST_TYPES = ("load", "stress", "soak", "spike")
Model = Literal["open", "closed"]
Arrival = Literal["constant", "poisson"]
#: A configuration as JSON values: what crosses to a worker process and what a run stores.
ConfigJson = dict[str, Union[str, int, float, bool, None, list[dict[str, float]], dict[str, str]]]

# The documented bounds of every number a user can give. A rate above MAX_RATE
# is more than the engine can schedule on any machine it runs on (one event
# loop sends some tens of thousands of requests a second); beyond the other
# maxima a value is a typo, and would exhaust memory or overflow a timer.
MAX_RATE = 1_000_000.0  #: arrivals (or users started) per second
MAX_USERS = 1_000_000  #: concurrent users, iterations in flight
MAX_DURATION_S = 30 * 86_400.0  #: any duration: 30 days
MIN_TIMEOUT_S = 0.001  #: request and connect timeouts: 1 ms
MAX_STAGES = 1_000
MAX_WORKERS = 256
DEFAULT_MAX_NAMES = 200
MAX_NAMES = 100_000
MAX_URL_CHARS = 8_192  #: what common servers accept in a request line
MAX_HEADER_CHARS = 16_384
MAX_METHOD_CHARS = 64
_SHOWN_CHARS = 80  # of a bad value quoted in a message

# name -> (option, lowest, highest, whole number, lowest excluded, unit). One table,
# used by the command line's parsers and by RunConfig (scenario options, workers).
_NUMBERS: dict[str, tuple[str, float, float, bool, bool, str]] = {
    "users": ("--users", 1, MAX_USERS, True, False, ""),
    "preallocated_users": ("--users", 1, MAX_USERS, True, False, ""),
    "spawn_rate": ("--spawn-rate", 0, MAX_RATE, False, True, "/s"),
    "rate": ("--rate", 0, MAX_RATE, False, True, "/s"),
    "max_inflight": ("--max-inflight", 1, MAX_USERS, True, False, ""),
    "run_time_s": ("--run-time", 0, MAX_DURATION_S, False, False, "s"),
    "timeout_s": ("--timeout", MIN_TIMEOUT_S, MAX_DURATION_S, False, False, "s"),
    "connect_timeout_s": ("--connect-timeout", MIN_TIMEOUT_S, MAX_DURATION_S, False, False, "s"),
    "graceful_stop_s": ("--graceful-stop", 0, MAX_DURATION_S, False, False, "s"),
    "seed": ("--seed", 0, 2**63 - 1, True, False, ""),
    "break_error_rate": ("--break-error-rate", 0, 1, False, True, ""),
    "break_p95_ms": ("--break-p95", 0, MAX_DURATION_S * 1000, False, True, "ms"),
    "max_head_bytes": ("--max-head-size", 1024, 1 << 30, True, False, "B"),
    "max_body_bytes": ("--max-body-size", 1, 1 << 40, True, False, "B"),
    "max_decoded_bytes": ("--max-decoded-size", 1, 1 << 40, True, False, "B"),
    "max_names": ("--max-names", 1, MAX_NAMES, True, False, ""),
    "max_redirects": ("--max-redirects", 0, 100, True, False, ""),
    "workers": ("--workers", 1, MAX_WORKERS, True, False, ""),
    "metrics_port": ("--metrics-port", 0, 65535, True, False, ""),
    "baseline_runs": ("--baseline-runs", 1, 1000, True, False, ""),
}


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """A value quoted for a message: repr (so control characters show), URL passwords
    masked, at most ``limit`` characters (a line's worth by default)."""
    text = redact(value) if isinstance(value, str) and "@" in value else value
    r = repr(text)
    return r if len(r) <= limit else f"{r[:limit - 5]}…{r[-1]} ({len(str(value)):,} characters)"


def _bound(v: float, unit: str) -> str:
    if unit == "s":
        if v >= 86_400 and v % 86_400 == 0:
            return f"{v / 86_400:g} days"
        return f"{v * 1000:g}ms" if 0 < v < 1 else f"{v:g}s"
    if unit == "B":
        for suffix, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if v >= size and v % size == 0:
                return f"{v / size:g}{suffix}"
        return f"{v:g} bytes"
    if unit == "ms":
        return _bound(v / 1000, "s") if v else "0ms"
    return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"


def number(name: str, value: object, *, text: object = None) -> int | float:
    """``value`` (text from the command line or the environment, or a number from a
    scenario's options) as the number ``name`` holds, checked against its documented
    bounds; a :class:`UsageError` naming the option and ``text`` (default: ``value``) otherwise."""
    option, lo, hi, whole, lo_excluded, unit = _NUMBERS[name]
    what = shown(value if text is None else text)
    kind = {"s": "a duration", "B": "a size", "ms": "a duration"}.get(unit, "a whole number" if whole else "a number")
    span = (f"above {_bound(lo, unit)} and at most {_bound(hi, unit)}" if lo_excluded
            else f"from {_bound(lo, unit)} to {_bound(hi, unit)}")
    if unit == "/s":
        span += " per second"
    problem = UsageError(f"{option} must be {kind} {span}, not {what}")
    if isinstance(value, bool):
        raise problem
    n: int | float
    if isinstance(value, (int, float)):
        n = value
    elif isinstance(value, str):
        s = value.strip().replace("_", "")
        try:
            n = int(s) if whole else float(s)
        except ValueError:
            raise problem from None
    else:
        raise problem
    if isinstance(n, float):
        if not math.isfinite(n) or (whole and not n.is_integer()):
            raise problem
        if whole:
            n = int(n)
    if n < lo or n > hi or (lo_excluded and n == lo):
        raise problem
    return n


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """Seconds from ``30s``, ``5m``, ``1h30m``, ``250ms`` or a bare number of seconds;
    finite, not negative and at most :data:`MAX_DURATION_S`."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UsageError(f"{what} {shown(text)} is not a duration; use forms like 30s, 5m, 1h30m or 250ms")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = text.strip().lower()
        try:
            value = float(s)
        except ValueError:
            pos = 0
            value = 0.0
            for m in _DURATION_PART.finditer(s):
                if m.start() != pos:
                    break
                value += float(m.group(1)) * _UNIT_S[m.group(2)]
                pos = m.end()
            if pos != len(s) or not s:
                raise UsageError(
                    f"{what} {shown(text)} is not a duration; use forms like 30s, 5m, 1h30m or 250ms"
                ) from None
    if not math.isfinite(value):
        raise UsageError(f"{what} {shown(text)} is not a finite duration")
    if value < 0:
        raise UsageError(f"{what} {shown(text)} must not be negative")
    if value > MAX_DURATION_S:
        raise UsageError(f"{what} {shown(text)} is longer than {_bound(MAX_DURATION_S, 's')}, the most loadgen accepts")
    return value


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", re.IGNORECASE)
_SIZE_UNIT = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_size(text: str | int, *, what: str = "size") -> int:
    """Bytes from ``64KiB``, ``10MB``, ``1GiB`` or a plain number of bytes (units are
    case-insensitive; KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    m = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise UsageError(f"{what} {shown(text)} is not a size; use forms like 64KiB, 10MB, 1GiB or a number of bytes")
    return int(float(m.group(1)) * _SIZE_UNIT[(m.group(2) or "b").lower()])


@dataclass(frozen=True)
class Stage:
    """Move linearly to ``target`` (rate or users) over ``duration_s`` seconds."""

    duration_s: float
    target: float


def parse_stages(text: str) -> tuple[Stage, ...]:
    """Stages from ``30s:100,1m:500,30s:0`` (duration:target, comma separated)."""
    stages = []
    parts = text.split(",")
    if len(parts) > MAX_STAGES:
        raise UsageError(f"--stages holds {len(parts):,} stages; at most {MAX_STAGES:,} are accepted")
    for part in parts:
        part = part.strip()
        if not part:
            continue
        dur, sep, target = part.partition(":")
        if not sep:
            raise UsageError(f"stage {shown(part)} must be DURATION:TARGET, for example 30s:100")
        try:
            value = float(target)
        except ValueError:
            raise UsageError(f"stage {shown(part)} has a target that is not a number") from None
        if not math.isfinite(value) or not 0 <= value <= MAX_RATE:
            raise UsageError(f"stage {shown(part)} must have a target from 0 to {_bound(MAX_RATE, '')}")
        stages.append(Stage(parse_duration(dur, what=f"stage {shown(part)} duration"), value))
    if not stages:
        raise UsageError(f"--stages {shown(text)} holds no stage; use forms like 30s:100,1m:500,30s:0")
    if sum(s.duration_s for s in stages) > MAX_DURATION_S:
        raise UsageError(f"--stages {shown(text)} last longer than {_bound(MAX_DURATION_S, 's')}, the most loadgen accepts")
    return tuple(stages)


_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def parse_url(url: str, *, what: str = "URL") -> str:
    """Check an http(s) URL with a valid host and port, nothing a request line cannot
    carry (spaces, control characters, non-ASCII) and at most :data:`MAX_URL_CHARS`;
    return it unchanged. Messages mask any password in it."""
    if not isinstance(url, str) or not url:
        raise UsageError(f"{what} {shown(url)} is not an http:// or https:// URL with a host")
    if len(url) > MAX_URL_CHARS:
        raise UsageError(f"{what} {shown(url)} is longer than {MAX_URL_CHARS:,} characters, the most loadgen sends")
    bad = next((c for c in url if c <= " " or c == "\x7f"), None)
    if bad is not None:
        raise UsageError(f"{what} {shown(url)} holds {bad!r}, which a request line cannot carry; percent-encode it")
    if not url.isascii():
        raise UsageError(f"{what} {shown(url)} holds characters outside ASCII; percent-encode them (and use the "
                         "punycode form of an international host name)")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"{what} {shown(url)} is not a valid URL ({exc})") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"{what} {shown(url)} is not an http:// or https:// URL with a host")
    if port == 0:
        raise UsageError(f"{what} {shown(url)} has port 0; a port is from 1 to 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise UsageError(f"{what} {shown(url)} has an invalid host name {shown(host)}") from None
    return url


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_method(method: str) -> str:
    """An HTTP method (a token, RFC 9110 §9.1), upper-cased."""
    if not _TOKEN.fullmatch(method) or len(method) > MAX_METHOD_CHARS:
        raise UsageError(f"--method {shown(method)} is not an HTTP method (letters such as GET or POST)")
    return method.upper()


def parse_header(item: str) -> tuple[str, str]:
    """``Name: value`` as (name, value): a token name and a value a request can carry
    (no line break or other control character, Latin-1 only). Messages never quote
    the value: it may be a credential."""
    name, sep, value = item.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise UsageError(f"--header {shown(item if len(item) < 40 else item[:40])} must look like 'Name: value'")
    if not _TOKEN.fullmatch(name) or len(name) > 256:
        raise UsageError(f"--header name {shown(name)} may hold only letters, digits and !#$%&'*+-.^_`|~")
    if len(item) > MAX_HEADER_CHARS:
        raise UsageError(f"--header {name}: the value is longer than {MAX_HEADER_CHARS:,} characters")
    if any((c < " " and c != "\t") or c == "\x7f" for c in value):
        raise UsageError(f"--header {name}: the value holds a line break or another control character, "
                         "which would split the request")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise UsageError(f"--header {name}: the value holds characters outside Latin-1, which a header cannot "
                         "carry; percent-encode them") from None
    return name, value


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, validated; built by the CLI from options, env and scenario defaults."""

    host: str | None = None
    model: Model = "closed"
    users: int = 10
    spawn_rate: float = 10.0
    run_time_s: float = 10.0
    rate: float | None = None
    stages: tuple[Stage, ...] = ()
    arrival: Arrival = "constant"
    max_inflight: int = 1000
    preallocated_users: int | None = None  # open model: users started before the clock (None: 10 ms of the peak rate)
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    graceful_stop_s: float = 10.0
    test_type: str = "load"
    app_version: str | None = None
    seed: int | None = None
    summary_json: str | None = None
    quiet: bool = False
    # stress test: a step "breaks" when its error rate or p95 crosses these
    break_error_rate: float = 0.05
    break_p95_ms: float = 1000.0
    # response size limits (loadgen.http.limits.Limits) and the cap on distinct endpoint names
    max_head_bytes: int = _HEAD_BYTES
    max_body_bytes: int = _BODY_BYTES
    max_decoded_bytes: int = _DECODED_BYTES
    max_names: int = DEFAULT_MAX_NAMES
    # HTTP: how connections open (loadgen.http.connector) and what a call follows
    insecure: bool = False
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    resolve: tuple[str, ...] = ()  # HOST:PORT:ADDR, as curl's --resolve
    proxy: str | None = None  # else HTTP_PROXY, HTTPS_PROXY, NO_PROXY from the environment
    http2: str = "off"  # off, h2 (ALPN on https), h2c (also prior knowledge on http)
    max_redirects: int = 10
    # which tasks run: those carrying one of ``tags`` (none: every task), none of ``exclude_tags``
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    # --run-time was given (not its default): it then bounds a run a scenario's LoadShape drives
    run_time_given: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in ("open", "closed"):
            raise UsageError(f"--model {shown(self.model)} must be open or closed")
        for name in _NUMBERS:
            value = getattr(self, name, None)
            if value is not None:
                number(name, value)
        if self.run_time_s <= 0 and not self.stages:
            raise UsageError("--run-time must be longer than zero")
        if self.model == "open" and self.rate is None and not self.stages:
            raise UsageError("the open model needs --rate or --stages")
        if self.arrival not in ("constant", "poisson"):
            raise UsageError(f"--arrival must be constant or poisson, not {shown(self.arrival)}")
        if self.test_type not in TEST_TYPES:
            raise UsageError(
                f"--test-type {shown(self.test_type)} is not one of {', '.join(TEST_TYPES)}"
            )
        if self.host is not None:
            parse_url(self.host, what="--host")
        if self.http2 not in ("off", "h2", "h2c"):
            raise UsageError(f"--http2 must be off, h2 or h2c, not {shown(self.http2)}")

    @property
    def duration_s(self) -> float:
        """Planned length of the run: the stages' sum when stages are given."""
        if self.stages:
            return sum(s.duration_s for s in self.stages)
        return self.run_time_s

    def to_json(self) -> ConfigJson:
        """Every field as JSON values, the one encoding of a configuration (workers' jobs,
        stored runs); the host as given: a caller storing it masks its password."""
        doc: ConfigJson = dataclasses.asdict(self)
        doc["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> RunConfig:
        """The configuration :meth:`to_json` gave, validated again. Keys this version does
        not know are passed over (a stored run also holds ``adhoc``; a newer loadgen may
        store more), and missing ones take their defaults (runs stored before they existed)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in doc.items() if k in known}
        stages = kw.get("stages") or ()
        kw["stages"] = tuple(Stage(**s) for s in stages)  # type: ignore[union-attr]
        for name in ("resolve", "tags", "exclude_tags"):
            if name in kw:
                kw[name] = tuple(kw[name] or ())  # type: ignore[arg-type]
        return cls(**kw)  # type: ignore[arg-type]
