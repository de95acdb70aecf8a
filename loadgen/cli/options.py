"""The options of ``loadgen run``, in one table, and the one rule that resolves them.

Each :class:`Option` says where its value may come from (a flag, environment
variables: the old Locust runner's names for the first six, common CI names
such as ``GIT_COMMIT``, ``LOADGEN_*`` for the rest; a key of a scenario file's
``options``), its default, how it is
parsed and its help. The rule (:class:`OptionValues`): the command line, then
the environment (typer reads the variables the table names), then the
scenario's ``options``, then the default. A repeatable option with a scenario
key adds to the scenario's list instead of replacing it. ``--help``, the
scenario's allowed keys and the README's option table all follow from here.

No typer here: scenario loading, in worker processes too, reads :data:`OPTION_KEYS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from ..config import DEFAULT_MAX_NAMES, RunConfig
from ..store.url import DEFAULT_DB_URL
from ..tags import parse_tags
from . import parsers as p

T = TypeVar("T")
Kind = Literal["text", "flag", "list"]


@dataclass(frozen=True, eq=False)
class Option(Generic[T]):
    """One option; ``default`` is what a user would have typed, parsed like their value
    (an empty one: the parser knows what no value means, e.g. read the environment)."""

    flags: tuple[str, ...]  # the long flag first: it names the option in messages
    help: str  # as --help shows it
    parse: p.Parser[T] = p.as_given  # type: ignore[assignment]
    env: tuple[str, ...] = ()  # typer reads these when the flag is not given, the first set one wins
    key: str | None = None  # the key of a scenario file's ``options``
    default: object = None
    kind: Kind = "text"  # "flag": a switch; "list": repeatable
    typer_default: bool = False  # typer holds the default, so --help shows it
    parser_env: tuple[str, ...] = ()  # variables the parser itself reads (its help names them)
    documented_default: str | None = None  # the README's default where ``default`` is not it

    @property
    def name(self) -> str:
        """The parameter typer passes the value by."""
        return self.flags[0].lstrip("-").replace("-", "_")


def _opt(*flags: str, help: str, parse: p.Parser[T] = p.as_given,  # type: ignore[assignment]
         **kw: object) -> Option[T]:
    return Option(flags, help, parse, **kw)  # type: ignore[arg-type]


HOST = _opt("--host", env=("TARGET_HOST",), key="host", parse=p.url, help="Target base URL.",
            documented_default="scenario's host")
USERS = _opt("--users", env=("USERS",), key="users", default=10, parse=p.bounded("users"),
             help="Closed model: concurrent users.")
SPAWN_RATE = _opt("--spawn-rate", env=("SPAWN_RATE",), key="spawn_rate", default=10.0, parse=p.bounded("spawn_rate"),
                  help="Users started per second.")
RUN_TIME = _opt("--run-time", env=("RUN_TIME",), key="run_time", default="10s", parse=p.duration("run_time_s"),
                help="Length: 30s, 5m, 1h30m.")
APP_VERSION = _opt("--app-version", env=("APP_VERSION",), help="Version of the app under test.")
TEST_TYPE = _opt("--test-type", env=("TEST_TYPE",), key="test_type", default="load",
                 help="load, stress, soak or spike.")
RATE = _opt("--rate", env=("LOADGEN_RATE",), key="rate", parse=p.bounded("rate"),
            help="Open model: iterations per second.")
STAGES = _opt("--stages", env=("LOADGEN_STAGES",), key="stages", parse=p.stages,
              help="Ramping stages, e.g. 30s:100,1m:500,30s:0.")
ARRIVAL = _opt("--arrival", env=("LOADGEN_ARRIVAL",), key="arrival", default="constant",
               help="Open model arrivals: constant or poisson.")
MODEL = _opt("--model", env=("LOADGEN_MODEL",), help="open or closed (default: open when --rate is given).")
MAX_INFLIGHT = _opt("--max-inflight", env=("LOADGEN_MAX_INFLIGHT",), key="max_inflight", default=1000,
                    parse=p.bounded("max_inflight"),
                    help="Open model: most iterations in flight; arrivals beyond are dropped and counted.")
TIMEOUT = _opt("--timeout", env=("LOADGEN_TIMEOUT",), key="timeout", default="60s", parse=p.duration("timeout_s"),
               help="Request timeout (default 60s).")
CONNECT_TIMEOUT = _opt("--connect-timeout", env=("LOADGEN_CONNECT_TIMEOUT",), default="10s",
                       parse=p.duration("connect_timeout_s"), help="Connect timeout (default 10s).")
GRACEFUL_STOP = _opt("--graceful-stop", env=("LOADGEN_GRACEFUL_STOP",), key="graceful_stop", default="10s",
                     parse=p.duration("graceful_stop_s"),
                     help="How long in-flight iterations may finish at the end (default 10s).")
SUMMARY_JSON = _opt("--summary-json", env=("LOADGEN_SUMMARY_JSON",), help="Write the summary JSON here.")
SEED = _opt("--seed", env=("LOADGEN_SEED",), parse=p.bounded("seed"),
            help="Seed for Poisson arrivals, task picks and think times.")
URL = _opt("--url", parse=p.url, help="Ad-hoc mode: the one URL to load (no scenario file).")
METHOD = _opt("--method", default="GET", typer_default=True, parse=p.method, help="Ad-hoc mode: HTTP method.")
HEADER = _opt("--header", "-H", kind="list", parse=p.headers, help="Ad-hoc mode: 'Name: value' (repeatable).")
BODY = _opt("--body", parse=p.body, help="Ad-hoc mode: request body (prefix @ to read a file).")
BREAK_ERROR_RATE = _opt("--break-error-rate", default=0.05, parse=p.bounded("break_error_rate"),
                        help="Stress: error rate at which a step breaks (default 0.05).")
BREAK_P95 = _opt("--break-p95", default="1s", parse=p.duration("break_p95_ms", scale=1000.0),
                 help="Stress: p95 at which a step breaks (default 1s).")
QUIET = _opt("--quiet", "-q", kind="flag", default=False, help="No live display.")
DB = _opt("--db", env=("LOADGEN_DB_URL", "DATABASE_URL"), default=DEFAULT_DB_URL, parse=p.database,
          help="Results store: postgresql://… or sqlite:///FILE (default sqlite:///loadgen.db); 'none' stores nothing.")
SPOOL_DIR = _opt("--spool-dir", env=("LOADGEN_SPOOL_DIR",), documented_default="~/.local/state/loadgen/spool",
                 help="Where a run is journaled until it is in the database (default ~/.local/state/loadgen/spool).")
ENVIRONMENT = _opt("--environment", env=("LOADGEN_ENVIRONMENT",),
                   help="Environment label stored with the run (staging, production, …).")
GIT_COMMIT = _opt("--git-commit", env=("GIT_COMMIT",), documented_default="GITHUB_SHA, or git rev-parse HEAD",
                  help="Commit stored with the run (default: GITHUB_SHA, or git rev-parse HEAD).")
THRESHOLD = _opt("--threshold", key="thresholds", kind="list", parse=p.criteria,
                 help="Pass/fail criterion, e.g. 'p95<300ms', 'error_rate<1%', 'GET /api/x: p99<1s' (repeatable); "
                      "a failure exits 1.")
ABORT_ON_FAIL = _opt("--abort-on-fail", kind="flag", default=False,
                     help="Check thresholds every second and stop the run at the first failure.")
BASELINE_VERSION = _opt("--baseline-version", env=("BASELINE_VERSION",),
                        help="Compare the run with the last runs of this app version.")
FAIL_ON_REGRESSION = _opt("--fail-on-regression", env=("FAIL_ON_REGRESSION",), kind="flag", default=False,
                          help="Exit 1 when the comparison finds a regression.")
THRESHOLDS_FILE = _opt("--thresholds-file", env=("LOADGEN_THRESHOLDS_FILE",), default="", parse=p.tolerances,
                       documented_default="defaults below",
                       help="Regression thresholds (JSON, // comments allowed) for the comparison.")
BASELINE_RUNS = _opt("--baseline-runs", parse=p.bounded("baseline_runs"), documented_default="3",
                     help="How many of the baseline version's latest runs to compare against (default 3).")
METRICS_PORT = _opt("--metrics-port", env=("LOADGEN_METRICS_PORT",), parse=p.bounded("metrics_port"),
                    documented_default="off",
                    help="Serve Prometheus /metrics on this port during the run (9646 is the project's).")
METRICS_ADDR = _opt("--metrics-addr", env=("LOADGEN_METRICS_ADDR",), default="127.0.0.1", typer_default=True,
                    help="Address /metrics binds to.")
METRICS_GRACE = _opt("--metrics-grace", env=("LOADGEN_METRICS_GRACE",), default="15s", typer_default=True,
                     parse=p.seconds, help="Keep /metrics up after the run until it is scraped, at most this long.")
MONITOR = _opt("--monitor", key="monitor", kind="list", parse=p.services,
               help="A service's resources to sample: LABEL=pid:N, LABEL=name:PROC, LABEL=cmd:REGEX (repeatable).")
QUEUE = _opt("--queue", key="queues", kind="list", parse=p.queues,
             help="A queue to sample: LABEL=prometheus:URL, LABEL=redis://HOST/DB/list/KEY, "
                  "LABEL=rabbitmq:http://U:P@HOST:15672/VHOST/Q (repeatable).")
COLLECT_INTERVAL = _opt("--collect-interval", env=("LOADGEN_COLLECT_INTERVAL",), default="1s", typer_default=True,
                        parse=p.interval, help="How often the collectors sample.")
WORKERS = _opt("--workers", env=("LOADGEN_WORKERS",), default="1", parse=p.workers,
               help="Worker processes on this host, each with its own event loop; 'auto' = one per core.")
REPORT = _opt("--report", env=("LOADGEN_REPORT",), help="Write the HTML report of the run here at its end.")
SHARD = _opt("--shard", default="", parse=p.shard,
             parser_env=("LOADGEN_SHARD", "JOB_COMPLETION_INDEX", "LOADGEN_SHARDS"),
             help="This process is shard I/N of a run split across hosts "
                  "(also LOADGEN_SHARD, or JOB_COMPLETION_INDEX with LOADGEN_SHARDS).")
RUN_ID = _opt("--run-id", env=("LOADGEN_RUN_ID",), parse=p.run_id, help="The run's id (shards of one run share it).")
SHARD_WAIT = _opt("--shard-wait", env=("LOADGEN_SHARD_WAIT",), default="10m", typer_default=True, parse=p.seconds,
                  help="How long a shard waits for the others to register.")
ON_WORKER_FAILURE = _opt("--on-worker-failure", env=("LOADGEN_ON_WORKER_FAILURE",), default="continue",
                         typer_default=True, parse=p.choice("continue", "stop"),
                         help="When a worker dies: continue without its share, or stop the run.")
MAX_HEAD_SIZE = _opt("--max-head-size", env=("LOADGEN_MAX_HEAD_SIZE",), default=RunConfig.max_head_bytes,
                     parse=p.size("max_head_bytes"),
                     help="Largest response head (status line and headers) read, e.g. 64KiB (default 1MiB); "
                          "a larger one is a too_large error.")
MAX_BODY_SIZE = _opt("--max-body-size", env=("LOADGEN_MAX_BODY_SIZE",), default=RunConfig.max_body_bytes,
                     parse=p.size("max_body_bytes"),
                     help="Largest response body read as received, e.g. 10MB (default 64MiB); a larger one is a "
                          "too_large error.")
MAX_DECODED_SIZE = _opt("--max-decoded-size", env=("LOADGEN_MAX_DECODED_SIZE",), default=RunConfig.max_decoded_bytes,
                        parse=p.size("max_decoded_bytes"),
                        help="Largest body after decompression (r.content, r.text), e.g. 100MiB (default 64MiB).")
MAX_NAMES = _opt("--max-names", env=("LOADGEN_MAX_NAMES",), default=DEFAULT_MAX_NAMES, parse=p.bounded("max_names"),
                 help="Most distinct endpoint names recorded (default 200); the rest are folded into one row: "
                      "give requests a name=.")
INSECURE = _opt("--insecure", "-k", env=("LOADGEN_INSECURE",), key="insecure", kind="flag", default=False,
                help="Accept any TLS certificate (curl -k, k6 insecureSkipTLSVerify): for staging with its own CA, "
                     "prefer --ca-bundle.")
CA_BUNDLE = _opt("--ca-bundle", env=("LOADGEN_CA_BUNDLE",), key="ca_bundle", parse=p.readable_file,
                 help="PEM file of the CAs to trust instead of the system's.")
CLIENT_CERT = _opt("--client-cert", env=("LOADGEN_CLIENT_CERT",), key="client_cert", parse=p.readable_file,
                   help="PEM client certificate for mutual TLS (it may hold the key too).")
CLIENT_KEY = _opt("--client-key", env=("LOADGEN_CLIENT_KEY",), key="client_key", parse=p.readable_file,
                  help="PEM private key of --client-cert.")
RESOLVE = _opt("--resolve", key="resolve", kind="list", parse=p.resolve,
               help="HOST:PORT:ADDR: connect to ADDR for HOST:PORT, with its name kept for SNI, certificate and Host "
                    "(as curl; repeatable).")
PROXY = _opt("--proxy", env=("LOADGEN_PROXY",), key="proxy", parse=p.proxy,
             help="Proxy for http and https (else HTTP_PROXY, HTTPS_PROXY, ALL_PROXY; NO_PROXY applies to both).")
HTTP2 = _opt("--http2", env=("LOADGEN_HTTP2",), key="http2", default="off", parse=p.choice("off", "h2", "h2c"),
             help="off; h2: HTTP/2 offered by ALPN on https; h2c: also HTTP/2 with prior knowledge on http.")
MAX_REDIRECTS = _opt("--max-redirects", env=("LOADGEN_MAX_REDIRECTS",), key="max_redirects", default=10,
                     parse=p.bounded("max_redirects"),
                     help="Redirects a call follows (default 10); more is a too_many_redirects error; 0 records the "
                          "3xx.")
TAGS = _opt("--tags", env=("LOADGEN_TAGS",), key="tags", parse=parse_tags,
            help="Run only the tasks tagged with one of these (@tag), e.g. checkout,search.")
EXCLUDE_TAGS = _opt("--exclude-tags", env=("LOADGEN_EXCLUDE_TAGS",), key="exclude_tags", parse=parse_tags,
                    help="Do not run the tasks tagged with one of these.")
NOTIFY = _opt("--notify", env=("LOADGEN_NOTIFY",), kind="list", parse=p.webhooks,
              help="Send the run's findings to this webhook: Slack, Microsoft Teams, or any URL as JSON "
                   "(repeatable; LOADGEN_NOTIFY holds URLs separated by spaces). The URL is a secret: never shown.")
NOTIFY_ON = _opt("--notify-on", env=("LOADGEN_NOTIFY_ON",), default="fail", typer_default=True,
                 parse=p.choice("fail", "regression", "always"),
                 help="When to notify: fail (a threshold failed, a regression was found, or the run could not be "
                      "carried out), regression (only a regression), always.")
MARKDOWN = _opt("--markdown", env=("LOADGEN_MARKDOWN",),
                help="Write the run's markdown summary here (also appended to GITHUB_STEP_SUMMARY when it is set).")
JUNIT = _opt("--junit", env=("LOADGEN_JUNIT",),
             help="Write JUnit XML here: a test case per threshold and per compared metric.")
SCENARIO_NAME = _opt("--scenario-name", env=("LOADGEN_SCENARIO_NAME",), key="name", parse=p.scenario_name,
                     documented_default="the file's name; METHOD /path ad hoc",
                     help="The scenario's identity, which the comparison matches runs on (default: the scenario's "
                          "options name, else the file's name; in ad-hoc mode the method and path).")
CONTROL_TOKEN = _opt("--control-token", env=("LOADGEN_CONTROL_TOKEN",),
                     help="Allow the control API on the metrics port (stop, rate, users) with this bearer token; "
                          "without it control is allowed only when the port is bound to loopback.")

#: Every option of ``loadgen run``, in the order --help lists them.
RUN_OPTIONS: tuple[Option[object], ...] = (
    HOST, USERS, SPAWN_RATE, RUN_TIME, APP_VERSION, TEST_TYPE, RATE, STAGES, ARRIVAL, MODEL, MAX_INFLIGHT, TIMEOUT,
    CONNECT_TIMEOUT, GRACEFUL_STOP, SUMMARY_JSON, SEED, URL, METHOD, HEADER, BODY, BREAK_ERROR_RATE, BREAK_P95, QUIET,
    DB, SPOOL_DIR, ENVIRONMENT, GIT_COMMIT, THRESHOLD, ABORT_ON_FAIL, BASELINE_VERSION, FAIL_ON_REGRESSION,
    THRESHOLDS_FILE, BASELINE_RUNS, METRICS_PORT, METRICS_ADDR, METRICS_GRACE, MONITOR, QUEUE, COLLECT_INTERVAL,
    WORKERS, REPORT, SHARD, RUN_ID, SHARD_WAIT, ON_WORKER_FAILURE, MAX_HEAD_SIZE, MAX_BODY_SIZE, MAX_DECODED_SIZE,
    MAX_NAMES, INSECURE, CA_BUNDLE, CLIENT_CERT, CLIENT_KEY, RESOLVE, PROXY, HTTP2, MAX_REDIRECTS, TAGS, EXCLUDE_TAGS,
    NOTIFY, NOTIFY_ON, MARKDOWN, JUNIT, SCENARIO_NAME, CONTROL_TOKEN,
)

#: The keys a scenario file's ``options`` may hold: the table's, and only those.
OPTION_KEYS = frozenset(o.key for o in RUN_OPTIONS if o.key is not None)


class OptionValues:
    """The options of one run, each resolved by the table's rule and parsed on first use.

    Parsing when a value is first asked for keeps an option the run does not use
    unchecked, and makes the order of the checks the order in which the run needs them.
    """

    def __init__(self, given: Mapping[str, object], scenario: Mapping[str, object],
                 defaults: Mapping[Option[object], object] | None = None) -> None:
        self._given = given  # typer's values by parameter name: the flag's, else its variable's
        self._scenario = scenario
        self._defaults = defaults or {}  # a scenario's own stand-ins for the table's defaults
        self._parsed: dict[str, object] = {}

    def chosen(self, option: Option[T]) -> object:
        """The value a user gave (command line, environment, scenario); None when none did."""
        value = self._given.get(option.name)
        if value is None and option.key is not None:
            value = self._scenario.get(option.key)
        return value

    def raw(self, option: Option[T]) -> object:
        """:meth:`chosen`, else the default; not parsed."""
        value = self.chosen(option)
        return self._defaults.get(option, option.default) if value is None else value

    def get(self, option: Option[T]) -> T | None:
        """Parsed; None where nobody gave a value and there is no default."""
        if option.name not in self._parsed:
            self._parsed[option.name] = self._parse(option)
        return self._parsed[option.name]  # type: ignore[return-value]

    def _parse(self, option: Option[T]) -> T | None:
        flag = option.flags[0]
        if option.kind == "list" and option.key is not None:
            # The scenario's list, then the command line's: a run needs both sets of criteria and collectors.
            in_file, given = self._scenario.get(option.key), self._given.get(option.name)
            return option.parse(in_file, flag) + option.parse(given, flag)  # type: ignore[operator]  # tuples
        value = self.raw(option)
        return None if value is None else option.parse(value, flag)
