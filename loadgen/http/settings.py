"""A run's HTTP settings (:class:`~loadgen.config.RunConfig`) made into the :class:`Session` its users share."""

from __future__ import annotations

import os

from ..config import RunConfig
from ..engine.recorder import Recorder
from .connector import parse_resolve
from .limits import Limits
from .proxy import Proxies
from .session import Session
from .tls import TlsOptions

__all__ = ["http_session", "tls_options"]


def tls_options(config: RunConfig) -> TlsOptions:
    """``--insecure``, ``--ca-bundle``, ``--client-cert``, ``--client-key``, checked (UsageError, one sentence)."""
    tls = TlsOptions(insecure=config.insecure, ca_bundle=config.ca_bundle, client_cert=config.client_cert,
                     client_key=config.client_key)
    tls.validate()
    return tls


def http_session(config: RunConfig, recorder: Recorder, limits: Limits) -> Session:
    """The session: timeouts, limits, TLS, ``--resolve``, ``--proxy`` or the environment's proxies, HTTP/2, redirects."""
    return Session(
        recorder,
        timeout_s=config.timeout_s,
        connect_timeout_s=config.connect_timeout_s,
        limits=limits,
        tls=tls_options(config),
        proxies=Proxies.from_env(os.environ, explicit=config.proxy),
        resolve=dict(parse_resolve(spec) for spec in config.resolve),
        http2=config.http2,
        max_redirects=config.max_redirects,
    )
