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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loadgen.collectors.base import Sample, Source, SourceFailure
from loadgen.collectors.rates import CounterDelta
from loadgen.collectors.resp import RedisConnection, RedisError, RedisReplyError
from loadgen.collectors.spec import RedisQueueSpec

from loadgen.samples import QueueSample

__all__ = ["RedisQueueSource", "stream_id_ms"]


def stream_id_ms(entry_id: bytes | str) -> int:
    """The millisecond timestamp of a stream entry id ``<ms>-<seq>``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _pairs(reply: list[Any]) -> dict[str, Any]:
    """A flat ``[key, value, key, value]`` reply as a dict with str keys."""
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): v
        for k, v in zip(reply[::2], reply[1::2], strict=False)
    }


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class RedisQueueSource(Source):
    """Reads one list or stream over one connection (kept open, reopened after a failure)."""

    def __init__(
        self,
        spec: RedisQueueSpec,
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(f"queue:{spec.label}", secrets=[spec.password or ""])
        self.spec = spec
        self._clock = clock
        self._redis = RedisConnection(
            spec.host,
            spec.port,
            db=spec.db,
            username=spec.username,
            password=spec.password,
            tls=spec.tls,
            timeout_s=timeout_s,
        )
        self._what = spec.display.split("=", 1)[1]
        self._last_mono: float | None = None
        self._added = CounterDelta()
        self._read = CounterDelta()
        self._last_pending: int | None = None  # a gauge, not a counter: it falls as entries are acked

    def close(self) -> None:
        self._redis.close()

    def _sample(self) -> list[Sample]:
        try:
            if self.spec.kind == "list":
                sample = self._list()
            else:
                sample = self._stream()
        except RedisReplyError as exc:
            message = str(exc)
            if message.startswith("WRONGTYPE"):
                actual = self._type()
                raise SourceFailure(
                    f"Redis key {self.spec.key!r} of queue {self.spec.label} is a {actual}, not a {self.spec.kind}."
                ) from None
            raise SourceFailure(
                f"Redis refused a command for queue {self.spec.label} ({self._what}): {message}."
            ) from None
        except RedisError as exc:
            raise SourceFailure(f"queue {self.spec.label} ({self._what}): {exc}.") from None
        return [sample]

    def _type(self) -> str:
        try:
            reply = self._redis.command("TYPE", self.spec.key)
        except RedisError:
            return "different type"
        return str(reply)

    def _list(self) -> QueueSample:
        length = self._redis.command("LLEN", self.spec.key)
        return QueueSample(ts=self._clock(), queue=self.spec.label, source="redis", length=float(length))

    def _stream(self) -> QueueSample:
        key, group = self.spec.key, self.spec.group
        try:
            info = _pairs(self._redis.command("XINFO", "STREAM", key))
        except RedisReplyError as exc:
            if "no such key" in str(exc).lower():
                raise SourceFailure(
                    f"Redis stream {key!r} of queue {self.spec.label} does not exist (db {self.spec.db})."
                ) from None
            raise
        found = None
        if group is not None:
            # Read everything before any rate state moves: a failing call must not stretch the next period.
            groups = [_pairs(g) for g in self._redis.command("XINFO", "GROUPS", key)]
            found = next((g for g in groups if g.get("name") == group.encode()), None)
            if found is None:
                raise SourceFailure(
                    f"Redis stream {key!r} has no consumer group {group!r} (queue {self.spec.label})."
                )
        mono, ts = time.monotonic(), self._clock()
        elapsed = None if self._last_mono is None else mono - self._last_mono
        self._last_mono = mono
        added = self._added.update(_int(info.get("entries-added")))
        published = added / elapsed if added is not None and elapsed else None
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
            backlog_age_s=self._oldest_unacked_age(found),
        )

    def _oldest_unacked_age(self, group_info: dict[str, Any]) -> float | None:
        """Seconds since the oldest pending or undelivered entry was added (0 when there is none)."""
        key, group = self.spec.key, self.spec.group
        assert group is not None
        oldest: int | None = None
        summary = self._redis.command("XPENDING", key, group)
        if summary and summary[0] and summary[1] is not None:
            oldest = stream_id_ms(summary[1])
        if oldest is None:  # nothing pending: the first undelivered entry, if any, is the oldest
            last = group_info.get("last-delivered-id") or b"0-0"
            entries = self._redis.command("XRANGE", key, b"(" + last, "+", "COUNT", 1)
            if entries:
                oldest = stream_id_ms(entries[0][0])
        if oldest is None:
            return 0.0
        seconds, micros = self._redis.command("TIME")
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return max(0.0, (now_ms - oldest) / 1000.0)
