"""The ``loadgen`` command line.

Options are resolved in one place, in this order: the command line, then the
environment (the old Locust runner's names: TARGET_HOST, USERS, SPAWN_RATE,
RUN_TIME, APP_VERSION, TEST_TYPE; LOADGEN_* for the rest), then the
scenario file's ``options``, then the defaults. Every
:class:`~loadgen.errors.LoadgenError` ends as one sentence on stderr and its
exit code; nothing a user can cause ends in a traceback.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Optional, TypeVar

import typer
from rich.console import Console

from ._version import __version__
from .config import (
    RunConfig,
    number,
    parse_duration,
    parse_header,
    parse_method,
    parse_size,
    parse_stages,
    parse_url,
    shown,
)
from .errors import EXIT_OK, LoadgenError, UsageError

__all__ = ["app", "main"]

app = typer.Typer(
    name="loadgen",
    help="An async HTTP load generator with honest latencies and a regression gate.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"loadgen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """loadgen: run load tests, see honest latencies, gate CI on regressions."""


F = TypeVar("F", bound=Callable[..., Any])


def _reports_errors(fn: F) -> F:
    """Turn a LoadgenError into one sentence on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LoadgenError as exc:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"loadgen: error: {exc}", markup=False, emoji=False
            )
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _duration(name: str, value: Any, option: str, scale: float = 1.0) -> float:
    """A duration option: parsed (finite, at most 30 days), then held to its own bounds
    (``scale`` 1000: the field holds milliseconds)."""
    return float(number(name, scale * parse_duration(value, what=option), text=value))


def _size(name: str, value: Any, option: str) -> int:
    return int(number(name, parse_size(value, what=option), text=value))


def _headers(items: list[str]) -> dict[str, str]:
    return dict(parse_header(item) for item in items)


@app.command()
@_reports_errors
def run(
    scenario_file: Optional[str] = typer.Argument(None, help="A scenario file (Python). Omit with --url."),
    host: Optional[str] = typer.Option(None, "--host", envvar="TARGET_HOST", help="Target base URL."),
    users: Optional[str] = typer.Option(None, "--users", envvar="USERS", help="Closed model: concurrent users."),
    spawn_rate: Optional[str] = typer.Option(None, "--spawn-rate", envvar="SPAWN_RATE", help="Users started per second."),
    run_time: Optional[str] = typer.Option(None, "--run-time", envvar="RUN_TIME", help="Length: 30s, 5m, 1h30m."),
    app_version: Optional[str] = typer.Option(None, "--app-version", envvar="APP_VERSION", help="Version of the app under test."),
    test_type: Optional[str] = typer.Option(None, "--test-type", envvar="TEST_TYPE", help="load, stress, soak or spike."),
    rate: Optional[str] = typer.Option(None, "--rate", envvar="LOADGEN_RATE", help="Open model: iterations per second."),
    stages: Optional[str] = typer.Option(None, "--stages", envvar="LOADGEN_STAGES", help="Ramping stages, e.g. 30s:100,1m:500,30s:0."),
    arrival: Optional[str] = typer.Option(None, "--arrival", envvar="LOADGEN_ARRIVAL", help="Open model arrivals: constant or poisson."),
    model: Optional[str] = typer.Option(None, "--model", envvar="LOADGEN_MODEL", help="open or closed (default: open when --rate is given)."),
    max_inflight: Optional[str] = typer.Option(None, "--max-inflight", envvar="LOADGEN_MAX_INFLIGHT", help="Open model: most iterations in flight; arrivals beyond are dropped and counted."),
    timeout: Optional[str] = typer.Option(None, "--timeout", envvar="LOADGEN_TIMEOUT", help="Request timeout (default 60s)."),
    connect_timeout: Optional[str] = typer.Option(None, "--connect-timeout", envvar="LOADGEN_CONNECT_TIMEOUT", help="Connect timeout (default 10s)."),
    graceful_stop: Optional[str] = typer.Option(None, "--graceful-stop", envvar="LOADGEN_GRACEFUL_STOP", help="How long in-flight iterations may finish at the end (default 10s)."),
    summary_json: Optional[str] = typer.Option(None, "--summary-json", envvar="LOADGEN_SUMMARY_JSON", help="Write the summary JSON here."),
    seed: Optional[str] = typer.Option(None, "--seed", envvar="LOADGEN_SEED", help="Seed for Poisson arrivals, task picks and think times."),
    url: Optional[str] = typer.Option(None, "--url", help="Ad-hoc mode: the one URL to load (no scenario file)."),
    method: str = typer.Option("GET", "--method", help="Ad-hoc mode: HTTP method."),
    header: list[str] = typer.Option([], "--header", "-H", help="Ad-hoc mode: 'Name: value' (repeatable)."),
    body: Optional[str] = typer.Option(None, "--body", help="Ad-hoc mode: request body (prefix @ to read a file)."),
    break_error_rate: Optional[str] = typer.Option(None, "--break-error-rate", help="Stress: error rate at which a step breaks (default 0.05)."),
    break_p95: Optional[str] = typer.Option(None, "--break-p95", help="Stress: p95 at which a step breaks (default 1s)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live display."),
    db: Optional[str] = typer.Option(None, "--db", envvar=["LOADGEN_DB_URL", "DATABASE_URL"], help="Results store: postgresql://… or sqlite:///FILE (default sqlite:///loadgen.db); 'none' stores nothing."),
    spool_dir: Optional[str] = typer.Option(None, "--spool-dir", envvar="LOADGEN_SPOOL_DIR", help="Where a run is journaled until it is in the database (default ~/.local/state/loadgen/spool)."),
    environment: Optional[str] = typer.Option(None, "--environment", envvar="LOADGEN_ENVIRONMENT", help="Environment label stored with the run (staging, production, …)."),
    git_commit: Optional[str] = typer.Option(None, "--git-commit", envvar="GIT_COMMIT", help="Commit stored with the run (default: GITHUB_SHA, or git rev-parse HEAD)."),
    threshold: list[str] = typer.Option([], "--threshold", help="Pass/fail criterion, e.g. 'p95<300ms', 'error_rate<1%', 'GET /api/x: p99<1s' (repeatable); a failure exits 1."),
    abort_on_fail: bool = typer.Option(False, "--abort-on-fail", help="Check thresholds every second and stop the run at the first failure."),
    baseline_version: Optional[str] = typer.Option(None, "--baseline-version", envvar="BASELINE_VERSION", help="Compare the run with the last runs of this app version."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", envvar="FAIL_ON_REGRESSION", help="Exit 1 when the comparison finds a regression."),
    thresholds_file: Optional[str] = typer.Option(None, "--thresholds-file", envvar="LOADGEN_THRESHOLDS_FILE", help="Regression thresholds (JSON, // comments allowed) for the comparison."),
    baseline_runs: Optional[str] = typer.Option(None, "--baseline-runs", help="How many of the baseline version's latest runs to compare against (default 3)."),
    metrics_port: Optional[str] = typer.Option(None, "--metrics-port", envvar="LOADGEN_METRICS_PORT", help="Serve Prometheus /metrics on this port during the run (9646 is the project's)."),
    metrics_addr: str = typer.Option("127.0.0.1", "--metrics-addr", envvar="LOADGEN_METRICS_ADDR", help="Address /metrics binds to."),
    metrics_grace: str = typer.Option("15s", "--metrics-grace", envvar="LOADGEN_METRICS_GRACE", help="Keep /metrics up after the run until it is scraped, at most this long."),
    monitor: list[str] = typer.Option([], "--monitor", help="A service's resources to sample: LABEL=pid:N, LABEL=name:PROC, LABEL=cmd:REGEX (repeatable)."),
    queue: list[str] = typer.Option([], "--queue", help="A queue to sample: LABEL=prometheus:URL, LABEL=redis://HOST/DB/list/KEY, LABEL=rabbitmq:http://U:P@HOST:15672/VHOST/Q (repeatable)."),
    collect_interval: str = typer.Option("1s", "--collect-interval", envvar="LOADGEN_COLLECT_INTERVAL", help="How often the collectors sample."),
    workers: Optional[str] = typer.Option(None, "--workers", envvar="LOADGEN_WORKERS", help="Worker processes on this host, each with its own event loop; 'auto' = one per core."),
    report: Optional[str] = typer.Option(None, "--report", envvar="LOADGEN_REPORT", help="Write the HTML report of the run here at its end."),
    shard: Optional[str] = typer.Option(None, "--shard", help="This process is shard I/N of a run split across hosts (also LOADGEN_SHARD, or JOB_COMPLETION_INDEX with LOADGEN_SHARDS)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", envvar="LOADGEN_RUN_ID", help="The run's id (shards of one run share it)."),
    shard_wait: str = typer.Option("10m", "--shard-wait", envvar="LOADGEN_SHARD_WAIT", help="How long a shard waits for the others to register."),
    on_worker_failure: str = typer.Option("continue", "--on-worker-failure", envvar="LOADGEN_ON_WORKER_FAILURE", help="When a worker dies: continue without its share, or stop the run."),
    max_head_size: Optional[str] = typer.Option(None, "--max-head-size", envvar="LOADGEN_MAX_HEAD_SIZE", help="Largest response head (status line and headers) read, e.g. 64KiB (default 1MiB); a larger one is a too_large error."),
    max_body_size: Optional[str] = typer.Option(None, "--max-body-size", envvar="LOADGEN_MAX_BODY_SIZE", help="Largest response body read as received, e.g. 10MB (default 64MiB); a larger one is a too_large error."),
    max_decoded_size: Optional[str] = typer.Option(None, "--max-decoded-size", envvar="LOADGEN_MAX_DECODED_SIZE", help="Largest body after decompression (r.content, r.text), e.g. 100MiB (default 64MiB)."),
    max_names: Optional[str] = typer.Option(None, "--max-names", envvar="LOADGEN_MAX_NAMES", help="Most distinct endpoint names recorded (default 200); the rest are folded into one row: give requests a name=."),
) -> None:
    """Run a load test from a scenario file, or against one --url.

    Exit codes: 0 passed; 1 a threshold or the regression gate failed; 2 bad
    usage (options, scenario file, an unwritable output path; found before
    anything runs); 3 the run could not be carried out: not one request got
    an HTTP response (every connect refused or timed out, every connection
    reset, only garbage in reply), or the run could be neither stored nor
    spooled.
    """
    from .engine import AdHocRequest
    from .scenario import load_scenario

    if scenario_file and url is not None:
        raise UsageError("give a scenario file or --url, not both")
    if not scenario_file and url is None:
        raise UsageError("give a scenario file to run, or --url for ad-hoc mode")
    scenario = load_scenario(scenario_file) if scenario_file else None
    opts: dict[str, Any] = dict(scenario.options) if scenario else {}

    h = _first(host, opts.get("host"), scenario.host if scenario else None)
    if h is not None:
        h = parse_url(h, what="--host")
    if url is not None:
        parse_url(url, what="--url")
    verb = parse_method(method)
    request_headers = _headers(header)
    r = _first(rate, opts.get("rate"))
    st = _first(stages, opts.get("stages"))
    u = _first(users, opts.get("users"))
    m = model or ("open" if r is not None or (st is not None and u is None) else "closed")
    data = b""
    if body is not None:
        if body.startswith("@"):
            try:
                with open(body[1:], "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                raise UsageError(f"--body file {body[1:]} cannot be read: {exc.strerror}") from None
        else:
            data = body.encode()
    if st is not None and not isinstance(st, str):
        raise UsageError(f"stages must be text such as '30s:100,1m:500', not {shown(st)}")
    defaults = RunConfig()  # the response limits' and the name cap's defaults
    config = RunConfig(
        host=h,
        model=m,  # type: ignore[arg-type]
        users=number("users", _first(u, 10)),  # type: ignore[arg-type]
        spawn_rate=number("spawn_rate", _first(spawn_rate, opts.get("spawn_rate"), 10.0)),
        run_time_s=_duration("run_time_s", _first(run_time, opts.get("run_time"), "10s"), "--run-time"),
        rate=number("rate", r) if r is not None else None,
        stages=parse_stages(st) if st else (),
        arrival=_first(arrival, opts.get("arrival"), "constant"),
        preallocated_users=number("users", u) if m == "open" and u is not None else None,  # type: ignore[arg-type]
        max_inflight=number("max_inflight", _first(max_inflight, opts.get("max_inflight"), 1000)),  # type: ignore[arg-type]
        timeout_s=_duration("timeout_s", _first(timeout, opts.get("timeout"), "60s"), "--timeout"),
        connect_timeout_s=_duration("connect_timeout_s", _first(connect_timeout, "10s"), "--connect-timeout"),
        graceful_stop_s=_duration("graceful_stop_s", _first(graceful_stop, opts.get("graceful_stop"), "10s"),
                                  "--graceful-stop"),
        test_type=_first(test_type, opts.get("test_type"), "load"),
        app_version=app_version,
        seed=number("seed", seed) if seed is not None else None,  # type: ignore[arg-type]
        summary_json=summary_json,
        quiet=quiet,
        break_error_rate=number("break_error_rate", _first(break_error_rate, 0.05)),
        break_p95_ms=_duration("break_p95_ms", _first(break_p95, "1s"), "--break-p95", scale=1000.0),
        max_head_bytes=_size("max_head_bytes", _first(max_head_size, defaults.max_head_bytes), "--max-head-size"),
        max_body_bytes=_size("max_body_bytes", _first(max_body_size, defaults.max_body_bytes), "--max-body-size"),
        max_decoded_bytes=_size("max_decoded_bytes", _first(max_decoded_size, defaults.max_decoded_bytes),
                                "--max-decoded-size"),
        max_names=number("max_names", _first(max_names, defaults.max_names)),  # type: ignore[arg-type]
    )
    if scenario is not None and config.host is None:
        raise UsageError(f"{scenario.path}: no host; pass --host, set TARGET_HOST, or set host on the User class")
    adhoc = (
        AdHocRequest(url=url, method=verb, headers=request_headers, body=data) if url else None
    )

    thresholds = _threshold_list(threshold, opts.get("thresholds"))
    reg_thresholds = _regression_thresholds(thresholds_file)
    n_baseline = number("baseline_runs", baseline_runs) if baseline_runs is not None else None
    store_opts = _store_options(db, spool_dir, environment, git_commit)
    from .shards import parse_shard

    sharding = parse_shard(shard)
    if run_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", run_id):
        raise UsageError(f"--run-id {run_id!r} must be letters, digits, '.', '_' or '-' (at most 63)")
    import dataclasses as _dcs

    store_opts = _dcs.replace(store_opts, run_id=run_id)
    if sharding is not None:
        if run_id is None:
            raise UsageError("--shard needs --run-id (or LOADGEN_RUN_ID): every shard of a run must name it")
        if store_opts.db is None:
            raise UsageError("--shard needs a results database (--db): the shards meet there")
        if workers not in (None, "1"):
            raise UsageError("--shard and --workers together are not supported yet; run one shard per process")
        store_opts = _dcs.replace(store_opts, shard=sharding[0], shards=sharding[1],
                                  shard_wait_s=parse_duration(shard_wait, what="--shard-wait"))
    if baseline_version and store_opts.db is None:
        raise UsageError("--baseline-version needs a results store; drop --db none")
    if report and store_opts.db is None:
        raise UsageError("--report is built from the results store; drop --db none")
    # Outputs are checked now, not after a run whose results they are meant to keep.
    if summary_json is not None:
        _check_writable(summary_json, "--summary-json")
    if report is not None:
        _check_writable(report, "--report")

    port = number("metrics_port", metrics_port) if metrics_port is not None else None
    observe = _observe_options(port, metrics_addr, metrics_grace, monitor, queue, collect_interval, opts)  # type: ignore[arg-type]
    from .coordinator import resolve_workers

    if on_worker_failure not in ("continue", "stop"):
        raise UsageError(f"--on-worker-failure must be continue or stop, not {shown(on_worker_failure)}")
    if workers is not None and workers.strip().lower() != "auto":
        number("workers", workers)
    import dataclasses as _dc

    observe = _dc.replace(observe, workers=resolve_workers(workers), on_worker_failure=on_worker_failure)

    console = _console()
    from .runner import GateOptions, execute
    from .store.url import redact

    target = url or config.host
    if not quiet:
        shown_target = redact(target) if target else target
        what = f"{scenario.path} against {shown_target}" if scenario else f"{verb} {shown_target}"
        load = (
            f"open model, {config.arrival} arrivals, " + (f"stages {st}" if config.stages else f"{config.rate:g}/s")
            if config.model == "open"
            else f"closed model, {config.users} users at {config.spawn_rate:g}/s"
        )
        console.print(f"loadgen {__version__}: {what}; {load}; {config.duration_s:g}s; test type {config.test_type}",
                      markup=False)
    outcome = execute(
        config,
        scenario=scenario,
        adhoc=adhoc,
        target=target,
        store=store_opts,
        gate=GateOptions(
            thresholds=thresholds,
            abort_on_fail=abort_on_fail,
            baseline_version=baseline_version,
            fail_on_regression=fail_on_regression,
            regression_thresholds=reg_thresholds,
            baseline_runs=n_baseline,  # type: ignore[arg-type]
        ),
        console=console,
        quiet=quiet,
        summary_json=summary_json,
        observe=observe,
    )
    if report:
        _run_report(report, store_opts, outcome, reg_thresholds, console)
    raise typer.Exit(outcome.exit_code)


def _check_writable(path: str, option: str) -> None:
    """Fail before the run, in one sentence, when an output file cannot be written."""
    from pathlib import Path

    p = Path(path).expanduser()
    try:
        if p.is_dir():
            raise UsageError(f"{option} {shown(path, 4200)} is a folder; name a file in it")
        existed = p.exists()
        with open(p, "ab"):
            pass
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option} {shown(path, 4200)} cannot be written: {why}") from None
    if not existed:
        p.unlink(missing_ok=True)  # written at the run's end; an empty file would look like a result


def _run_report(path: str, store: Any, outcome: Any, thresholds: Any, console: Console) -> None:
    """The report at the end of a run; a run that is not (yet) in the database cannot have one."""
    from rich.markup import escape

    from .reports import write_report

    if not outcome.stored:
        console.print(
            f"no report: run {outcome.run_id} is not in the database (yet); "
            f"once it is, run: loadgen report {outcome.run_id} -o {escape(path)}",
            soft_wrap=True,
        )
        return
    try:
        written = write_report(path, store.db, outcome.run_id, thresholds=thresholds)
    except LoadgenError as exc:
        # The run's verdict stands; the report failing must not change it.
        console.print(f"[yellow]warning:[/yellow] the report could not be written: {escape(str(exc))}",
                      soft_wrap=True)
        return
    console.print(f"report written to {escape(str(written))}", soft_wrap=True)


def _observe_options(port: int | None, addr: str, grace: str, monitor: list[str], queue: list[str],
                     interval: str, opts: dict[str, Any]) -> Any:
    from .collectors import parse_monitors, parse_queues
    from .runner import ObserveOptions

    services = parse_monitors(opts.get("monitor")) + parse_monitors(monitor)
    queues = parse_queues(opts.get("queues")) + parse_queues(queue)
    seen: set[str] = set()
    for spec in [*services, *queues]:
        if spec.label in seen:
            raise UsageError(f"the label {spec.label!r} is given twice (scenario options and command line)")
        seen.add(spec.label)
    every = parse_duration(interval, what="--collect-interval")
    if every <= 0:
        raise UsageError("--collect-interval must be positive")
    return ObserveOptions(
        metrics_port=port,
        metrics_addr=addr,
        metrics_grace_s=parse_duration(grace, what="--metrics-grace"),
        services=tuple(services),
        queues=tuple(queues),
        collect_interval_s=every,
    )


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    return console


def _threshold_list(cli: list[str], from_scenario: Any) -> tuple[Any, ...]:
    from .thresholds import parse_thresholds

    return parse_thresholds(from_scenario or ()) + parse_thresholds(cli)


def _regression_thresholds(path: str | None) -> Any:
    from .compare import Thresholds, load_thresholds

    return load_thresholds(path) if path else Thresholds()


def _db_url(db: str | None) -> Any:
    from .store.url import parse_db_url

    return parse_db_url(db)


def _store_options(db: str | None, spool_dir: str | None, environment: str | None, git_commit: str | None) -> Any:
    from pathlib import Path

    from .runner import StoreOptions
    from .store.spool import default_spool_dir

    url = None if db is not None and db.strip().lower() == "none" else _db_url(db)
    return StoreOptions(
        db=url,
        spool_dir=Path(spool_dir).expanduser() if spool_dir else default_spool_dir(),
        environment=environment,
        git_commit=git_commit,
    )


_DB_OPTION = typer.Option(None, "--db", envvar=["LOADGEN_DB_URL", "DATABASE_URL"], help="Results store: postgresql://… or sqlite:///FILE (default sqlite:///loadgen.db).")

db_app = typer.Typer(help="The results database.", no_args_is_help=True)
runs_app = typer.Typer(help="Browse stored runs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")


@db_app.command("migrate")
@_reports_errors
def db_migrate(db: Optional[str] = _DB_OPTION) -> None:
    """Create or upgrade the results schema (also done on first use)."""
    from .results import migrate

    url = _db_url(db)
    applied = migrate(url)
    if applied:
        print(f"{url.shown}: applied {', '.join(applied)}")
    else:
        print(f"{url.shown}: the schema is up to date")


@runs_app.command("list")
@_reports_errors
def runs_list(
    db: Optional[str] = _DB_OPTION,
    app_version: Optional[str] = typer.Option(None, "--app-version", help="Only runs of this app version."),
    limit: int = typer.Option(20, "--limit", help="At most this many runs."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array, newest first."),
) -> None:
    """List stored runs, newest first."""
    import orjson

    from .results import list_runs, print_runs, runs_json

    if limit < 1:
        raise UsageError("--limit must be at least 1")
    url = _db_url(db)
    rows = list_runs(url, app_version=app_version, limit=limit)
    if as_json:
        print(orjson.dumps(runs_json(rows), option=orjson.OPT_INDENT_2).decode())
    else:
        print_runs(rows, _console(), url.shown)


@runs_app.command("show")
@_reports_errors
def runs_show(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    db: Optional[str] = _DB_OPTION,
) -> None:
    """Show a stored run's summary table."""
    from .results import get_run
    from .summary import print_summary

    url = _db_url(db)
    run = get_run(url, run_ref)
    console = _console()
    console.print(
        f"run {run['id']}: app version {run['app_version'] or '-'}, {run['test_type']}, "
        f"{run['scenario'] or '-'} against {run['host'] or '-'}; status {run['status']}"
        + ("" if run["exit_code"] is None else f", exit code {run['exit_code']}"),
        markup=False,
    )
    if run["summary"] is None:
        console.print("this run has no summary: it did not finish (its intervals are stored)")
        return
    print_summary(run["summary"], console)


@runs_app.command("export")
@_reports_errors
def runs_export(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    db: Optional[str] = _DB_OPTION,
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Print a stored run's summary JSON (the document --summary-json writes)."""
    import orjson

    from .results import get_run

    run = get_run(_db_url(db), run_ref)
    if run["summary"] is None:
        raise UsageError(f"run {run['id']} did not finish, so it has no summary")
    data = orjson.dumps(run["summary"], option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    if output:
        try:
            with open(output, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise UsageError(f"--output {output} cannot be written: {exc.strerror}") from None
    else:
        print(data.decode())


@app.command("compare")
@_reports_errors
def compare_cmd(
    baseline_version: str = typer.Option(..., "--baseline-version", envvar="BASELINE_VERSION", help="The app version to compare against."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="The candidate run (id, prefix or 'latest'; default latest)."),
    candidate_version: Optional[str] = typer.Option(None, "--candidate-version", help="Use the latest completed run of this version as the candidate."),
    thresholds_file: Optional[str] = typer.Option(None, "--thresholds", "--thresholds-file", envvar="LOADGEN_THRESHOLDS_FILE", help="Regression thresholds (JSON, // comments allowed)."),
    baseline_runs: Optional[int] = typer.Option(None, "--baseline-runs", help="How many of the baseline version's latest runs (default 3)."),
    db: Optional[str] = _DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare a run with a baseline version; exit 1 on a regression."""
    import orjson

    from .errors import EXIT_FAILED
    from .results import run_comparison

    if candidate and candidate_version:
        raise UsageError("give --candidate or --candidate-version, not both")
    if baseline_runs is not None and baseline_runs < 1:
        raise UsageError("--baseline-runs must be at least 1")
    th = _regression_thresholds(thresholds_file)
    result = run_comparison(
        _db_url(db),
        baseline_version=baseline_version,
        candidate=candidate,
        candidate_version=candidate_version,
        thresholds=th,
        baseline_runs=baseline_runs,
        console=_console(),
        as_json=as_json,
    )
    if as_json:
        print(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
    raise typer.Exit(EXIT_FAILED if result.verdict == "regression" else EXIT_OK)


@app.command("report")
@_reports_errors
def report_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    output: str = typer.Option(..., "--output", "-o", help="Where to write the report."),
    baseline_version: Optional[str] = typer.Option(None, "--baseline-version", envvar="BASELINE_VERSION", help="Add a comparison with this app version's last runs."),
    report_format: str = typer.Option("html", "--format", help="html (self-contained, offline) or notebook (.ipynb, executed)."),
    thresholds_file: Optional[str] = typer.Option(None, "--thresholds", "--thresholds-file", envvar="LOADGEN_THRESHOLDS_FILE", help="Regression thresholds for the comparison."),
    baseline_runs: Optional[int] = typer.Option(None, "--baseline-runs", help="How many of the baseline version's latest runs (default 3)."),
    db: Optional[str] = _DB_OPTION,
) -> None:
    """Write a run's report: HTML (one offline file) or a Jupyter notebook."""
    from .reports import write_report

    if report_format not in ("html", "notebook"):
        raise UsageError(f"--format must be html or notebook, not {report_format!r}")
    th = _regression_thresholds(thresholds_file) if thresholds_file else None
    written = write_report(output, _db_url(db), run_ref, format=report_format,  # type: ignore[arg-type]
                           baseline_version=baseline_version, thresholds=th, baseline_runs=baseline_runs)
    print(f"report written to {written}")


@app.command("import")
@_reports_errors
def import_cmd(
    spool_file: str = typer.Argument(..., metavar="FILE", help="A spool file a run left when its database was unreachable."),
    db: Optional[str] = _DB_OPTION,
    keep: bool = typer.Option(False, "--keep", help="Keep the file after a successful import."),
) -> None:
    """Load a spooled run into the database."""
    from pathlib import Path

    from .results import import_spool

    url = _db_url(db)
    path = Path(spool_file)
    res, merged = import_spool(url, path)
    state = "complete" if res.finished else "incomplete (the run did not finish; its flushed intervals are kept)"
    print(f"imported run {res.run_id} into {url.shown}: {res.intervals} intervals, {state}")
    if merged is not None:
        print(f"every shard of run {res.run_id} is in: merged ({merged['requests']:,} requests)")
    elif res.sharded:
        print(f"run {res.run_id} merges once every one of its shards is in")
    if not keep:
        path.unlink(missing_ok=True)


@app.command("demo-target")
@_reports_errors
def demo_target(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8000, "--port", help="Port to listen on (0: any free port)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Extra latency on every API response."),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Fraction of API requests answered 500."),
    workers: int = typer.Option(4, "--workers", help="Background workers of the content job queue."),
    token_ttl: str = typer.Option("300s", "--token-ttl", help="Access token lifetime."),
    freeze_every: str = typer.Option("0", "--freeze-every", help="Stall the whole server every so often (e.g. 5s)."),
    freeze_for: str = typer.Option("0", "--freeze-for", help="… for this long (e.g. 1s)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for injected errors and fixtures."),
) -> None:
    """Serve the demo platform (auth, content jobs on a queue, campaigns API, /metrics)."""
    from .demo import DemoConfig, serve

    cfg = DemoConfig(
        host=host,
        port=port,
        latency_ms=latency_ms,
        error_rate=error_rate,
        workers=workers,
        token_ttl_s=parse_duration(token_ttl, what="--token-ttl"),
        freeze_every_s=parse_duration(freeze_every, what="--freeze-every"),
        freeze_for_s=parse_duration(freeze_for, what="--freeze-for"),
        seed=seed,
    )
    cfg.validate()
    serve(cfg)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``loadgen`` console script (``argv``: the arguments, default sys.argv[1:]).

    Exits with the command's code. A command line click cannot parse (an
    unknown option, a missing value) is one line on stderr and exit 2, like
    every other usage error.
    """
    import sys

    from typer import _click as click  # typer's own copy of click

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="loadgen", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError:
        sys.exit(2)  # the help is already printed
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        print(f"loadgen: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("loadgen: aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
