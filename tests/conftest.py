"""Shared pytest fixtures."""

from __future__ import annotations

import os

from collections.abc import Callable, Iterator
from typing import Any

import pytest


# --- demo target (loadgen.demo) ---------------------------------------------


@pytest.fixture
def start_demo() -> Iterator[Callable[..., Any]]:
    """Factory: ``start_demo(**DemoConfig overrides)`` -> a running ThreadedDemo.

    The server runs on 127.0.0.1, a free port, in its own thread with its own
    event loop (so load can be driven from the test's thread); it has ``.url``,
    ``.port``, ``.config``, ``.state`` and is stopped at teardown.
    """
    from loadgen.demo import DemoConfig, ThreadedDemo

    started: list[ThreadedDemo] = []

    def _start(**overrides: Any) -> ThreadedDemo:
        overrides.setdefault("port", 0)
        demo = ThreadedDemo.start(DemoConfig(**overrides))
        started.append(demo)
        return demo

    yield _start
    for demo in started:
        demo.stop()


@pytest.fixture
def demo_target(request: pytest.FixtureRequest, start_demo: Callable[..., Any]) -> Any:
    """A running demo target with default settings, or the overrides given by indirect parametrisation.

    ``@pytest.mark.parametrize("demo_target", [{"latency_ms": 5}], indirect=True)``
    """
    return start_demo(**getattr(request, "param", {}))


# --- CI: a skipped test is a failed one --------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """With LOADGEN_REQUIRE_ALL set (as .ci/run does), a skip fails: CI must not pass on missing servers."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("LOADGEN_REQUIRE_ALL") and rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.longrepr = f"skipped, but LOADGEN_REQUIRE_ALL is set: {reason}"
