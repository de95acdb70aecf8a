"""HTTP/2 for the client: one connection (an ``asyncio.Protocol``) carrying many streams.

Framing, HPACK and flow-control bookkeeping are the ``h2`` library's (sans-I/O);
this module moves its bytes and turns its events into the values a request
resolves to. A stream is used as a :class:`~loadgen.http.connection.Connection`
is: ``send`` takes the HTTP/1.1 request the client built and returns a future of
the status or an error code (errors are values, as in connection.py), and then
the stream carries ``t_first``, ``t_done``, ``bytes_in``, ``headers``,
``body()``, ``encoding`` and ``has_cookies``.

What the wire can do, and what a stream then resolves to:

- interim responses (1xx) are skipped, headers and all; the stream waits for the
  final response. Trailers are counted, not kept.
- RST_STREAM from the server: ``reset``. With REFUSED_STREAM, or a GOAWAY whose
  last stream id is below the stream's, the server says it did not act on the
  request: ``unprocessed`` is set, and the client may send it again on a new
  connection. Streams up to the GOAWAY's last id finish normally (h2 would reject
  their frames, python-hyper/h2#1181: see :class:`_Framer`); no new stream opens.
- a header block (interim and trailers included, as sent) past
  ``max_head_bytes``, or DATA past ``max_body_bytes``: ``too_large``; the stream is
  reset (CANCEL) and the connection serves on. A header block must still be
  decoded whole, HPACK's table being the connection's; one that decodes past
  four times ``max_head_bytes`` (an HPACK bomb) drops the connection: that stream
  is ``too_large``, the others on it ``reset``. A block longer than h2 will
  buffer (64 frames of 16 KiB) is a protocol error of the connection.
- bytes h2 cannot parse, a frame longer than our SETTINGS_MAX_FRAME_SIZE (what
  an HTTP/1.1 answer to the preface looks like), or anything else h2 calls a
  protocol error: every stream on the connection is ``protocol`` and the
  connection is dropped.
- the connection lost: every stream still in flight is ``reset``.
- a response that ends before its request body was sent whole: the rest of the
  upload is dropped and the stream reset; the response stands.

We advertise no server push, a 4 MiB stream window and a 1 GiB connection
window (Go's net/http, hence k6, uses the same two), so the measured download
rate is the server's and the network's, not our flow control's. Received DATA is
acknowledged as it arrives (the last of a stream in lots, see below). Uploads (bytes after the head in ``wire``, then the
``body`` chunks) are sent as the peer's windows and frame size allow, waiting for
WINDOW_UPDATE, and pause while the transport's buffer is full.

Costs, per GET ``/`` (nginx ``return 200``) on one connection, uvloop, client CPU
time, on a shared 2-core VM, 20,000 requests interleaved in batches with HTTP/1.1
(``.venv/bin/python tests/test_http2.py``; three runs, alternating with this module
as it was before the changes below, on a busy machine)::

                                  now          before       HTTP/1.1
    h2c, 1 stream in flight       165-215 us   250-280 us   28-35 us (1 connection)
    h2c, 50 streams in flight      86-107 us   170-190 us   16-21 us (50 connections)

What is left is h2's own machinery: under cProfile (CPU time) h2 takes 44-45%,
hyperframe 20-21%, the event loop and C calls 22-23%, this module 9-12% (the HPACK
caches included), hpack nothing. For each request h2 makes a stream with its state
machine, copies the fields (``utf8_encode_headers``), builds, serialises and parses
frame objects, and formats ``repr()`` of every frame it receives for a logger that
discards it (~3.5 us a frame; not avoidable through h2's API). What is cut around it:

- HPACK answered from memory (:class:`_CachingEncoder`, :class:`_CachingDecoder`):
  a header block decoded, or a field list encoded, that left the dynamic table as
  it was gives the same result while the table stays the same; an insertion, an
  eviction or a size change forgets them all. Our requests repeat exactly, and
  nginx's responses byte for byte but for ``date`` (it indexes nothing), so all but
  about one block a second each way is a dictionary lookup instead of ~11 us to
  encode and ~23 us to decode. At most 32 blocks of up to 1 KiB each way are kept
  per connection. hpack's logging calls (5% before) now run only on a miss; they
  are not silenced, hpack's logger being one module global shared with any other
  user of hpack in the process.
- h2 counts the open streams before each new one with a pass over every stream it
  holds; ours is the same number without the pass (~5% at 50 streams, more beyond).
- DATA that ends its stream is handed back to the connection window in 1 MiB lots
  rather than one call a response (~2%).
- h2's field validation, ~20 us each way, is off: outbound we build the fields
  ourselves, inbound the response is taken as HTTP/1.1's is.
- Streams opened in one turn of the loop share one write (~12% less CPU at 50
  streams). Writing at once when a stream is alone saved nothing measurable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from time import perf_counter_ns
from typing import Protocol

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    InformationalResponseReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import DenialOfServiceError, ProtocolError
from h2.settings import SettingCodes, Settings
from hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple
from hpack.table import HeaderTable
from hyperframe.frame import Frame, GoAwayFrame, HeadersFrame

from ..engine.recorder import ERR_INVALID_REQUEST, ERR_PROTOCOL, ERR_RESET, ERR_TOO_LARGE
from .limits import Limits

__all__ = ["Http2Connection", "Http2Stream", "InFlight"]

#: What we let the server send before it must wait for our WINDOW_UPDATE, per stream and per
#: connection (the values of Go's net/http transport, which k6 uses).
STREAM_WINDOW = 4 << 20
CONNECTION_WINDOW = 1 << 30
#: A header block is decoded whole (HPACK state is the connection's) unless it decodes past
#: this many times max_head_bytes.
BOMB_FACTOR = 4
#: Streams assumed allowed until the server's SETTINGS say otherwise (as Go's transport does).
INITIAL_MAX_STREAMS = 100
_MAX_STREAM_ID = (1 << 31) - 1
_DEFAULT_WINDOW = 65535
#: DATA of ended streams is handed back to the connection window in lots this large.
_ACK_BATCH = CONNECTION_WINDOW >> 10
_MAX_CACHED_HEADS = 4096

#: Connection-specific fields, not allowed in HTTP/2 (RFC 9113 §8.2.2); TE is kept only as "trailers".
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})
_SECRET = frozenset({b"authorization", b"proxy-authorization"})


class InFlight(Protocol):
    """What the session's timeout sweep and its close need of an object in its registry."""

    deadline_ns: int

    def fail(self, code: int) -> None: ...

    def close(self) -> None: ...


#: Header blocks remembered per connection and direction, and the largest one remembered.
_CACHED_BLOCKS = 32
_CACHED_BLOCK_BYTES = 1024

_Entry = tuple[bytes, bytes]
_TableState = tuple[_Entry | None, int, int]


def _table_state(table: HeaderTable) -> _TableState:
    """What an HPACK dynamic table holds, in three values: its newest entry, its length, its size limit.

    hpack adds an entry as a new tuple at the front and evicts only from the back (or
    clears), so while the newest entry is the same object (``is``) nothing was added, and
    while the length is the same nothing was evicted either.
    """
    entries = table.dynamic_entries
    return (entries[0] if entries else None), len(entries), table.maxsize


def _same_state(a: _TableState, b: _TableState) -> bool:
    return a[0] is b[0] and a[1] == b[1] and a[2] == b[2]


class _CachingDecoder(Decoder):
    """hpack's Decoder, answering a header block it decoded before from memory while that is exact.

    A server repeats its response heads byte for byte (nginx: all but ``date``, which
    changes once a second). A block that left the dynamic table as it found it decodes
    to the same fields the next time, provided the table, the table size limit and the
    list size limit are still what they were; anything else (an insertion, an eviction,
    a size update, a limit changed) forgets every remembered block. Only raw decoding
    (what h2 asks for) of blocks up to ``_CACHED_BLOCK_BYTES`` is remembered.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0
        self._blocks: dict[bytes, list[HeaderTuple]] = {}
        self._state = _table_state(self.header_table)
        self._limits = (self.max_header_list_size, self.max_allowed_table_size)

    def decode(self, data: bytes, raw: bool = False) -> Iterable[HeaderTuple]:
        blocks = self._blocks
        state = _table_state(self.header_table)
        limits = (self.max_header_list_size, self.max_allowed_table_size)
        cacheable = raw and type(data) is bytes
        if not _same_state(state, self._state) or limits != self._limits:
            blocks.clear()
            self._state = state
            self._limits = limits
        elif cacheable:
            fields = blocks.get(data)
            if fields is not None:
                self.hits += 1
                return list(fields)  # the caller's own list: h2 may keep or change it
        decoded = super().decode(data, raw)
        after = _table_state(self.header_table)
        if not _same_state(after, state):
            blocks.clear()
            self._state = after
        elif cacheable and len(data) <= _CACHED_BLOCK_BYTES:
            if len(blocks) >= _CACHED_BLOCKS:
                blocks.clear()  # old dates, mostly: cheaper than tracking use
            blocks[data] = list(decoded)
        return decoded


_EncoderKey = tuple[tuple[tuple[bytes, bytes], ...], tuple[type, ...], bool]


class _CachingEncoder(Encoder):
    """hpack's Encoder, answering a field list it encoded before from memory while that is exact.

    Our requests repeat exactly: once their fields are in the dynamic table, encoding them
    again gives the same bytes and changes nothing. A list whose encoding left the table as
    it was is remembered with the table's state, keyed on the fields and their classes (a
    ``NeverIndexedHeaderTuple`` equals the plain tuple with the same bytes but is encoded
    differently); any change of the table, or a size update waiting to be sent, forgets or
    bypasses them. Fields must be bytes, as h2 hands them over (``1 == True`` as keys).
    """

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0
        self._blocks: dict[_EncoderKey, bytes] = {}
        self._state = _table_state(self.header_table)

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:  # type: ignore[override]
        table = self.header_table
        if table.resized or isinstance(headers, dict):  # a size update to emit first
            return super().encode(headers, huffman)
        fields = tuple(headers)
        blocks = self._blocks
        state = _table_state(table)
        if not _same_state(state, self._state):
            blocks.clear()
            self._state = state
        try:
            key: _EncoderKey | None = (fields, tuple(map(type, fields)), huffman)
            block = blocks.get(key)  # type: ignore[arg-type]
        except TypeError:  # an unhashable field: not remembered
            key = block = None
        if block is not None:
            self.hits += 1
            return block
        block = super().encode(fields, huffman)
        after = _table_state(table)
        if not _same_state(after, state):
            blocks.clear()
            self._state = after
        elif key is not None and len(block) <= _CACHED_BLOCK_BYTES:
            if len(blocks) >= _CACHED_BLOCKS:
                blocks.clear()
            blocks[key] = block
        return block


class _Framer(H2Connection):
    """h2's client connection, with our HPACK caches, our stream count, and two of its frame handlers changed.

    All pinned by tests/test_http2.py.

    - HEADERS: the header block's length is added to its stream's ``bytes_in`` and
      ``head_bytes`` (h2 hands over only decoded fields), and the stream being decoded
      is remembered, so an HPACK bomb can be charged to it.
    - GOAWAY: h2 closes its state machine on it, and then refuses the responses RFC
      9113 §6.8 lets the server still send on streams up to the last id
      (python-hyper/h2#1181). Here it only reports the event; Http2Connection opens no
      stream after it and closes the transport when the last one ends.
    """

    def __init__(self, streams: dict[int, Http2Stream], limits: Limits) -> None:
        # Outbound fields are ours, built from a request the client already checked (tokens,
        # no CR/LF/NUL), lower-cased, hop-by-hop dropped, secrets never indexed: h2's
        # validation and normalisation of them would cost ~20 us a request for nothing. Inbound
        # normalisation only joins a request's cookies, nothing for a client.
        super().__init__(H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, normalize_inbound_headers=False,
            # ~20 us a response: the fields are read as HTTP/1.1's are (llhttp checks framing,
            # not field syntax); a head without :status first is still a protocol error (below).
            validate_inbound_headers=False,
        ))
        # HPACK, the largest cost of a request, remembered where that is exact (see the classes).
        self.encoder = _CachingEncoder()
        self.decoder = _CachingDecoder()
        self.tracked = streams
        self.decoding = 0  # the stream whose header block is being decoded
        # One SETTINGS frame in the preface carries all of ours: set before initiate_connection,
        # they are in force from the start (no ACK round trip, no window change mid-stream).
        self.local_settings = Settings(client=True, initial_values={
            SettingCodes.ENABLE_PUSH: 0,
            SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_head_bytes,
        })
        self.decoder.max_header_list_size = BOMB_FACTOR * limits.max_head_bytes

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Frame], list[Event]]:
        sid = frame.stream_id
        s = self.tracked.get(sid)
        if s is not None:
            n = len(frame.data)
            s.bytes_in += n
            s.head_bytes += n
        self.decoding = sid
        return super()._receive_headers_frame(frame)

    @property
    def open_outbound_streams(self) -> int:
        """The streams we have in flight, without h2's scan of every stream it holds.

        h2 reads this before each new stream, counting by a pass over all its streams
        that also forgets the closed ones: O(streams in flight) per request (~5% of
        the CPU at 50). Ours is the same number whenever a stream may open (a stream
        leaves ``tracked`` when h2 closes it, or when we reset it; only a GOAWAY ends
        streams h2 still counts, and none opens after it). h2's pass still runs, to
        forget closed streams, once they outnumber the open ones.
        """
        if len(self.streams) > 2 * len(self.tracked) + 16:
            return super().open_outbound_streams
        return len(self.tracked)

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[Event]]:
        ev = ConnectionTerminated()
        try:
            ev.error_code = ErrorCodes(frame.error_code)
        except ValueError:
            ev.error_code = frame.error_code
        ev.last_stream_id = frame.last_stream_id
        ev.additional_data = frame.additional_data or None
        return [], [ev]

    def oversized_frame_pending(self) -> bool:
        """True when the next, incomplete frame is longer than we allow.

        h2 waits for a frame's whole body before checking its length, so bytes that are
        not HTTP/2 (an HTTP/1.1 reply to the preface reads as a 4 MB frame) would sit in
        its buffer until the server closed. One look per read, only at bytes left over.
        """
        buf = getattr(self.incoming_buffer, "_data", b"")
        return len(buf) >= 9 and int.from_bytes(buf[:3], "big") > self.max_inbound_frame_size


def _request_fields(head: bytes, scheme: bytes) -> list[tuple[bytes, bytes]]:
    """The HTTP/1.1 request head (request line and header lines) as HTTP/2 fields."""
    lines = head.split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    target = rest.rpartition(b" ")[0] or rest
    authority = None
    regular = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"host":
            authority = value
        elif name in _HOP_BY_HOP:
            continue
        elif name == b"te" and value.lower() != b"trailers":
            continue
        elif name in _SECRET or (name == b"cookie" and len(value) < 20):
            # Kept out of HPACK's table, so a guess at a secret cannot be checked against
            # the table through the compressed sizes (h2 does the same when it normalises).
            regular.append(NeverIndexedHeaderTuple(name, value))
        else:
            regular.append((name, value))
    fields = [(b":method", method), (b":scheme", scheme)]
    if authority is not None:
        fields.append((b":authority", authority))
    fields.append((b":path", target))
    fields += regular
    return fields


class Http2Stream:
    """One request and its response on an :class:`Http2Connection` (``conn.stream()``).

    After ``send``'s future resolves it has what a Connection has: ``t_first`` (the
    first HEADERS), ``t_done`` (END_STREAM, or the error), ``bytes_in`` (header blocks
    and DATA as received), ``headers``, ``body()``, ``encoding``, ``has_cookies``,
    ``location``; ``keep_alive`` is always True, ``sending`` None and ``closed`` is
    the connection's. ``unprocessed``: the server said it did not act on the request
    (see the module docstring).
    """

    __slots__ = (
        "conn", "sid", "waiter", "deadline_ns", "t_first", "t_done", "bytes_in", "head_bytes", "body_bytes",
        "status", "headers", "chunks", "encoding", "has_cookies", "head_request", "unprocessed", "out", "sending",
        "location",
    )

    keep_alive = True

    def __init__(self, conn: Http2Connection) -> None:
        self.conn = conn
        self.sid = 0
        self.waiter: asyncio.Future[int] | None = None
        self.deadline_ns = 0
        self.t_first = 0
        self.t_done = 0
        self.bytes_in = 0
        self.head_bytes = 0
        self.body_bytes = 0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.encoding: bytes | None = None
        self.has_cookies = False
        self.head_request = False
        self.unprocessed = False
        self.out: bytes | memoryview = b""  # upload bytes not yet sent
        # Upload chunks not yet taken; None once the stream has ended, however it ended (an
        # upload cut short resets the stream alone: unlike HTTP/1.1, the connection serves on).
        self.sending: Iterator[bytes] | None = None
        self.location: bytes | None = None  # of a 3xx response (the client follows redirects)

    @property
    def closed(self) -> bool:
        """The connection's transport is gone."""
        return self.conn.closed

    def send(
        self, wire: bytes, deadline_ns: int, head: bool = False, body: Iterable[bytes] | None = None
    ) -> asyncio.Future[int]:
        """Send the HTTP/1.1 request ``wire`` (head, then body bytes) as HTTP/2, then the ``body`` chunks.

        The future resolves to the status or an error code (module docstring). A stream
        that cannot be opened (the connection closed, a GOAWAY came, the server's stream
        limit reached) resolves ``reset`` at once with ``unprocessed`` set. ``body``
        raising ValueError or OSError (a file that cannot be read as declared, see
        http/body.py) ends the stream ``invalid_request``, as on HTTP/1.1; any other
        exception from it is raised to the caller.
        """
        self.deadline_ns = deadline_ns
        self.head_request = head
        self.waiter = w = self.conn._create_future()
        self.conn._open(self, wire, body)
        return w

    def body(self) -> bytes:
        c = self.chunks
        if not c or self.head_request:
            return b""
        return c[0] if len(c) == 1 else b"".join(c)

    def fail(self, code: int) -> None:
        """End the stream with ``code`` (the timeout sweep): RST_STREAM(CANCEL); the connection lives on."""
        if self.sid in self.conn._streams:
            self.t_done = perf_counter_ns()
            self.conn._end(self, code, True)
            self.conn._flush()

    def close(self) -> None:
        """Abandon the stream (its task was cancelled): RST_STREAM(CANCEL) if it is still open."""
        self.fail(ERR_RESET)


class Http2Connection(asyncio.Protocol):
    """A client HTTP/2 connection; ``stream()`` opens a request on it while ``available()``.

    ``registry`` is the session's set of objects in flight: each stream is in it while
    in flight (the timeout sweep reads ``deadline_ns`` and calls ``fail``), and so is
    the connection while open (``deadline_ns`` always 0), so that closing the session
    closes it. ``scheme`` is ``http`` or ``https`` (the ``:scheme`` of every request).
    """

    deadline_ns = 0  # never timed out as a whole: its streams are

    def __init__(self, registry: set[InFlight], limits: Limits, *, scheme: str) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._registry = registry
        self._streams: dict[int, Http2Stream] = {}
        self._blocked: dict[int, Http2Stream] = {}  # uploads waiting for window or the transport
        self._h2 = _Framer(self._streams, limits)
        self._scheme = scheme.encode("ascii")
        self._heads: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self._max_head = limits.max_head_bytes
        self._max_body = limits.max_body_bytes
        self._max_streams = INITIAL_MAX_STREAMS
        self._next_sid = 1
        self._goaway = False
        self._paused = False
        loop = asyncio.get_running_loop()
        self._create_future = loop.create_future
        self._call_soon = loop.call_soon
        self._flush_pending = False
        self._unacked = 0  # DATA of ended streams not yet handed back to the connection window

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._registry.add(self)
        h2 = self._h2
        h2.initiate_connection()
        h2.increment_flow_control_window(CONNECTION_WINDOW - _DEFAULT_WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = perf_counter_ns()  # when these bytes arrived, for every stream they end or begin
        h2 = self._h2
        try:
            events = h2.receive_data(data)
        except DenialOfServiceError:
            self._drop(ERR_RESET, h2.decoding, ERR_TOO_LARGE)
            return
        except ProtocolError:
            self._drop(ERR_PROTOCOL)
            return
        streams = self._streams
        for ev in events:
            t = type(ev)
            if t is DataReceived:
                sid = ev.stream_id
                n = ev.flow_controlled_length
                if n:
                    if ev.stream_ended is None:
                        h2.acknowledge_received_data(n, sid)
                    else:
                        # The stream is over: only the connection window wants these bytes
                        # back, and h2 returns them only in halves of it; ~3 us saved a response.
                        self._unacked += n
                        if self._unacked >= _ACK_BATCH:
                            h2.acknowledge_received_data(self._unacked, sid)
                            self._unacked = 0
                s = streams.get(sid)
                if s is not None:
                    s.bytes_in += n
                    s.body_bytes += n
                    if s.body_bytes > self._max_body:
                        s.t_done = now
                        self._end(s, ERR_TOO_LARGE, True)
                    else:
                        s.chunks.append(ev.data)
            elif t is ResponseReceived:
                s = streams.get(ev.stream_id)
                if s is not None:
                    if not s.t_first:
                        s.t_first = now
                    if s.head_bytes > self._max_head:
                        s.t_done = now
                        self._end(s, ERR_TOO_LARGE, True)
                        continue
                    fields = ev.headers  # unvalidated (see the module docstring): :status must come first
                    try:
                        name, code = fields[0]
                        status = int(code) if name == b":status" else 0
                    except (ValueError, IndexError):
                        status = 0
                    if not 200 <= status <= 999:
                        s.t_done = now
                        self._end(s, ERR_PROTOCOL, True)
                        continue
                    s.status = status
                    s.headers = hs = fields[1:]
                    for name, value in hs:
                        if name == b"content-encoding":
                            s.encoding = value
                        elif name == b"set-cookie":
                            s.has_cookies = True
                        elif name == b"location" and 300 <= s.status < 400:
                            s.location = value
            elif t is StreamEnded:
                s = streams.get(ev.stream_id)
                if s is not None:
                    s.t_done = now
                    # Inlined _end for the common case: the request was sent whole.
                    if s.out or s.sending is not None:
                        self._end(s, s.status or ERR_PROTOCOL, True)
                    else:
                        del streams[s.sid]
                        self._registry.discard(s)
                        s.deadline_ns = 0
                        w = s.waiter
                        if not w.done():  # type: ignore[union-attr]
                            w.set_result(s.status or ERR_PROTOCOL)  # type: ignore[union-attr]
            elif t is InformationalResponseReceived or t is TrailersReceived:
                s = streams.get(ev.stream_id)
                if s is not None:
                    if not s.t_first:
                        s.t_first = now
                    if s.head_bytes > self._max_head:
                        s.t_done = now
                        self._end(s, ERR_TOO_LARGE, True)
            elif t is StreamReset:
                s = streams.get(ev.stream_id)
                if s is not None:
                    s.t_done = now
                    s.unprocessed = ev.error_code == ErrorCodes.REFUSED_STREAM
                    self._end(s, ERR_RESET, False)
            elif t is WindowUpdated:
                if self._blocked:
                    if ev.stream_id:
                        s = self._blocked.get(ev.stream_id)
                        if s is not None:
                            self._pump(s)
                    else:
                        self._pump_all()
            elif t is RemoteSettingsChanged:
                self._max_streams = h2.remote_settings.max_concurrent_streams
                if self._blocked:
                    self._pump_all()
            elif t is ConnectionTerminated:
                self._goaway = True
                last = ev.last_stream_id
                for s in list(streams.values()):
                    if s.sid > last:
                        s.t_done = now
                        s.unprocessed = True
                        self._end(s, ERR_RESET, False)
            # Other events (SETTINGS ACK, PING, PRIORITY, unknown frames) need nothing from us.
        if h2.oversized_frame_pending():
            self._drop(ERR_PROTOCOL)
            return
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._registry.discard(self)
        if self._streams:
            now = perf_counter_ns()
            for s in list(self._streams.values()):
                s.t_done = now
                self._end(s, ERR_RESET, False)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._blocked:
            self._pump_all()
            self._flush()

    # -- used by the client ---------------------------------------------------
    def available(self) -> bool:
        """Whether a new stream may be opened now (open, no GOAWAY, below the server's stream limit)."""
        return (
            not self.closed and not self._goaway and len(self._streams) < self._max_streams
            and self._next_sid <= _MAX_STREAM_ID
        )

    def stream(self) -> Http2Stream:
        """A new stream; its id is taken when it is sent."""
        return Http2Stream(self)

    def fail(self, code: int) -> None:
        """Never called by the sweep (``deadline_ns`` is 0); drops the connection like ``close``."""
        self.close()

    def close(self) -> None:
        """Drop the connection (GOAWAY, then abort): streams in flight end ``reset``."""
        if self.closed:
            return
        self.closed = True
        t = self.transport
        if t is not None:
            try:
                self._h2.close_connection()
                t.write(self._h2.data_to_send())
            except (ProtocolError, RuntimeError):  # h2 already closed, or the transport is
                pass
            t.abort()

    # -- streams --------------------------------------------------------------
    def _open(self, s: Http2Stream, wire: bytes, body: Iterable[bytes] | None) -> None:
        sid = self._next_sid
        if self.closed or self._goaway or sid > _MAX_STREAM_ID:
            self._refuse(s)
            return
        i = wire.find(b"\r\n\r\n")
        end = len(wire) if i < 0 else i + 4
        head = wire if end == len(wire) else wire[:end]
        fields = self._heads.get(head)
        if fields is None:
            fields = _request_fields(head[:-4] if i >= 0 else head, self._scheme)
            if len(self._heads) >= _MAX_CACHED_HEADS:
                self._heads.clear()
            self._heads[head] = fields
        last = end == len(wire) and body is None
        self._next_sid = sid + 2  # h2 counts an id as used once it tried to open it, even if it failed
        try:
            self._h2.send_headers(sid, fields, end_stream=last)
        except ProtocolError:  # the server lowered its stream limit under us: never sent
            self._refuse(s)
            return
        s.sid = sid
        self._streams[sid] = s
        self._registry.add(s)
        if not last:
            if end < len(wire):
                s.out = memoryview(wire)[end:]
            if body is not None:
                s.sending = iter(body)
            self._pump(s)
        # One write for every stream opened in this turn of the loop: with many streams
        # in flight that saves a send() system call per request (~12% of the CPU at 50).
        if not self._flush_pending:
            self._flush_pending = True
            self._call_soon(self._flush_later)

    def _flush_later(self) -> None:
        self._flush_pending = False
        self._flush()

    def _refuse(self, s: Http2Stream) -> None:
        s.unprocessed = True
        s.t_done = perf_counter_ns()
        s.waiter.set_result(ERR_RESET)  # type: ignore[union-attr]

    def _pump(self, s: Http2Stream) -> None:
        """Send what the windows, the frame size and the transport allow of ``s``'s upload."""
        h2 = self._h2
        sid = s.sid
        try:
            while True:
                out = s.out
                if not out:
                    if s.sending is None:
                        break
                    try:
                        chunk = next(s.sending, None)
                        if chunk is not None:
                            s.out = memoryview(chunk)
                    except Exception:  # noqa: BLE001 - a body that cannot be read as declared, whatever
                        # its file object raised: the request is on the wire, so it is recorded (invalid_request)
                        # as on HTTP/1.1, never left to the task with no row
                        s.t_done = perf_counter_ns()
                        self._end(s, ERR_INVALID_REQUEST, True)
                        return
                    if chunk is None:
                        s.sending = None
                        h2.end_stream(sid)
                        break
                    continue
                window = h2.local_flow_control_window(sid)
                if self._paused or window <= 0:
                    self._blocked[sid] = s
                    return
                n = min(window, h2.max_outbound_frame_size, len(out))
                done = n == len(out) and s.sending is None
                h2.send_data(sid, out[:n], end_stream=done)
                s.out = b"" if done else out[n:]
        except ProtocolError:
            # h2 handles a whole read before we see its events: the server may have reset
            # or ended this stream in the same read; its event, still to come, resolves it.
            s.out = b""
            s.sending = None
        self._blocked.pop(sid, None)

    def _pump_all(self) -> None:
        for s in list(self._blocked.values()):
            if s.sid in self._streams:
                self._pump(s)

    def _end(self, s: Http2Stream, code: int, reset: bool) -> None:
        """Resolve ``s`` with ``code``; ``reset``: send RST_STREAM(CANCEL) unless the stream is closed both ways.

        A response that ends before its request was sent whole also stops the upload.
        """
        sid = s.sid
        self._streams.pop(sid, None)
        self._registry.discard(s)
        s.deadline_ns = 0
        if s.out or s.sending is not None:
            s.out = b""
            s.sending = None
            self._blocked.pop(sid, None)
            reset = code > 0 or reset
        if reset and not self.closed:
            try:
                self._h2.reset_stream(sid, ErrorCodes.CANCEL)
            except ProtocolError:  # already closed in h2 (both ends done, or reset)
                pass
        w = s.waiter
        if w is not None and not w.done():
            w.set_result(code)

    def _drop(self, code: int, culprit: int = 0, culprit_code: int = 0) -> None:
        """A connection error: every stream in flight ends with ``code`` (``culprit`` with its own) and we hang up."""
        t = self.transport
        if t is not None and not self.closed:
            out = self._h2.data_to_send()  # h2 queued a GOAWAY naming the error
            if out:
                t.write(out)
        self.closed = True
        now = perf_counter_ns()
        for s in list(self._streams.values()):
            s.t_done = now
            self._end(s, culprit_code if s.sid == culprit else code, False)
        if t is not None:
            t.abort()

    def _flush(self) -> None:
        """Write what h2 has queued; after a GOAWAY, hang up once the last stream has ended."""
        out = self._h2.data_to_send()
        if out and not self.closed:
            self.transport.write(out)  # type: ignore[union-attr]
        if self._goaway and not self._streams:
            self.close()
