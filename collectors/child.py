"""The collector child process: ``python -m loadgen.collectors.child`` (started by ProcessCollectorRunner).

Protocol, over its standard streams, in frames of a 4-byte big-endian length
and a pickle (both ends are loadgen, so pickle is safe here):

- stdin: one frame with the config dict; then closing stdin means "stop";
- stdout: one frame per round, ``(samples, errors)``.

Anything a library prints goes to stderr: fd 1 is pointed there so that
stdout carries frames only.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

from loadgen.collectors.frames import read_frame, write_frame


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when collection stops
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    frames_in = sys.stdin.buffer
    try:
        config = read_frame(frames_in)
    except EOFError:
        return 0

    from loadgen.collectors.build import build_sources
    from loadgen.collectors.runner import CollectorRunner

    interval_s: float = config["interval_s"]
    runner = CollectorRunner(
        build_sources(
            config["services"],
            config["queues"],
            include_generator=config["include_generator"],
            generator_pid=config["parent_pid"],
            timeout_s=config["timeout_s"],
        ),
        interval_s=interval_s,
    )
    next_at = time.monotonic()
    try:
        while True:
            batch = runner.sample_once()
            write_frame(frames_out, (batch, runner.errors))
            next_at += interval_s
            now = time.monotonic()
            if next_at <= now:  # a slow round: skip the ticks it overran
                next_at = now + interval_s - ((now - next_at) % interval_s)
            readable, _, _ = select.select([frames_in], [], [], max(0.0, next_at - now))
            if readable:  # stdin closed (or written to): stop
                break
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent has gone
    finally:
        runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
