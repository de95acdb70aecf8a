"""What the metrics port's handlers see and answer: a request read whole, a reply.

The port serves ``/metrics`` itself; the dashboard and the control API are mounted
on it under their own paths (:meth:`~loadgen.observe.server.MetricsServer.mount`)
and know nothing of WSGI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Request", "Reply", "Handler", "text_reply"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    peer: str  # the client's address
    server_addr: str  # the address the port is bound to (what --metrics-addr gave)
    closing: threading.Event  # set when the server stops: a streaming reply ends then


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes | Iterable[bytes]  # an iterable streams (server-sent events), chunk by chunk
    headers: tuple[tuple[str, str], ...] = ()


#: A mounted handler: every request whose path is under its prefix.
Handler = Callable[[Request], Reply]


def text_reply(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", text.encode(), headers)
