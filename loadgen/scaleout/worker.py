"""A worker process of ``loadgen run --workers N``: one share of the load, on its own loop.

Started by :mod:`loadgen.scaleout.coordinator` as ``python -m loadgen.scaleout.worker`` over the
child-process channel (:mod:`loadgen.scaleout.channel`); the conversation is
in :mod:`loadgen.scaleout.messages`. The job arrives first; the worker answers
``Ready`` once its users are up, starts on "go", sends an ``Interval`` every
second and ``Finished`` at the end. "stop" stops it gracefully, "kill" at once; a
``Retarget`` changes its share of the load (the control API, through the coordinator);
the channel closing (the coordinator is stopping it, or died) stops it too. A
LoadgenError goes back as ``ChildFailed``: before "go" the coordinator raises
it again, of the same class; later the worker is reported dead with its share.
What a scenario prints is discarded, as it always was with workers; log records
go to the coordinator (:func:`~loadgen.diagnostics.forward_logging`), whose run
captures them, so none prints across its live display.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading

from ..diagnostics import forward_logging
from ..engine.engine import Engine, RunResult
from ..errors import LoadgenError
from ..engine.recorder import IntervalSnapshot
from .channel import ChildFailed, ParentLink
from .messages import Finished, Interval, Ready, Retarget, WorkerJob
from ..scenario import load_scenario
from .wire import part_to_json, snapshot_to_json

__all__ = ["main"]


class _Commands:
    """The coordinator's commands, read on a thread: the loop must never block on the coordinator."""

    def __init__(self, link: ParentLink) -> None:
        self.link = link
        self.go = threading.Event()
        self._engine: Engine | None = None
        self._pending: str | None = None  # a stop that came before the engine's loop ran
        self._lock = threading.Lock()

    def listen(self) -> None:
        while True:
            try:
                command = self.link.receive()
            except EOFError:
                break
            if isinstance(command, Retarget):
                self._retarget(command)
                continue
            self.go.set()
            if command in ("stop", "kill"):
                self._apply(str(command))
        self.go.set()
        self._apply("stop")  # the coordinator closed the channel, or went away

    def _apply(self, command: str) -> None:
        with self._lock:
            if self._engine is None:
                if self._pending != "kill":  # the channel closing after a kill must not soften it
                    self._pending = command
                return
            engine = self._engine
        try:
            engine.stop_threadsafe(now=command == "kill")
        except RuntimeError:
            pass  # the engine's loop has closed: the run is over already

    def _retarget(self, command: Retarget) -> None:
        """Hand the change to the engine's loop; the coordinator has checked it against the whole
        run, so a refusal here is a race with the run's end, and changes nothing."""
        with self._lock:
            engine = self._engine
        if engine is not None:
            engine.steering.submit(command.action, command.value, command.at_s)

    async def gate(self, engine: Engine) -> None:
        """The engine's start gate: say Ready, wait for "go" (or a stop)."""
        self.link.send(Ready())
        await asyncio.get_running_loop().run_in_executor(None, self.go.wait)
        with self._lock:
            self._engine, pending = engine, self._pending
        if pending is not None:
            self._apply(pending)


def _run(job: WorkerJob, commands: _Commands) -> RunResult:
    def sink(snap: IntervalSnapshot, engine: Engine) -> None:  # noqa: ARG001 - the sink signature
        commands.link.send(Interval(snapshot_to_json(snap)))

    scenario = load_scenario(job.scenario_path) if job.scenario_path else None
    engine: Engine | None = None

    async def gate() -> None:
        assert engine is not None
        await commands.gate(engine)

    engine = Engine(job.config, scenario=scenario, adhoc=job.adhoc, sinks=[sink], handle_signals=False,
                    last_resort=True, part=job.part, start_gate=gate, shared_control=True)
    return engine.run()


def main() -> int:
    link = ParentLink(stray="discard")
    forward_logging(link.send)
    job = link.job(WorkerJob)
    if job is None:
        return 0
    commands = _Commands(link)
    threading.Thread(target=commands.listen, name="loadgen-worker-commands", daemon=True).start()
    try:
        result = _run(job, commands)
    except LoadgenError as exc:
        link.send(ChildFailed.of(exc))
        return exc.exit_code
    link.send(Finished(part_to_json(result.recorder, result)))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Not sys.exit: the command thread is blocked reading stdin, and interpreter
    # shutdown would abort on its buffered-reader lock. Everything is sent.
    os._exit(code)
