"""A run's settings, built from its resolved options: the run configuration, the ad-hoc
request, and the runner's store, gate and observation options.

An option is parsed when a builder first asks for it, so the order of the
builders' questions is the order in which bad values are found. Rules that
span options (a shard needs a run id and a database, …) are checked here,
once the values they join are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RunConfig, shown
from ..errors import UsageError
from . import options as o
from .options import OptionValues

if TYPE_CHECKING:
    from ..engine.engine import AdHocRequest
    from ..session import GateOptions, ObserveOptions, StoreOptions
    from ..session.options import PublishOptions


def adhoc_request(values: OptionValues) -> AdHocRequest | None:
    """The one request of ad-hoc mode (``--url``); its parts are checked in either mode."""
    from ..engine.engine import AdHocRequest

    url = values.get(o.URL)
    verb = values.get(o.METHOD)
    headers = dict(values.get(o.HEADER) or ())
    data = values.get(o.BODY) or b""
    return AdHocRequest(url=url, method=verb, headers=headers, body=data) if url else None


def model(values: OptionValues) -> str:
    """``--model``, else open when a rate is given (or stages without users), else closed."""
    given = values.get(o.MODEL)
    if given:
        return str(given)
    rate, stages, users = values.chosen(o.RATE), values.chosen(o.STAGES), values.chosen(o.USERS)
    return "open" if rate is not None or (stages is not None and users is None) else "closed"


def run_config(values: OptionValues) -> RunConfig:
    """What the engine runs; :class:`RunConfig` checks what spans several options."""
    host = values.get(o.HOST)
    m = model(values)
    users = values.get(o.USERS)
    config = RunConfig(
        host=host,
        model=m,
        users=users,
        spawn_rate=values.get(o.SPAWN_RATE),
        run_time_s=values.get(o.RUN_TIME),
        rate=values.get(o.RATE),
        stages=values.get(o.STAGES) or (),
        arrival=values.get(o.ARRIVAL),
        preallocated_users=users if m == "open" and values.chosen(o.USERS) is not None else None,
        max_inflight=values.get(o.MAX_INFLIGHT),
        timeout_s=values.get(o.TIMEOUT),
        connect_timeout_s=values.get(o.CONNECT_TIMEOUT),
        graceful_stop_s=values.get(o.GRACEFUL_STOP),
        test_type=values.get(o.TEST_TYPE),
        app_version=values.get(o.APP_VERSION),
        seed=values.get(o.SEED),
        summary_json=values.get(o.SUMMARY_JSON),
        quiet=bool(values.get(o.QUIET)),
        break_error_rate=values.get(o.BREAK_ERROR_RATE),
        break_p95_ms=values.get(o.BREAK_P95),
        max_head_bytes=values.get(o.MAX_HEAD_SIZE),
        max_body_bytes=values.get(o.MAX_BODY_SIZE),
        max_decoded_bytes=values.get(o.MAX_DECODED_SIZE),
        max_names=values.get(o.MAX_NAMES),
        insecure=bool(values.get(o.INSECURE)),
        ca_bundle=values.get(o.CA_BUNDLE),
        client_cert=values.get(o.CLIENT_CERT),
        client_key=values.get(o.CLIENT_KEY),
        resolve=values.get(o.RESOLVE) or (),
        proxy=values.get(o.PROXY),
        http2=values.get(o.HTTP2),
        max_redirects=values.get(o.MAX_REDIRECTS),
        tags=values.get(o.TAGS) or (),
        exclude_tags=values.get(o.EXCLUDE_TAGS) or (),
        run_time_given=values.chosen(o.RUN_TIME) is not None,
    )
    from ..http.settings import tls_options

    tls_options(config)  # a certificate or key that cannot be used: exit 2 before anything starts
    return config


def gate_options(values: OptionValues) -> GateOptions:
    """What decides exit code 1: the in-run criteria and the regression comparison."""
    from ..session import GateOptions

    criteria = values.get(o.THRESHOLD)
    tolerances = values.get(o.THRESHOLDS_FILE)
    return GateOptions(
        thresholds=criteria or (),
        abort_on_fail=bool(values.get(o.ABORT_ON_FAIL)),
        baseline_version=values.get(o.BASELINE_VERSION),
        fail_on_regression=bool(values.get(o.FAIL_ON_REGRESSION)),
        regression_thresholds=tolerances,
        baseline_runs=values.get(o.BASELINE_RUNS),
    )


def store_options(values: OptionValues) -> StoreOptions:
    """Where the run is stored, and as which shard of which run."""
    from ..session import StoreOptions
    from ..store.spool import default_spool_dir

    db = values.get(o.DB)
    spool_dir = values.get(o.SPOOL_DIR)
    sharding = values.get(o.SHARD)
    store = StoreOptions(
        db=db,
        spool_dir=Path(str(spool_dir)).expanduser() if spool_dir else default_spool_dir(),
        environment=values.get(o.ENVIRONMENT),
        git_commit=values.get(o.GIT_COMMIT),
        run_id=values.get(o.RUN_ID),
    )
    if sharding is not None:
        _check_shard(values, store)
        shard, shards = sharding
        store = dataclasses.replace(store, shard=shard, shards=shards, shard_wait_s=values.get(o.SHARD_WAIT))
    if values.get(o.BASELINE_VERSION) and store.db is None:
        raise UsageError("--baseline-version needs a results store; drop --db none")
    if values.get(o.REPORT) and store.db is None:
        raise UsageError("--report is built from the results store; drop --db none")
    return store


def _check_shard(values: OptionValues, store: StoreOptions) -> None:
    if store.run_id is None:
        raise UsageError("--shard needs --run-id (or LOADGEN_RUN_ID): every shard of a run must name it")
    if store.db is None:
        raise UsageError("--shard needs a results database (--db): the shards meet there")
    if values.chosen(o.WORKERS) not in (None, "1"):
        raise UsageError("--shard and --workers together are not supported yet; run one shard per process")


def check_outputs(values: OptionValues) -> None:
    """Fail now, not after a run whose results the outputs are meant to keep."""
    for option in (o.SUMMARY_JSON, o.REPORT, o.MARKDOWN, o.JUNIT):
        path = values.get(option)
        if path is not None:
            _check_writable(str(path), option.flags[0])


def _check_writable(path: str, option: str) -> None:
    """One sentence when an output file cannot be written."""
    from ..outputs.files import open_output

    p = Path(path).expanduser()
    try:
        if p.is_dir():
            raise UsageError(f"{option} {shown(path, 4200)} is a folder; name a file in it")
        existed = p.exists()
        with open_output(p, append=True):  # a pipe nobody reads: an error now, not a hang
            pass
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option} {shown(path, 4200)} cannot be written: {why}") from None
    if not existed:
        p.unlink(missing_ok=True)  # written at the run's end; an empty file would look like a result


def observe_options(values: OptionValues) -> ObserveOptions:
    """/metrics, the collectors, and the worker processes the run is spread over."""
    from ..session import ObserveOptions

    port = values.get(o.METRICS_PORT)
    services, queues = values.get(o.MONITOR) or (), values.get(o.QUEUE) or ()
    seen: set[str] = set()
    for spec in [*services, *queues]:
        if spec.label in seen:
            raise UsageError(f"the label {spec.label!r} is given twice (scenario options and command line)")
        seen.add(spec.label)
    return ObserveOptions(
        metrics_port=port,
        metrics_addr=str(values.get(o.METRICS_ADDR)),
        collect_interval_s=values.get(o.COLLECT_INTERVAL),
        metrics_grace_s=values.get(o.METRICS_GRACE),
        services=tuple(services),
        queues=tuple(queues),
        on_worker_failure=values.get(o.ON_WORKER_FAILURE),
        workers=values.get(o.WORKERS),
        control_token=values.get(o.CONTROL_TOKEN) or None,
    )


def publish_options(values: OptionValues, environ: Mapping[str, str]) -> PublishOptions:
    """Who hears of the findings: webhooks, the CI files (GitHub's step summary when
    ``GITHUB_STEP_SUMMARY`` names one), the HTML report."""
    from ..session.options import PublishOptions

    report = values.get(o.REPORT)
    return PublishOptions(
        notify=values.get(o.NOTIFY) or (),
        notify_on=str(values.get(o.NOTIFY_ON)),
        markdown=values.get(o.MARKDOWN) or None,
        junit=values.get(o.JUNIT) or None,
        step_summary=environ.get("GITHUB_STEP_SUMMARY") or None,
        report=str(report) if report else None,
    )
