"""``loadgen demo-target``: the demo platform the scenarios and tests run against."""

from __future__ import annotations

from typing import Optional

import typer

from ..config import parse_duration
from .root import app, reports_errors


@app.command("demo-target")
@reports_errors
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
    from ..demo import DemoConfig, serve

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
