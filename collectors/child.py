"""The collector child process: ``python -m loadgen.collectors.child`` (started by ProcessCollectorRunner).

It speaks loadgen's child-process channel (:mod:`loadgen.scaleout.channel`):
a :class:`~loadgen.collectors.process_runner.CollectorJob` arrives first; a
:class:`~loadgen.collectors.process_runner.Round` goes back every interval;
the parent closing its end means "stop". Anything a library prints goes to
stderr, so the frames stay whole.
"""

from __future__ import annotations

import signal
import sys
import time

from loadgen.scaleout.channel import ParentLink


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when collection stops
    link = ParentLink(stray="stderr")
    from loadgen.diagnostics import forward_logging

    forward_logging(link.send)  # log records reach the run's diagnostics, not the live display
    # Imported once fd 1 is redirected: whatever a library prints on import cannot break a frame.
    from loadgen.collectors.build import build_sources
    from loadgen.collectors.process_runner import CollectorJob, Round
    from loadgen.collectors.runner import CollectorRunner

    job = link.job(CollectorJob)
    if job is None:
        return 0
    runner = CollectorRunner(
        build_sources(
            job.services,
            job.queues,
            include_generator=job.include_generator,
            generator_pid=job.parent_pid,
            timeout_s=job.timeout_s,
        ),
        interval_s=job.interval_s,
    )
    next_at = time.monotonic()
    try:
        while True:
            batch = runner.sample_once()
            link.send(Round(batch, runner.errors))
            next_at += job.interval_s
            now = time.monotonic()
            if next_at <= now:  # a slow round: skip the ticks it overran
                next_at = now + job.interval_s - ((now - next_at) % job.interval_s)
            if link.input_ready(next_at - now):  # the parent closed its end (or wrote): stop
                break
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent has gone
    finally:
        runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
