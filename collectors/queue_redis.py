"""Queue state from Redis: a list's length, or a stream's (and its consumer group's) backlog.

- list: ``length`` = LLEN (a missing key is an empty list). Redis keeps no
  counters or timestamps for lists, so the other fields are None.
- stream without a group: ``length`` = XLEN, ``published_per_s`` from the
  stream's ``entries-added`` counter (Redis 7+).
- stream with ``group``: ``length`` = the group's ``lag`` (entries not yet
  delivered to any consumer; Redis 7+, None when Redis cannot tell);
  ``consumed_per_s`` = entries acknowledged per second (the increase of
  ``entries-read`` minus that of ``pending``); ``backlog_age_s`` = age of the
  oldest entry the group has not acknowledged, pending or undelivered, from
  the millisecond time in its id, against the Redis server's own clock (TIME),
  so clock skew between hosts does not matter.

The client is the ``redis`` package (an optional extra: ``loadgen[redis]``),
through its asyncio API: each sample runs on the source's own small event
loop under one deadline, ``timeout_s`` for the whole round of commands, which
the blocking client can only give per socket operation. Its retries are off:
a failed round is reported, and the next interval is the retry.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Unpack

from loadgen.collectors.base import Sample, SourceFailure
from loadgen.collectors.queue_base import Period, QueueOptions, QueueSource, per_second
from loadgen.collectors.rates import CounterDelta
from loadgen.collectors.spec import RedisQueueSpec, redis_extra_missing

from loadgen.errors import UsageError
from loadgen.samples import QueueSample

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisQueueSource", "stream_id_ms"]


def stream_id_ms(entry_id: bytes | str) -> int:
    """The millisecond timestamp of a stream entry id ``<ms>-<seq>``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _client(spec: RedisQueueSpec, timeout_s: float) -> Redis:
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError:
        raise UsageError(redis_extra_missing(spec.label)) from None
    return Redis(
        host=spec.host,
        port=spec.port,
        db=spec.db,
        username=spec.username,
        password=spec.password,
        ssl=spec.tls,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=True,
    )


class RedisQueueSource(QueueSource[RedisQueueSpec]):
    """Reads one list or stream over one connection (kept open, reopened after a failure)."""

    reads = RedisQueueSpec

    def __init__(self, spec: RedisQueueSpec, **options: Unpack[QueueOptions]) -> None:
        super().__init__(spec, **options)
        self._redis = _client(spec, self._timeout_s)
        self._loop = asyncio.new_event_loop()  # driven only by the thread that samples
        self._what = spec.display.split("=", 1)[1]
        self._where = f"{spec.host}:{spec.port}"
        self._period = Period()
        self._added = CounterDelta()
        self._read = CounterDelta()
        self._last_pending: int | None = None  # a gauge, not a counter: it falls as entries are acked

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._redis.aclose())
            self._loop.close()

    def _sample(self) -> list[Sample]:
        from redis.exceptions import RedisError, ResponseError

        label = self.spec.label
        try:
            return [self._loop.run_until_complete(self._round())]
        except ResponseError as exc:
            message = str(exc)
            if message.startswith("WRONGTYPE"):
                raise SourceFailure(
                    f"Redis key {self.spec.key!r} of queue {label} is a {self._type()}, not a {self.spec.kind}."
                ) from None
            raise SourceFailure(f"Redis refused a command for queue {label} ({self._what}): {message}.") from None
        except TimeoutError:
            raise SourceFailure(
                f"queue {label} ({self._what}): Redis did not answer within {self._timeout_s:g} s."
            ) from None
        except RedisError as exc:
            raise SourceFailure(f"queue {label} ({self._what}): the Redis connection failed: {exc}") from None

    async def _round(self) -> QueueSample:
        async with asyncio.timeout(self._timeout_s):
            await self._connect()
            return await (self._list() if self.spec.kind == "list" else self._stream())

    async def _connect(self) -> None:
        """Open the connection if it is not (first, or after a failure), so a failure here is
        told as the setup's (refused, unreachable), not as a command's."""
        from redis.exceptions import AuthenticationError, RedisError, ResponseError

        where = f"queue {self.spec.label} ({self._what}): "
        try:
            await self._redis.initialize()
            assert self._redis.connection is not None
            await self._redis.connection.connect()
        except (AuthenticationError, ResponseError) as exc:  # AUTH or SELECT refused
            raise SourceFailure(f"{where}Redis at {self._where} refused the connection setup: {exc}") from None
        except (RedisError, OSError) as exc:
            cause = exc.__context__ if isinstance(exc.__context__, OSError) else exc
            errno = getattr(cause, "errno", None)
            reason = os.strerror(errno) if isinstance(errno, int) else str(cause)
            raise SourceFailure(f"{where}cannot connect to Redis at {self._where}: {reason}.") from None

    def _type(self) -> str:
        from redis.exceptions import RedisError

        try:
            reply = self._loop.run_until_complete(self._redis.type(self.spec.key))
        except (RedisError, TimeoutError):
            return "different type"
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    async def _list(self) -> QueueSample:
        length = await self._redis.llen(self.spec.key)
        return QueueSample(ts=self._clock(), queue=self.spec.label, source="redis", length=float(length))

    async def _stream(self) -> QueueSample:
        from redis.exceptions import ResponseError

        key, group = self.spec.key, self.spec.group
        try:
            info = await self._redis.xinfo_stream(key)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                raise SourceFailure(
                    f"Redis stream {key!r} of queue {self.spec.label} does not exist (db {self.spec.db})."
                ) from None
            raise
        found = None
        if group is not None:
            # Read everything before any rate state moves: a failing call must not stretch the next period.
            groups = await self._redis.xinfo_groups(key)
            found = next((g for g in groups if g.get("name") == group.encode()), None)
            if found is None:
                raise SourceFailure(
                    f"Redis stream {key!r} has no consumer group {group!r} (queue {self.spec.label})."
                )
        ts, elapsed = self._clock(), self._period.next()
        published = per_second(self._added.update(_int(info.get("entries-added"))), elapsed)
        if found is None:
            return QueueSample(
                ts=ts,
                queue=self.spec.label,
                source="redis",
                length=float(info.get("length") or 0),
                published_per_s=published,
            )

        lag = _int(found.get("lag"))
        pending = _int(found.get("pending"))
        entries_read = _int(found.get("entries-read"))
        if entries_read is None and found.get("last-delivered-id") in (b"0-0", "0-0"):
            entries_read = 0  # a group created at the start that has read nothing yet
        read = self._read.update(entries_read)
        last_pending, self._last_pending = self._last_pending, pending
        consumed = None
        if read is not None and elapsed and pending is not None and last_pending is not None:
            acked = read - (pending - last_pending)  # delivered in the period, less what is still pending
            consumed = max(0.0, acked / elapsed)
        return QueueSample(
            ts=ts,
            queue=self.spec.label,
            source="redis",
            length=float(lag) if lag is not None else None,
            published_per_s=published,
            consumed_per_s=consumed,
            backlog_age_s=await self._oldest_unacked_age(found),
        )

    async def _oldest_unacked_age(self, group_info: dict[str, Any]) -> float | None:
        """Seconds since the oldest pending or undelivered entry was added (0 when there is none)."""
        key, group = self.spec.key, self.spec.group
        assert group is not None
        oldest: int | None = None
        summary = await self._redis.xpending(key, group)
        if summary.get("pending") and summary.get("min") is not None:
            oldest = stream_id_ms(summary["min"])
        if oldest is None:  # nothing pending: the first undelivered entry, if any, is the oldest
            last = group_info.get("last-delivered-id") or b"0-0"
            last = last if isinstance(last, bytes) else str(last).encode()
            entries = await self._redis.xrange(key, min=b"(" + last, max="+", count=1)
            if entries:
                oldest = stream_id_ms(entries[0][0])
        if oldest is None:
            return 0.0
        seconds, micros = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return max(0.0, (now_ms - oldest) / 1000.0)
