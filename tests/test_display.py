"""The live display: a terminal gets a refreshed panel, a pipe gets plain progress lines."""

from __future__ import annotations

import io

from rich.console import Console

from loadgen.config import RunConfig
from loadgen.engine.engine import AdHocRequest, Engine
from loadgen.observe.display import LiveDisplay


def _run_with(console: Console, demo_url: str, **kw) -> str:
    config = RunConfig(model="open", rate=100, run_time_s=2.2)
    display = LiveDisplay(console, config.duration_s, **kw)
    with display:
        Engine(config, adhoc=AdHocRequest(demo_url + "/health"), sinks=[display], handle_signals=False).run()
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_terminal_panel_shows_rate_latency_and_users(start_demo):
    demo = start_demo()
    out = _run_with(Console(file=io.StringIO(), force_terminal=True, width=100), demo.url)
    for word in ("elapsed", "achieved of", "target", "p95", "errors", "users / in-flight", "dropped"):
        assert word in out


def test_plain_lines_without_a_terminal(start_demo):
    demo = start_demo()
    out = _run_with(Console(file=io.StringIO(), force_terminal=False, width=200), demo.url, plain_every_s=1.0)
    lines = [ln for ln in out.splitlines() if "req/s" in ln]
    assert len(lines) >= 2
    assert "target 100/s" in lines[0] and "p95" in lines[0] and "dropped 0" in lines[0]
