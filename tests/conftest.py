"""Shared pytest fixtures."""

from __future__ import annotations

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
