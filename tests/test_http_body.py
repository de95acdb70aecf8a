"""Request bodies (loadgen/http/body.py) sent to a real aiohttp server that parses them itself.

Every body goes over a plain socket, piece by piece from ``Body.chunks()``, with
``Body.length`` as its Content-Length; the server reads it with aiohttp's own
multipart reader (``request.multipart()``) or form parser (``request.post()``)
and answers with what it saw: field names, filenames, content types, sizes and
the sha256 of each part. A wrong length, boundary or quoting shows up as a part
the server did not see as given.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BodyPartReader, web

from aiohttp_thread import ThreadedApp
from loadgen.errors import UsageError
from loadgen.http import body as body_mod
from loadgen.http.body import CHUNK, SMALL, Body, BodyChanged, encode_body

pytestmark = pytest.mark.timeout(180)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the server -------------------------------------------------------------------


async def _parts(request: web.Request) -> web.Response:
    """Every part as aiohttp's multipart reader sees it, content hashed as it streams."""
    reader = await request.multipart()
    parts = []
    async for part in reader:
        assert isinstance(part, BodyPartReader)
        h = hashlib.sha256()
        size = 0
        head = b""
        while chunk := await part.read_chunk(1 << 18):
            h.update(chunk)
            if size < 256:
                head += chunk[: 256 - size]
            size += len(chunk)
        parts.append({
            "name": part.name,
            "filename": part.filename,
            "content_type": part.headers.get("Content-Type"),
            "headers": sorted(part.headers),
            "extra": {k: v for k, v in part.headers.items() if k.lower().startswith("x-")},
            "size": size,
            "sha256": h.hexdigest(),
            "text": head.decode(errors="replace"),
        })
    return web.json_response({
        "content_type": request.headers.get("Content-Type"),
        "content_length": request.content_length,
        "parts": parts,
    })


async def _form(request: web.Request) -> web.Response:
    """The body through aiohttp's form parser (urlencoded or multipart)."""
    form = await request.post()
    fields: list[list[Any]] = []
    for name, value in form.items():
        if isinstance(value, web.FileField):
            content = value.file.read()
            fields.append([name, {"filename": value.filename, "content_type": value.content_type,
                                  "sha256": _sha(content), "size": len(content)}])
        else:
            fields.append([name, value if isinstance(value, str) else {"bytes": value.hex()}])
    return web.json_response({"content_type": request.headers.get("Content-Type"), "fields": fields})


async def _raw(request: web.Request) -> web.Response:
    h = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_any():
        h.update(chunk)
        size += len(chunk)
    return web.json_response({"content_type": request.headers.get("Content-Type"), "size": size,
                              "sha256": h.hexdigest()})


def _app() -> web.Application:
    app = web.Application(client_max_size=16 << 20)
    app.router.add_post("/parts", _parts)
    app.router.add_post("/form", _form)
    app.router.add_post("/raw", _raw)
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedApp]:
    with ThreadedApp(_app) as s:
        yield s


def _send(server: ThreadedApp, body: Body, path: str = "/parts", each: Callable[[], None] | None = None) -> dict[str, Any]:
    """POST ``body`` over a socket, streaming ``chunks()``; the server's JSON answer.

    Checks on the way what every caller relies on: pieces are non-empty bytes of
    at most CHUNK, they add up to ``length``, and a small body is its one piece.
    """
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {body.length}\r\nConnection: close\r\n"
    if body.content_type is not None:
        head += f"Content-Type: {body.content_type}\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head.encode() + b"\r\n")
        for piece in body.chunks():
            assert type(piece) is bytes and 0 < len(piece) <= CHUNK
            sock.sendall(piece)
            sent += len(piece)
            if each is not None:
                each()
        assert sent == body.length
        if body.small is not None:
            assert list(body.chunks()) == ([body.small] if body.small else [])
        answer = bytearray()
        while data := sock.recv(1 << 16):
            answer += data
    status, _, rest = bytes(answer).partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 200"), bytes(answer)[:2000]
    return json.loads(rest.partition(b"\r\n\r\n")[2])


def _part(name: str, content: bytes, filename: str | None, content_type: str | None) -> dict[str, Any]:
    return {"name": name, "filename": filename, "content_type": content_type, "size": len(content),
            "sha256": _sha(content)}


def _seen(answer: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("name", "filename", "content_type", "size", "sha256")
    return [{k: p[k] for k in keys} for p in answer["parts"]]


# -- every files= form, with data= fields ----------------------------------------


def test_every_files_form_with_data_fields(server: ThreadedApp, tmp_path: Path) -> None:
    csv = tmp_path / "report.csv"
    csv.write_bytes(b"a,b\n1,2\n" * 5000)  # 40 KB, read through its file object
    png = tmp_path / "photo.png"
    png.write_bytes(os.urandom(150_000))  # more than two CHUNKs, through its path
    four = io.BytesIO(b"four-tuple content")
    with open(csv, "rb") as fobj:
        body = encode_body(
            data={"title": "Q3 report", "tags": ["a", "b"], "count": 5, "ratio": 1.5, "skipped": None,
                  "raw": "é".encode()},
            files=[
                ("plain", b"bytes alone"),
                ("text", "str alone, é"),
                ("fobj", fobj),
                ("path", png),
                ("two", ("data.json", b'{"k": 1}')),
                ("three", ("blob.bin", b"\x01\x02", "application/x-custom")),
                ("four", ("notes.txt", four, "text/markdown", {"X-Checksum": "abc123"})),
                ("field", (None, "a form field sent through files=")),
                ("untyped", ("y.txt", b"no type", None)),
                ("archive", ("logs.tar.gz", b"\x1f\x8b")),
                ("gone", None),
                ("path", ("renamed.bin", png)),  # the same name twice: two parts
            ],
        )
        assert body.content_type is not None and body.content_type.startswith("multipart/form-data; boundary=")
        assert body.small is None and body.replayable
        answer = _send(server, body)
        form = _send(server, body, "/form")  # replayable: the same body a second time, to request.post()

    assert answer["content_type"] == body.content_type and answer["content_length"] == body.length
    expected = [
        _part("title", b"Q3 report", None, None),
        _part("tags", b"a", None, None),
        _part("tags", b"b", None, None),
        _part("count", b"5", None, None),
        _part("ratio", b"1.5", None, None),
        _part("raw", "é".encode(), None, None),
        _part("plain", b"bytes alone", "plain", "application/octet-stream"),  # requests: the field's name
        _part("text", "str alone, é".encode(), "text", "application/octet-stream"),
        _part("fobj", csv.read_bytes(), "report.csv", "text/csv"),
        _part("path", png.read_bytes(), "photo.png", "image/png"),
        _part("two", b'{"k": 1}', "data.json", "application/json"),
        _part("three", b"\x01\x02", "blob.bin", "application/x-custom"),
        _part("four", b"four-tuple content", "notes.txt", "text/markdown"),
        _part("field", b"a form field sent through files=", None, None),
        _part("untyped", b"no type", "y.txt", None),
        _part("archive", b"\x1f\x8b", "logs.tar.gz", "application/gzip"),
        _part("path", png.read_bytes(), "renamed.bin", "application/octet-stream"),
    ]
    assert _seen(answer) == expected
    four_part = answer["parts"][12]
    assert four_part["extra"] == {"X-Checksum": "abc123"}
    assert four_part["headers"] == ["Content-Disposition", "Content-Type", "X-Checksum"]

    fields = form["fields"]
    assert [f[0] for f in fields] == [p["name"] for p in expected]
    assert fields[0] == ["title", "Q3 report"] and fields[3] == ["count", "5"] and fields[13][1].startswith("a form")
    assert fields[9][1] == {"filename": "photo.png", "content_type": "image/png", "sha256": _sha(png.read_bytes()),
                            "size": png.stat().st_size}


def test_extra_headers_replace_the_built_ones(server: ThreadedApp) -> None:
    body = encode_body(files={"f": ("a.txt", b"x", None, {"content-type": "text/x-given", "X-Id": "7"})})
    (part,) = _send(server, body)["parts"]
    assert part["content_type"] == "text/x-given" and part["extra"] == {"X-Id": "7"}


def test_unicode_and_quoting_in_names(server: ThreadedApp) -> None:
    body = encode_body(
        data={"prénom": "Zoë", 'say "x"': "quoted name", "bin": b"\x00\xff"},
        files={
            "doc": ("résumé 履歴書.pdf", b"%PDF-1.7"),
            "q": ('a "quoted"\r\nname.txt', b"q"),
            "ü": b"umlaut field",
        },
    )
    seen = _seen(_send(server, body))
    assert seen == [
        _part("prénom", "Zoë".encode(), None, None),
        _part("say %22x%22", b"quoted name", None, None),  # percent-encoded, as browsers do
        _part("bin", b"\x00\xff", None, None),
        _part("doc", b"%PDF-1.7", "résumé 履歴書.pdf", "application/pdf"),
        _part("q", b"q", "a %22quoted%22%0D%0Aname.txt", "text/plain"),
        _part("ü", b"umlaut field", "ü", "application/octet-stream"),
    ]


def test_empty_files_and_empty_fields(server: ThreadedApp, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    body = encode_body(data={"blank": ""}, files={"p": empty, "b": ("e.bin", b""), "io": ("e.dat", io.BytesIO())})
    assert _seen(_send(server, body)) == [
        _part("blank", b"", None, None),
        _part("p", b"", "empty.txt", "text/plain"),
        _part("b", b"", "e.bin", "application/octet-stream"),
        _part("io", b"", "e.dat", "application/octet-stream"),
    ]


def test_file_objects_are_sent_from_their_position(server: ThreadedApp, tmp_path: Path) -> None:
    path = tmp_path / "seq.bin"
    content = bytes(range(256)) * 1000
    path.write_bytes(content)
    mem = io.BytesIO(b"0123456789")
    mem.seek(4)
    with open(path, "rb") as f:
        f.seek(1000)
        body = encode_body(files={"mem": ("m.bin", mem), "file": f})
        assert body.length == len(_raw_bytes(body))  # chunks() agrees with the measured length
        seen = _seen(_send(server, body))
    assert seen == [
        _part("mem", b"456789", "m.bin", "application/octet-stream"),
        _part("file", content[1000:], "seq.bin", "application/octet-stream"),
    ]


def _raw_bytes(body: Body) -> bytes:
    return b"".join(body.chunks())


def test_lengths_are_measured_without_reading(tmp_path: Path) -> None:
    class CountingBytesIO(io.BytesIO):
        reads = 0

        def read(self, size: int | None = -1, /) -> bytes:
            self.reads += 1
            return super().read(size)

    f = CountingBytesIO(b"x" * 300_000)
    path = tmp_path / "later.bin"
    path.write_bytes(b"y" * 1234)
    body = encode_body(files={"f": f, "p": path})
    assert f.reads == 0 and f.tell() == 0
    assert body.length == len(_raw_bytes(body)) and f.reads > 0


def test_paths_are_opened_by_chunks_and_closed_after(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(5 * CHUNK))

    def open_on_path() -> int:
        fds = os.listdir("/proc/self/fd")
        return sum(1 for fd in fds if _readlink(f"/proc/self/fd/{fd}") == str(path))

    body = encode_body(files={"f": path})
    assert open_on_path() == 0
    it = body.chunks()
    next(it)
    next(it)
    assert open_on_path() == 1  # opened only now
    it.close()  # a sender that gives up part way
    assert open_on_path() == 0
    assert len(_raw_bytes(body)) == body.length and open_on_path() == 0


def _readlink(p: str) -> str:
    try:
        return os.readlink(p)
    except OSError:
        return ""


# -- replay ------------------------------------------------------------------------


def test_replay_gives_the_same_bytes(server: ThreadedApp, tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    path.write_bytes(os.urandom(200_000))
    mem = io.BytesIO(b"skip:" + os.urandom(100_000))
    mem.seek(5)
    body = encode_body(data={"k": "v"}, files={"p": path, "m": mem, "b": b"bytes"})
    assert body.replayable
    first, second = _raw_bytes(body), _raw_bytes(body)
    assert first == second and len(first) == body.length
    assert _send(server, body) == _send(server, body)  # a 307/308 or a retry sends what the first did


class _SizedStream:
    """A non-seekable stream that declares its length, as requests-toolbelt's streams do."""

    def __init__(self, f: io.BufferedReader, length: int) -> None:
        self._f = f
        self._length = length

    def read(self, size: int = -1, /) -> bytes:
        return self._f.read(size)

    def __len__(self) -> int:
        return self._length


def test_a_non_seekable_stream_is_sent_once(server: ThreadedApp) -> None:
    content = os.urandom(200_000)  # more than a pipe holds: a writer thread feeds it
    r, w = os.pipe()

    def feed() -> None:
        with open(w, "wb") as out:
            out.write(content)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with open(r, "rb") as pipe:
        body = encode_body(files={"s": ("s.bin", _SizedStream(pipe, len(content)))})
        assert not body.replayable and body.small is None
        assert _seen(_send(server, body)) == [_part("s", content, "s.bin", "application/octet-stream")]
        with pytest.raises(BodyChanged, match="already read"):
            list(body.chunks())
    writer.join(10)


# -- files that change between encode and send ---------------------------------


def _until_changed(body: Body) -> int:
    """Bytes chunks() yielded before it raised BodyChanged."""
    sent = 0
    with pytest.raises(BodyChanged) as err:
        for piece in body.chunks():
            sent += len(piece)
    assert "\n" not in str(err.value)
    return sent


@pytest.mark.parametrize("change", ["grow", "shrink", "delete"])
def test_a_path_that_changed_raises(tmp_path: Path, change: str) -> None:
    path = tmp_path / "c.bin"
    path.write_bytes(os.urandom(3 * CHUNK + 7))
    body = encode_body(data={"before": "x"}, files={"c": path, "after": b"tail"})
    if change == "grow":
        with open(path, "ab") as f:
            f.write(b"!")
    elif change == "shrink":
        os.truncate(path, CHUNK)
    else:
        path.unlink()
    # Never the whole length: the server cannot take a body that lies about its length.
    assert _until_changed(body) < body.length


def test_a_file_object_that_changed_raises(tmp_path: Path) -> None:
    mem = io.BytesIO(b"abc" * 50_000)
    body = encode_body(files={"m": mem})
    mem.seek(0, os.SEEK_END)
    mem.write(b"more")
    assert _until_changed(body) < body.length
    mem.truncate(1000)
    assert _until_changed(body) < body.length
    with open(tmp_path / "f.bin", "wb+") as f:
        f.write(b"z" * 5000)
        f.seek(0)
        body = encode_body(data=f)
        f.close()
        with pytest.raises(BodyChanged, match="could not be rewound"):
            list(body.chunks())


# -- data= without files ---------------------------------------------------------


def test_data_fields_are_urlencoded(server: ThreadedApp) -> None:
    body = encode_body(data={"a": "1", "b": ["x", "y"], "n": None, "u": "é & =", "f": 2.5})
    assert body.content_type == "application/x-www-form-urlencoded" and body.replayable
    assert body.small == b"a=1&b=x&b=y&u=%C3%A9+%26+%3D&f=2.5" and body.length == len(body.small)
    form = _send(server, body, "/form")
    assert form["fields"] == [["a", "1"], ["b", "x"], ["b", "y"], ["u", "é & ="], ["f", "2.5"]]
    pairs = encode_body(data=[("k", "1"), ("k", "2")], files={})  # an empty files= is no files, as requests
    assert pairs.small == b"k=1&k=2"


def test_raw_data_is_sent_as_is(server: ThreadedApp, tmp_path: Path) -> None:
    for data, raw in ((b"\x00bytes", b"\x00bytes"), ("texté", "texté".encode()), (bytearray(b"ba"), b"ba")):
        body = encode_body(data=data)
        assert body.content_type is None and body.small == raw
        assert _send(server, body, "/raw") == {"content_type": None, "size": len(raw), "sha256": _sha(raw)}
    big = os.urandom(SMALL + 1)
    body = encode_body(data=big)
    assert body.small is None and body.replayable and _raw_bytes(body) == big
    path = tmp_path / "upload.bin"
    path.write_bytes(os.urandom(300_000))
    for given in (path, open(path, "rb")):
        body = encode_body(data=given)
        assert body.content_type is None and body.small is None and body.replayable
        assert _send(server, body, "/raw")["sha256"] == _sha(path.read_bytes())
        if isinstance(given, io.BufferedReader):
            given.close()
    assert encode_body() == Body(None, 0, b"", True) and list(encode_body().chunks()) == []


def test_small_and_chunked_bodies(tmp_path: Path) -> None:
    small = encode_body(files={"a": b"x" * 1000})
    assert small.small is not None and len(small.small) == small.length <= SMALL
    big = encode_body(files={"a": b"x" * (SMALL + 1)})
    assert big.small is None and big.replayable
    pieces = list(big.chunks())
    assert all(0 < len(p) <= CHUNK for p in pieces) and sum(map(len, pieces)) == big.length
    streamed = encode_body(files={"a": io.BytesIO(b"tiny")})
    assert streamed.small is None  # a file object is always streamed, however small


def test_the_boundary_never_occurs_in_contents(server: ThreadedApp, monkeypatch: pytest.MonkeyPatch) -> None:
    taken, fresh = "a" * 32, "b" * 32
    draws = iter([taken, fresh])
    monkeypatch.setattr(body_mod, "_random_boundary", lambda: next(draws))
    content = f"\r\n--{taken}--\r\n".encode()
    body = encode_body(files={"f": ("f.txt", content)})
    assert body.content_type == f"multipart/form-data; boundary={fresh}"
    assert _seen(_send(server, body)) == [_part("f", content, "f.txt", "text/plain")]


# -- bad specs ---------------------------------------------------------------------


def _bad_specs(tmp: Path) -> list[tuple[dict[str, Any], str]]:
    (tmp / "dir").mkdir(exist_ok=True)
    closed = open(tmp / "closed.bin", "wb+")
    closed.close()
    text = open(tmp / "text.txt", "w+")
    r, w = os.pipe()
    os.close(w)
    pipe = open(r, "rb")
    return [
        ({"files": {"f": ("a", b"x", "t/p", {}, "more")}}, "files= field 'f' is a tuple of 5 items"),
        ({"files": {"f": ("a",)}}, "files= field 'f' is a tuple of 1 items"),
        ({"files": {"f": 42}}, "files= field 'f' has content of type int"),
        ({"files": {"f": ("a.txt", {"k": 1})}}, "files= field 'f' has content of type dict"),
        ({"files": {"a\r\nb": b"x"}}, "files= field name 'a\\r\\nb' contains CR, LF or NUL"),
        ({"data": {"x\ny": "1"}, "files": {"f": b"x"}}, "data= field name 'x\\ny' contains CR, LF or NUL"),
        ({"files": {"f": tmp / "missing.bin"}}, "files= field 'f': there is no file at"),
        ({"data": tmp / "missing.bin"}, "data=: there is no file at"),
        ({"files": {"f": tmp / "dir"}}, "files= field 'f': " + repr(str(tmp / "dir")) + " is not a regular file"),
        ({"files": {"f": text}}, "files= field 'f': the file is open in text mode"),
        ({"files": {"f": closed}}, "files= field 'f': the file is closed"),
        ({"files": {"f": pipe}}, "files= field 'f': the file is not seekable and does not say its length"),
        ({"files": {"f": ("a", b"x", "text/plain\r\nX-Evil: 1")}}, "files= field 'f''s content type contains CR"),
        ({"files": {"f": ("a", b"x", None, {"X-A": "1\r\n"})}}, "files= field 'f' header 'X-A' contains CR"),
        ({"files": {"f": ("a", b"x", None, {"Bad Name": "1"})}}, "files= field 'f' has a header name 'Bad Name'"),
        ({"files": {"f": ("a", b"x", None, ["X-A"])}}, "files= field 'f' has headers of type list"),
        ({"files": {"f": (5, b"x")}}, "files= field 'f' has a filename of type int"),
        ({"files": {"f": ("a\x00b", b"x")}}, "files= field 'f' has a filename with NUL"),
        ({"files": {5: b"x"}}, "files= has a field name of type int"),
        ({"files": [("f",)]}, "files= item 0 ("),
        ({"data": "raw", "files": {"f": b"x"}}, "data= must be form fields"),
        ({"data": {"a": object()}}, "data= field 'a' has a value of type object"),
        ({"data": {"a": [1, {"x": 1}]}, "files": {"f": b"x"}}, "data= field 'a' has a value of type dict"),
        ({"data": [("a",)]}, "data= item 0 ("),
        ({"data": 42}, "data= must be a mapping or (name, value) pairs, not int"),
    ]


def test_every_bad_spec_is_one_sentence_naming_the_field(tmp_path: Path) -> None:
    for kwargs, message in _bad_specs(tmp_path):
        with pytest.raises(UsageError) as err:
            encode_body(**kwargs)
        text = str(err.value)
        assert text.startswith(message), (kwargs, text)
        assert "\n" not in text and "\r" not in text, text


# -- memory: a 100 MB file is streamed, never held -------------------------------


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.parametrize("given", ["path", "file object"])
def test_a_100_mb_file_is_streamed_in_flat_memory(server: ThreadedApp, tmp_path: Path, given: str) -> None:
    path = tmp_path / "huge.bin"
    size = 100 * 1024 * 1024
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: no 100 MB written to the disk
        for at in (0, size // 2, size - 16):  # marks, so that the hash tells where each byte went
            f.seek(at)
            f.write(b"mark%012d" % at)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    digest = h.hexdigest()

    with open(path, "rb") as fobj:
        body = encode_body(data={"kind": "huge"}, files={"huge": path if given == "path" else fobj})
        before = peak = _rss_kb()

        def sample() -> None:
            nonlocal peak
            peak = max(peak, _rss_kb())

        answer = _send(server, body, each=sample)
    peak = max(peak, _rss_kb())
    assert body.length > size
    assert _seen(answer)[1] == _part("huge", b"", "huge.bin", "application/octet-stream") | {
        "size": size, "sha256": digest}
    assert (peak - before) < 30 * 1024, f"RSS grew by {(peak - before) / 1024:.1f} MB while streaming 100 MB"
