"""The run's record as it begins: its id, what ran, where, and the configuration, stored once."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import socket
import subprocess

from .._version import __version__
from ..config import ConfigJson
from ..engine.engine import AdHocRequest
from ..scenario import Scenario
from ..store.records import Row
from ..http.proxy import Proxy
from ..redact import redact
from .options import RunSpec, StoreOptions

__all__ = ["new_run_id", "request_target", "run_row", "scenario_key", "stored_config"]


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and short enough to type: ``20261124-081500-3fa2``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _git_commit(scenario: Scenario | None) -> str | None:
    for var in ("GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(var):
            return os.environ[var]
    where = os.path.dirname(os.path.abspath(scenario.path)) if scenario else os.getcwd()
    try:
        out = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def stored_config(spec: RunSpec) -> ConfigJson:
    """The configuration as stored with the run: no password in the host or proxy, and of an ad-hoc
    request's headers only their names (their values may be credentials)."""
    doc = spec.config.to_json()
    doc["host"] = redact(spec.config.host) if spec.config.host else spec.config.host
    doc["proxy"] = Proxy.parse(spec.config.proxy, "--proxy").shown if spec.config.proxy else spec.config.proxy
    if spec.scenario_path is not None:
        doc["scenario_path"] = spec.scenario_path  # the summary's scenario: the runs column holds the identity
    adhoc = spec.adhoc
    if adhoc is not None:
        doc["adhoc"] = {"url": redact(adhoc.url), "method": adhoc.method, "headers": sorted(adhoc.headers),
                        "body_bytes": len(adhoc.body)}
    return doc


def run_row(spec: RunSpec, store: StoreOptions, run_id: str) -> Row:
    """The ``runs`` record written as the run starts."""
    return {
        "id": run_id,
        "app_version": spec.config.app_version,
        "git_commit": store.git_commit or _git_commit(spec.scenario),
        "environment": store.environment,
        "test_type": spec.config.test_type,
        "scenario": scenario_key(spec.scenario, spec.adhoc, spec.scenario_name),
        "host": spec.target,
        "generator_host": socket.gethostname(),
        "model": spec.config.model,
        "loadgen_version": __version__,
        "config": stored_config(spec),
        "started_at": dt.datetime.now(dt.timezone.utc).timestamp(),
        "status": "running",
    }


def scenario_key(scenario: Scenario | None, adhoc: AdHocRequest | None, name: str | None = None) -> str | None:
    """The scenario's identity, which comparisons match runs on: ``name`` (``--scenario-name``
    or the scenario's ``options["name"]``), else the file's name without its folders (with its
    extension: ``content.py``), else in ad-hoc mode ``METHOD /path?query``: not the address,
    so a candidate deployed elsewhere finds its baseline. Migration 004 turned the keys stored
    before (the path as given, ``METHOD URL``) into these."""
    if name:
        return name
    if scenario is not None:
        return os.path.basename(os.path.normpath(scenario.path))
    if adhoc is not None:
        return f"{adhoc.method} {request_target(adhoc.url)}"
    return None


#: What comes before a URL's path: any scheme and its ``://``, then the authority (up to ``/``, ``?`` or ``#``).
_AUTHORITY = re.compile(r"^(?:.*?://)?[^/?#]*", re.DOTALL)


def request_target(url: str) -> str:
    """The path and query of ``url`` as a request line carries them: no scheme, user-info, host
    or port, no fragment, a query's password masked (:func:`redact`). A string rule rather than
    a parser, the same as migration 004's SQL, so stored and new identities agree."""
    target = _AUTHORITY.sub("", redact(url), count=1).partition("#")[0]
    return target if target.startswith("/") else "/" + target
