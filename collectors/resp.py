"""A minimal, blocking Redis client (RESP2) for the few read-only commands the queue collector sends.

Why not the ``redis`` package: the collector needs LLEN, XINFO, XPENDING,
XRANGE, TIME, AUTH and SELECT, one connection, in one thread. RESP2 is a small,
stable protocol (five reply types), so ~100 lines here avoid a dependency
(or an optional extra users must remember to install) for every run that
watches a Redis queue. Not supported: RESP3, Cluster (MOVED/ASK) and Sentinel.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, BinaryIO

__all__ = ["RedisConnection", "RedisError", "RedisReplyError"]

_MAX_BULK = 512 * 1024 * 1024


class RedisError(Exception):
    """The connection failed or the server broke the protocol."""


class RedisReplyError(RedisError):
    """The server answered with an error reply (``-ERR ...``, ``-WRONGTYPE ...``)."""


def _encode(args: tuple[str | bytes | int | float, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisConnection:
    """One lazily opened connection; after any connection error it is closed and reopened on the next command."""

    def __init__(
        self,
        host: str,
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        timeout_s: float = 5.0,
    ) -> None:
        self._host, self._port, self._db = host, port, db
        self._username, self._password, self._tls = username, password, tls
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    def command(self, *args: str | bytes | int | float) -> Any:
        """Send one command and return its reply: str (status), int, bytes | None (bulk), list | None (array).

        Raises RedisReplyError for an error reply (the connection stays usable) and
        RedisError when the connection fails (it is closed).
        """
        if self._file is None:
            self._connect()
        return self._roundtrip(args)

    def close(self) -> None:
        """Close the connection (the next command reconnects)."""
        file, sock = self._file, self._sock
        self._file = self._sock = None
        for closable in (file, sock):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass

    def _connect(self) -> None:
        where = f"{self._host}:{self._port}"
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._timeout_s)
            if self._tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
        except (OSError, ssl.SSLError) as exc:
            raise RedisError(
                f"cannot connect to Redis at {where}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._file = sock, sock.makefile("rb")
        try:
            if self._password is not None:
                auth: tuple[str, ...] = (
                    (self._username, self._password) if self._username else (self._password,)
                )
                self._roundtrip(("AUTH", *auth))
            if self._db:
                self._roundtrip(("SELECT", self._db))
        except RedisReplyError as exc:
            self.close()
            raise RedisError(f"Redis at {where} refused the connection setup: {exc}") from None

    def _roundtrip(self, args: tuple[str | bytes | int | float, ...]) -> Any:
        assert self._sock is not None
        try:
            self._sock.sendall(_encode(args))
            return self._read()
        except RedisReplyError:
            raise
        except (OSError, ValueError) as exc:
            self.close()
            raise RedisError(
                f"the Redis connection failed: {getattr(exc, 'strerror', None) or exc}"
            ) from None

    def _line(self) -> bytes:
        assert self._file is not None
        line = self._file.readline(65536)
        if not line.endswith(b"\r\n"):
            raise ValueError("connection closed or reply line too long")
        return line[:-2]

    def _read(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", errors="replace")
        if kind == b"-":
            raise RedisReplyError(rest.decode("utf-8", errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            if size > _MAX_BULK:
                raise ValueError("bulk reply too large")
            assert self._file is not None
            data = self._file.read(size + 2)
            if len(data) != size + 2:
                raise ValueError("connection closed mid-reply")
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise ValueError(f"unexpected reply type {kind!r}")
