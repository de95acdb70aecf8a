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


def test_the_panel_counts_the_runs_problems_and_shows_the_latest():
    from loadgen.diagnostics import Diagnostics
    from loadgen.engine.recorder import Recorder

    config = RunConfig(model="open", rate=10, run_time_s=5)
    run = Engine(config, adhoc=AdHocRequest("http://127.0.0.1:9/"), handle_signals=False)
    rec = Recorder()
    rec.start(0)
    diagnostics = Diagnostics()
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    display = LiveDisplay(console, config.duration_s, diagnostics=diagnostics)
    with display:
        display(rec.snapshot(1_000_000_000), run)
        assert "problems" not in console.file.getvalue()  # type: ignore[attr-defined]  # none reported yet
        diagnostics.set("store", "database", "the database is down")
        diagnostics.warn("collector queue:q: cannot connect\nTraceback ...", "log")
        display(rec.snapshot(2_000_000_000), run)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "2; latest: collector queue:q: cannot connect" in out and "Traceback" not in out
