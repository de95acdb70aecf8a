"""Property tests of the response path: the wire, byte by byte, with no server.

A :class:`Connection` or :class:`BareConnection` is driven as the protocol it
is, through a fake transport: responses (random status, headers, body,
Content-Length / chunked / close framing, interim 1xx, keep-alive or close)
are cut at random byte boundaries into reads; extra bytes follow, bodies are
cut short, garbage comes instead. Properties: each request's future resolves
exactly once; a complete valid response resolves to its status (and, for a
Connection, its own headers and body, never another's); anything incomplete
or invalid resolves to an error code; nothing raises out of a callback;
stray bytes poison the connection.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgen.http.connection import BareConnection, Connection
from loadgen.http.limits import Limits
from loadgen.engine.recorder import ERR_PROTOCOL, ERR_RESET, ERR_TOO_LARGE

_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLASSES = pytest.mark.parametrize("cls", [Connection, BareConnection], ids=["connection", "bare"])

_LOOP = asyncio.new_event_loop()


class _Future(asyncio.Future):  # type: ignore[type-arg]
    """Counts how often it is resolved (the connection guards with done(); this sees through it)."""

    resolved = 0

    def set_result(self, result: object) -> None:
        self.resolved += 1
        super().set_result(result)


class _Wire:
    """The fake transport: keeps what is written, notes an abort."""

    def __init__(self) -> None:
        self.aborted = False
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True


class _Driver:
    """One connection on a fake wire, fed as the event loop would feed it."""

    def __init__(self, cls: type, limits: Limits | None = None) -> None:
        self.wire = _Wire()
        self.lost = False
        self.futures: list[_Future] = []

        async def make() -> BareConnection:
            return cls(set(), limits) if limits else cls(set())

        self.conn = _LOOP.run_until_complete(make())
        self.conn._create_future = lambda: _Future(loop=_LOOP)
        self.conn.connection_made(self.wire)

    def send(self) -> _Future:
        assert not self.wire.aborted
        f = self.conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1 << 62)
        self.futures.append(f)
        return f

    def feed(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            if self.wire.aborted:  # the loop delivers nothing more after abort(), then connection_lost
                break
            self.conn.data_received(piece)
        self._maybe_lost()

    def close(self, exc: Exception | None = None) -> None:
        if not self.lost:
            self.lost = True
            self.conn.connection_lost(exc)

    def _maybe_lost(self) -> None:
        if self.wire.aborted:
            self.close()

    def check_once(self) -> None:
        for f in self.futures:
            assert f.resolved <= 1
            if f.done():
                assert f.resolved == 1


# -- strategies ---------------------------------------------------------------------

_TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
_FRAMING_NAMES = {"content-length", "transfer-encoding", "connection", "content-encoding", "set-cookie",
                  "keep-alive", "upgrade", "proxy-connection"}
_HEADER = st.tuples(
    _TOKEN.filter(lambda n: n.lower() not in _FRAMING_NAMES),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
)


class Wire:
    """A valid response as bytes, with what a client must make of it."""

    def __init__(self, data: bytes, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
                 framing: str, close: bool, head_end: int) -> None:
        self.data, self.status, self.headers, self.body = data, status, headers, body
        self.framing, self.close, self.head_end = framing, close, head_end

    def __repr__(self) -> str:
        return f"Wire({self.data!r})"


@st.composite
def responses(draw, *, may_close: bool = True, max_body: int = 300) -> Wire:
    framing = draw(st.sampled_from(["length", "chunked", "close"] if may_close else ["length", "chunked"]))
    no_body = framing != "close" and draw(st.integers(0, 9)) == 0
    status = draw(st.sampled_from([204, 304])) if no_body else draw(st.integers(200, 599).filter(
        lambda s: s not in (204, 304)))
    close = framing == "close" or (may_close and draw(st.booleans()))
    headers = [(k.encode(), v.encode()) for k, v in draw(st.lists(_HEADER, max_size=4))]
    body = b"" if no_body else draw(st.binary(max_size=max_body))
    if framing == "length":
        headers.insert(draw(st.integers(0, len(headers))), (b"Content-Length", str(len(body)).encode()))
    elif framing == "chunked":
        headers.insert(draw(st.integers(0, len(headers))), (b"Transfer-Encoding", b"chunked"))
    if close:
        headers.append((b"Connection", b"close"))
    interim = b"".join(
        b"HTTP/1.1 %d Interim\r\nX-Interim: yes\r\n\r\n" % s
        for s in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2))
    )
    head = interim + b"HTTP/1.1 %d Some Reason\r\n" % status
    head += b"".join(b"%s: %s\r\n" % kv for kv in headers) + b"\r\n"
    if framing == "chunked" and not no_body:
        sizes = draw(st.lists(st.integers(1, 64), max_size=8))
        out, i = [], 0
        for n in sizes:
            if i >= len(body):
                break
            part = body[i:i + n]
            out.append(b"%x\r\n%s\r\n" % (len(part), part))
            i += n
        if i < len(body):
            out.append(b"%x\r\n%s\r\n" % (len(body) - i, body[i:]))
        wire_body = b"".join(out) + b"0\r\n\r\n"
    elif framing == "chunked":
        wire_body = b""
    else:
        wire_body = body
    return Wire(head + wire_body, status, headers, body, framing, close, len(head))


def _split(draw, data: bytes) -> list[bytes]:
    """``data`` cut at random points (each read at least one byte)."""
    if len(data) <= 1:
        return [data] if data else []
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=6))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


# -- properties -----------------------------------------------------------------------


@CLASSES
@_SETTINGS
@given(data=st.data())
def test_valid_responses_split_anywhere_resolve_to_their_own_status_headers_and_body(cls, data):
    n = data.draw(st.integers(1, 4))
    rs = [data.draw(responses(may_close=False)) for _ in range(n - 1)] + [data.draw(responses())]
    d = _Driver(cls)
    for r in rs:
        f = d.send()
        d.feed(_split(data.draw, r.data))
        if r.framing == "close":
            assert not f.done()  # only the close ends this body
            d.close()
        assert f.done() and f.result() == r.status, (r, f.result() if f.done() else None)
        if cls is Connection:
            assert d.conn.headers == r.headers and d.conn.body() == r.body
        if not r.close:
            assert not d.wire.aborted and d.conn.keep_alive
    d.check_once()


@CLASSES
@_SETTINGS
@given(data=st.data())
def test_bytes_after_the_response_poison_the_connection_and_never_join_it(cls, data):
    r = data.draw(responses(may_close=False))
    extra = data.draw(st.one_of(
        responses().map(lambda w: w.data),
        st.binary(min_size=1, max_size=64),
    ).filter(lambda b: b.strip(b"\r\n") != b""))  # llhttp skips blank lines between messages
    same_read = data.draw(st.booleans())
    d = _Driver(cls)
    f = d.send()
    pieces = _split(data.draw, r.data)
    if same_read:
        # A prefix of the extra bytes, past their first byte that is not a blank line's.
        first = next(i for i, b in enumerate(extra) if b not in b"\r\n")
        pieces[-1] += extra[: data.draw(st.integers(first + 1, len(extra)))]
    else:
        pieces += _split(data.draw, extra)
    d.feed(pieces)
    assert f.done() and f.result() == r.status
    if cls is Connection:
        assert d.conn.headers == r.headers and d.conn.body() == r.body
    assert d.wire.aborted and d.conn.closed  # never reused
    d.close()
    d.check_once()


@CLASSES
@_SETTINGS
@given(data=st.data())
def test_a_response_cut_short_by_the_close_is_a_reset_unless_the_close_frames_it(cls, data):
    r = data.draw(responses().filter(lambda w: w.status not in (204, 304)))
    cut = data.draw(st.integers(0, len(r.data) - 1))
    d = _Driver(cls)
    f = d.send()
    d.feed(_split(data.draw, r.data[:cut]))
    d.close(data.draw(st.sampled_from([None, ConnectionResetError()])))
    assert f.done()
    if r.framing == "close" and cut >= r.head_end:
        assert f.result() == r.status
        if cls is Connection:
            assert d.conn.body() == r.body[: cut - r.head_end]
    else:
        assert f.result() == ERR_RESET
    d.check_once()


@CLASSES
@_SETTINGS
@given(data=st.data())
def test_garbage_is_an_error_code_never_a_status_or_an_exception(cls, data):
    junk = data.draw(st.one_of(
        st.binary(min_size=1, max_size=200),
        st.lists(st.sampled_from([b"HTTP/1.1 ", b"200", b" OK", b"\r\n", b":", b"Content-Length: ",
                                  b"-1", b"99999999999999999999", b"Transfer-Encoding: chunked", b"zz",
                                  b"\x00", b" ", b"HTTP/9.9 ", b"101"]), min_size=1, max_size=12).map(b"".join),
    ))
    d = _Driver(cls)
    f = d.send()
    d.feed(_split(data.draw, junk))
    d.close()
    assert f.done()
    code = f.result()
    if code > 0:  # the fragments can make a valid response by chance: then it must be whole and honest
        assert 200 <= code <= 999 and code != 101
    else:
        assert code in (ERR_RESET, ERR_PROTOCOL, ERR_TOO_LARGE)
    d.check_once()


@CLASSES
@_SETTINGS
@given(data=st.data())
def test_size_limits_cut_only_what_passes_them(cls, data):
    r = data.draw(responses(may_close=False, max_body=2000))
    max_head = data.draw(st.integers(1, 300))
    max_body = data.draw(st.integers(0, 2000))
    d = _Driver(cls, Limits(max_head_bytes=max_head, max_body_bytes=max_body, max_decoded_bytes=1))
    f = d.send()
    pieces = _split(data.draw, r.data)
    d.feed(pieces)
    assert f.done()
    wire_body = len(r.data) - r.head_end
    biggest = max(map(len, pieces))
    if r.head_end <= max_head and wire_body <= max_body:
        assert f.result() == r.status  # within the limits: never cut
    elif r.head_end > max_head + biggest or wire_body > max_body + biggest:
        assert f.result() == ERR_TOO_LARGE and d.wire.aborted
    else:  # past a limit by less than one read: either is allowed
        assert f.result() in (r.status, ERR_TOO_LARGE)
    d.check_once()
