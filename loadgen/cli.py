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
from collections.abc import Callable
from typing import Any, Optional, TypeVar

import typer
from rich.console import Console

from ._version import __version__
from .config import RunConfig, parse_duration, parse_stages, parse_url
from .errors import EXIT_OK, LoadgenError, RunError, UsageError

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
                f"loadgen: error: {exc}", markup=False
            )
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a whole number, not {value!r}") from None


def _float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number, not {value!r}") from None


def _headers(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {item!r} must look like 'Name: value'")
        out[name.strip()] = value.strip()
    return out


@app.command()
@_reports_errors
def run(
    scenario_file: Optional[str] = typer.Argument(None, help="A scenario file (Python). Omit with --url."),
    host: Optional[str] = typer.Option(None, "--host", envvar="TARGET_HOST", help="Target base URL."),
    users: Optional[int] = typer.Option(None, "--users", envvar="USERS", help="Closed model: concurrent users."),
    spawn_rate: Optional[float] = typer.Option(None, "--spawn-rate", envvar="SPAWN_RATE", help="Users started per second."),
    run_time: Optional[str] = typer.Option(None, "--run-time", envvar="RUN_TIME", help="Length: 30s, 5m, 1h30m."),
    app_version: Optional[str] = typer.Option(None, "--app-version", envvar="APP_VERSION", help="Version of the app under test."),
    test_type: Optional[str] = typer.Option(None, "--test-type", envvar="TEST_TYPE", help="load, stress, soak or spike."),
    rate: Optional[float] = typer.Option(None, "--rate", envvar="LOADGEN_RATE", help="Open model: iterations per second."),
    stages: Optional[str] = typer.Option(None, "--stages", envvar="LOADGEN_STAGES", help="Ramping stages, e.g. 30s:100,1m:500,30s:0."),
    arrival: Optional[str] = typer.Option(None, "--arrival", envvar="LOADGEN_ARRIVAL", help="Open model arrivals: constant or poisson."),
    model: Optional[str] = typer.Option(None, "--model", envvar="LOADGEN_MODEL", help="open or closed (default: open when --rate is given)."),
    max_inflight: Optional[int] = typer.Option(None, "--max-inflight", envvar="LOADGEN_MAX_INFLIGHT", help="Open model: most iterations in flight; arrivals beyond are dropped and counted."),
    timeout: Optional[str] = typer.Option(None, "--timeout", envvar="LOADGEN_TIMEOUT", help="Request timeout (default 60s)."),
    connect_timeout: Optional[str] = typer.Option(None, "--connect-timeout", envvar="LOADGEN_CONNECT_TIMEOUT", help="Connect timeout (default 10s)."),
    graceful_stop: Optional[str] = typer.Option(None, "--graceful-stop", envvar="LOADGEN_GRACEFUL_STOP", help="How long in-flight iterations may finish at the end (default 10s)."),
    summary_json: Optional[str] = typer.Option(None, "--summary-json", envvar="LOADGEN_SUMMARY_JSON", help="Write the summary JSON here."),
    seed: Optional[int] = typer.Option(None, "--seed", envvar="LOADGEN_SEED", help="Seed for Poisson arrivals, task picks and think times."),
    url: Optional[str] = typer.Option(None, "--url", help="Ad-hoc mode: the one URL to load (no scenario file)."),
    method: str = typer.Option("GET", "--method", help="Ad-hoc mode: HTTP method."),
    header: list[str] = typer.Option([], "--header", "-H", help="Ad-hoc mode: 'Name: value' (repeatable)."),
    body: Optional[str] = typer.Option(None, "--body", help="Ad-hoc mode: request body (prefix @ to read a file)."),
    break_error_rate: Optional[float] = typer.Option(None, "--break-error-rate", help="Stress: error rate at which a step breaks (default 0.05)."),
    break_p95: Optional[str] = typer.Option(None, "--break-p95", help="Stress: p95 at which a step breaks (default 1s)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live display."),
) -> None:
    """Run a load test from a scenario file, or against one --url."""
    from .engine import AdHocRequest, Engine
    from .scenario import load_scenario

    if scenario_file and url:
        raise UsageError("give a scenario file or --url, not both")
    if not scenario_file and not url:
        raise UsageError("give a scenario file to run, or --url for ad-hoc mode")
    scenario = load_scenario(scenario_file) if scenario_file else None
    opts: dict[str, Any] = dict(scenario.options) if scenario else {}

    h = _first(host, opts.get("host"), scenario.host if scenario else None)
    if h:
        h = parse_url(h, what="--host")
    if url:
        parse_url(url, what="--url")
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
    config = RunConfig(
        host=h,
        model=m,  # type: ignore[arg-type]
        users=_int(_first(u, 10), "--users"),
        spawn_rate=_float(_first(spawn_rate, opts.get("spawn_rate"), 10.0), "--spawn-rate"),
        run_time_s=parse_duration(_first(run_time, opts.get("run_time"), "10s"), what="--run-time"),
        rate=_float(r, "--rate") if r is not None else None,
        stages=parse_stages(st) if st else (),
        arrival=_first(arrival, opts.get("arrival"), "constant"),
        preallocated_users=_int(u, "--users") if m == "open" and u is not None else None,
        max_inflight=_int(_first(max_inflight, opts.get("max_inflight"), 1000), "--max-inflight"),
        timeout_s=parse_duration(_first(timeout, opts.get("timeout"), "60s"), what="--timeout"),
        connect_timeout_s=parse_duration(_first(connect_timeout, "10s"), what="--connect-timeout"),
        graceful_stop_s=parse_duration(_first(graceful_stop, opts.get("graceful_stop"), "10s"), what="--graceful-stop"),
        test_type=_first(test_type, opts.get("test_type"), "load"),
        app_version=app_version,
        seed=seed,
        summary_json=summary_json,
        quiet=quiet,
        break_error_rate=_first(break_error_rate, 0.05),
        break_p95_ms=1000 * parse_duration(_first(break_p95, "1s"), what="--break-p95"),
    )
    if scenario is not None and config.host is None:
        raise UsageError(f"{scenario.path}: no host; pass --host, set TARGET_HOST, or set host on the User class")
    adhoc = (
        AdHocRequest(url=url, method=method.upper(), headers=_headers(header), body=data) if url else None
    )

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    from .display import LiveDisplay
    from .summary import build_summary, print_summary, write_summary

    sinks = []
    display = None
    if not quiet:
        display = LiveDisplay(console, config.duration_s)
        sinks.append(display)
    engine = Engine(config, scenario=scenario, adhoc=adhoc, sinks=sinks)
    target = url or config.host
    if not quiet:
        what = f"{scenario.path} against {target}" if scenario else f"{method.upper()} {url}"
        load = (
            f"open model, {config.arrival} arrivals, " + (f"stages {st}" if config.stages else f"{config.rate:g}/s")
            if config.model == "open"
            else f"closed model, {config.users} users at {config.spawn_rate:g}/s"
        )
        console.print(f"loadgen {__version__}: {what}; {load}; {config.duration_s:g}s; test type {config.test_type}")
    if display is not None:
        with display:
            result = engine.run()
    else:
        result = engine.run()
    doc = build_summary(result, scenario=scenario.path if scenario else None, host=target)
    if summary_json:
        try:
            write_summary(doc, summary_json)
        except OSError as exc:
            raise UsageError(f"--summary-json {summary_json} cannot be written: {exc.strerror}") from None
    print_summary(doc, console)
    kinds = doc["errors_by_kind"]
    responses = sum(doc["status_codes"].values())
    if doc["requests"] and not responses and kinds.get("connect"):
        raise RunError(f"the target {target} could not be reached: every connection failed")
    raise typer.Exit(EXIT_OK)


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


def main() -> None:
    """Entry point of the ``loadgen`` console script."""
    app(prog_name="loadgen")


if __name__ == "__main__":  # pragma: no cover
    main()
