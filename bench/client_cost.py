"""CPU µs a request of ``Client.get`` alone, two source trees interleaved (a hot-path change's before/after).

    .venv/bin/python bench/client_cost.py http://127.0.0.1:PORT/ /work/before /work/main 6

Each round runs, in alternating order, 20,000 GETs from 8 users of one process on one keep-alive
connection each (uvloop, client pinned to core 1) with PYTHONPATH set to each tree, and prints the
process CPU time a request. CPU time, not wall time: a busy neighbour moves it far less. The
target (nginx ``return 200`` with its access log off is what the figures in RESULTS.md used) is
yours to start.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

_CHILD = """
import asyncio, sys, time, uvloop
from loadgen.engine.recorder import Recorder
from loadgen.http.client import Client, Session

async def main(url, n=20000, users=8):
    s = Session(Recorder()); s.start()
    clients = [Client(s, url) for _ in range(users)]
    async def user(c, k):
        for _ in range(k):
            await c.get("/")
    await asyncio.gather(*(user(c, 200) for c in clients))  # connections open, caches warm
    t0 = time.process_time()
    await asyncio.gather(*(user(c, n // users) for c in clients))
    cpu = time.process_time() - t0
    for c in clients:
        c.close()
    s.close()
    return cpu / n * 1e6

print(f"{uvloop.run(main(sys.argv[1])):.2f}")
"""


def main() -> None:
    url, trees, rounds = sys.argv[1], sys.argv[2:4], int(sys.argv[4]) if len(sys.argv) > 4 else 6
    got: dict[str, list[float]] = {t: [] for t in trees}
    for i in range(rounds):
        for tree in trees if i % 2 == 0 else trees[::-1]:
            out = subprocess.run(["taskset", "-c", "1", sys.executable, "-c", _CHILD, url], capture_output=True,
                                 text=True, env={"PYTHONPATH": tree, "PATH": "/usr/bin:/bin"}, check=True)
            got[tree].append(float(out.stdout))
            print(f"round {i + 1} {tree}: {out.stdout.strip()} µs/request", flush=True)
    a, b = (statistics.median(got[t]) for t in trees)
    print(f"medians: {trees[0]} {a:.2f} µs, {trees[1]} {b:.2f} µs; second ÷ first {b / a:.3f}")


if __name__ == "__main__":
    main()
