#!/usr/bin/env python3
"""Stdlib fallback for `loadgen demo-target --freeze-every T --freeze-for F`.

A minimal asyncio HTTP/1.1 keep-alive server answering 200 "ok" to every
request, whose event loop blocks (time.sleep) for F seconds at the end of
every T-second period. bench/run.py uses it for the coordinated-omission
check when loadgen's own demo target cannot be started (--freeze-target
builtin, or auto when loadgen's fails), so the peers' rows still run.

It listens with a large backlog (4096): connections opened during a freeze
wait in the kernel's accept queue instead of having their SYNs dropped
(a dropped SYN is retried after 1 s and would add latency that is not the
freeze's, spoiling the analytic "true" percentiles).

    python3 bench/freeze_target.py --port 8089 --freeze-every 5 --freeze-for 1
"""

from __future__ import annotations

import argparse
import asyncio
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class HttpProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.skip = 0  # request-body bytes still to discard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf = self.buf[n:]
                self.skip -= n
                if self.skip:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.transport.close()
                return
            head = self.buf[:end].lower()
            self.buf = self.buf[end + 4:]
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip() == b"content-length":
                    try:
                        self.skip = int(value.strip())
                    except ValueError:
                        self.skip = 0
                elif name.strip() == b"connection" and value.strip() == b"close":
                    close = True
            self.transport.write(RESPONSE)
            if close:
                self.transport.close()
                return


async def freezer(every: float, duration: float) -> None:
    loop = asyncio.get_running_loop()
    next_freeze = loop.time() + every - duration  # freeze at the end of each period
    while True:
        await asyncio.sleep(max(0.0, next_freeze - loop.time()))
        time.sleep(duration)  # blocks the whole event loop, on purpose
        next_freeze += every


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--freeze-every", type=float, default=5.0)
    ap.add_argument("--freeze-for", type=float, default=1.0)
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, args.host, args.port, backlog=4096)
    if args.freeze_for > 0:
        loop.create_task(freezer(args.freeze_every, args.freeze_for))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
