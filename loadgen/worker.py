"""A worker process of ``loadgen run --workers N``: one share of the load, on its own loop.

Started by :mod:`loadgen.coordinator` as ``python -m loadgen.worker`` in a
session of its own (Ctrl-C reaches only the coordinator). The protocol is one
JSON document per line: the job arrives on stdin; the worker answers
``ready`` once its users are up, starts on ``go``, sends an ``interval`` every
second and a ``result`` at the end on stdout. ``stop`` on stdin stops it
gracefully, ``kill`` at once; stdin closing (the coordinator died) stops it too.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import IO, Any

import orjson

__all__ = ["main"]


def _send(out: IO[bytes], lock: threading.Lock, msg: dict[str, Any]) -> None:
    data = orjson.dumps(msg, option=orjson.OPT_NON_STR_KEYS) + b"\n"
    with lock:
        out.write(data)
        out.flush()


def main() -> int:
    from .config import RunConfig, Stage
    from .engine import AdHocRequest, Engine
    from .errors import LoadgenError
    from .scenario import load_scenario
    from .wire import part_to_json, snapshot_to_json

    out = sys.stdout.buffer
    lock = threading.Lock()
    job = orjson.loads(sys.stdin.buffer.readline())
    try:
        cfg = dict(job["config"])
        cfg["stages"] = tuple(Stage(**s) for s in cfg["stages"])
        config = RunConfig(**cfg)
        scenario = load_scenario(job["scenario"]) if job.get("scenario") else None
        adhoc = None
        if job.get("adhoc"):
            a = job["adhoc"]
            adhoc = AdHocRequest(url=a["url"], method=a["method"], headers=a["headers"],
                                 body=a["body"].encode("latin-1"))
    except LoadgenError as exc:
        _send(out, lock, {"type": "error", "message": str(exc), "exit_code": exc.exit_code})
        return exc.exit_code

    go = threading.Event()
    state: dict[str, Any] = {}

    def commands() -> None:
        # Stdin is read on a thread: the loop must never block on the coordinator.
        for line in sys.stdin.buffer:
            cmd = line.strip().decode()
            if cmd == "go":
                go.set()
            elif cmd in ("stop", "kill"):
                go.set()
                _command(cmd)
        go.set()
        _command("stop")  # the coordinator went away

    def _command(cmd: str) -> None:
        engine, loop = state.get("engine"), state.get("loop")
        if engine is None or loop is None:
            state["pending"] = cmd
            return
        engine.stop_threadsafe(now=cmd == "kill")

    async def gate() -> None:
        state["loop"] = asyncio.get_running_loop()
        _send(out, lock, {"type": "ready"})
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        if state.get("pending"):
            _command(state.pop("pending"))

    def sink(snap: Any, engine: Any) -> None:
        _send(out, lock, {"type": "interval", "snap": snapshot_to_json(snap)})

    engine = Engine(config, scenario=scenario, adhoc=adhoc, sinks=[sink], handle_signals=False,
                    last_resort=True, part=(job["part"][0], job["part"][1]), start_gate=gate)
    state["engine"] = engine
    threading.Thread(target=commands, name="loadgen-worker-commands", daemon=True).start()
    result = engine.run()
    _send(out, lock, {"type": "result", "part": part_to_json(result.recorder, result)})
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Not sys.exit: the command thread is blocked reading stdin, and interpreter
    # shutdown would abort on its buffered-reader lock. Everything is sent.
    os._exit(code)
