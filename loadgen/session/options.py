"""What a run is asked to do: the test itself, where it is stored, what gates it, what watches it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RunConfig
from ..engine.engine import AdHocRequest
from ..scenario import Scenario
from ..store.url import DatabaseURL

if TYPE_CHECKING:
    from ..collectors import QueueSpec, ServiceSpec
    from ..judgement.tolerances import Tolerances
    from ..judgement.criteria import Criterion

__all__ = ["RunSpec", "StoreOptions", "GateOptions", "ObserveOptions", "PublishOptions"]


@dataclass(frozen=True)
class RunSpec:
    """The test: configuration, scenario or ad-hoc request, and how it is shown."""

    config: RunConfig
    scenario: Scenario | None
    adhoc: AdHocRequest | None
    target: str | None  # as shown and stored: any password already masked
    summary_json: str | None
    quiet: bool
    scenario_name: str | None = None  # --scenario-name (or the scenario's options name), else derived

    @property
    def scenario_path(self) -> str | None:
        return self.scenario.path if self.scenario else None


@dataclass(frozen=True)
class StoreOptions:
    """Where a run is stored; ``db`` None stores nothing (``--db none``)."""

    db: DatabaseURL | None
    spool_dir: Path
    environment: str | None = None
    git_commit: str | None = None
    run_id: str | None = None
    shard: int = 0
    shards: int = 1  # > 1: this process is shard `shard` of a run split across hosts
    shard_wait_s: float = 600.0


@dataclass(frozen=True)
class GateOptions:
    """What decides exit code 1: in-run thresholds and the regression comparison."""

    thresholds: tuple[Criterion, ...] = ()
    abort_on_fail: bool = False
    baseline_version: str | None = None
    fail_on_regression: bool = False
    regression_thresholds: Tolerances | None = None
    baseline_runs: int | None = None


@dataclass(frozen=True)
class ObserveOptions:
    """Live metrics and collectors around the run."""

    metrics_port: int | None = None  # None: no /metrics
    metrics_addr: str = "127.0.0.1"
    metrics_grace_s: float = 15.0
    services: tuple[ServiceSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    collect_interval_s: float = 1.0
    workers: int = 1
    on_worker_failure: str = "continue"
    control_token: str | None = None  # the control API's bearer token; None: loopback only


@dataclass(frozen=True)
class PublishOptions:
    """Who hears of the run's findings once it is judged: webhooks, CI files, the report."""

    notify: tuple[str, ...] = field(default=(), repr=False)  # webhook URLs: secrets, kept out of any repr
    notify_on: str = "fail"  # fail, regression or always
    markdown: str | None = None
    junit: str | None = None
    step_summary: str | None = None  # GITHUB_STEP_SUMMARY: the markdown is appended to it
    report: str | None = None  # the HTML report (--report), written before the others so they can name it
