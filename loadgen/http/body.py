"""Request bodies as requests' users write them: ``data=`` and ``files=``, files streamed.

:func:`encode_body` turns what a scenario gives into a :class:`Body` that knows
its exact ``Content-Length`` before a byte of a file is read (``os.stat`` for a
path, seek and tell for a seekable file, ``len()`` for the rest) and yields file
content :data:`CHUNK` bytes at a time, so a 100 MB upload costs 64 KiB of
memory, not 100 MB.

- ``data=`` alone: a mapping or (name, value) pairs becomes
  ``application/x-www-form-urlencoded``; bytes, str (UTF-8), a binary file or a
  path is the body as is, with no content type.
- ``files=``: ``multipart/form-data`` (RFC 7578), ``data=``'s fields first,
  then the files, each in the order given.

Field values (``data=``) are str (UTF-8), bytes, int or float; a list or tuple
repeats the field; None is left out (as requests does).

A file (``files=``) is ``name -> content``, ``(filename, content)``,
``(filename, content, content_type)`` or ``(filename, content, content_type,
headers)``; content is bytes, str (UTF-8), a binary file object read from its
position at encode time, or a path (``pathlib.Path``, ``os.PathLike``; a str is
content, as in requests) opened when :meth:`Body.chunks` runs and closed after.
Where this differs from requests, and why:

- requests reads every file whole; here files are streamed.
- Default filename: the file object's ``name`` basename (as requests), a path's
  name, else the field name (as requests: bytes given alone arrive as a file
  named after the field). A filename of None sends no ``filename`` parameter:
  the part is a plain form field.
- Content type: requests sends one in a file's part only when the tuple gives
  it. Here a file's part without one gets the type guessed from its filename
  (``mimetypes``; ``.gz`` and the like as the compressed type) or
  ``application/octet-stream``, as browsers and urllib3's
  ``RequestField.from_tuples`` do, because RFC 7578 §4.4 otherwise reads the part
  as ``text/plain``. A content type given as None sends none, as requests; a
  part without a filename gets none unless given.
- ``headers`` (4-tuple) follow Content-Disposition and Content-Type; one of the
  same name (any case) replaces the built line.
- Content None leaves the part out, as requests.

A file object that is not seekable must declare its length (``len()``, or a
``len`` attribute as requests-toolbelt's streams have); it can be sent once
(:attr:`Body.replayable` is False). A seekable one is read from the position it
had at encode time each time the body is sent, so one file object shared by
concurrent requests would interleave: give each its own, or a path.

Names and filenames go on the wire as UTF-8 inside quotes, as browsers send
them. ``"`` in either, and CR and LF in a filename, are percent-encoded
(``%22``, ``%0D``, ``%0A``) as the WHATWG HTML standard has browsers do
(urllib3 2 does the same); CR, LF or NUL in a field name, and NUL in a
filename, are refused instead, being surely a mistake.

The boundary is 32 random hex characters (``os.urandom(16)``, as urllib3),
drawn again while it occurs in any content held in memory. Streamed files are
not scanned, as neither browsers nor urllib3 nor Go's mime/multipart scan them:
the odds that 128 random bits occur in a file are negligible.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol, cast
from urllib.parse import urlencode

from ..errors import UsageError

__all__ = ["CHUNK", "SMALL", "Body", "BodyChanged", "encode_body", "FileSpec", "FieldValue", "Readable"]

#: Largest piece :meth:`Body.chunks` yields.
CHUNK = 64 * 1024
#: Largest body held whole in :attr:`Body.small`.
SMALL = 64 * 1024

_OCTET = "application/octet-stream"
_FORM = "application/x-www-form-urlencoded"
#: mimetypes names the type inside a compressed file (``a.tar.gz`` -> tar); the file is the compressed type.
_COMPRESSED = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
}
_QUOTE = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CRLF_NUL = re.compile(r"[\r\n\x00]")
_TUPLE_FORMS = "(filename, content), (filename, content, content_type) or (filename, content, content_type, headers)"


class Readable(Protocol):
    """A binary file object: ``read(n)`` returns bytes (``open(..., "rb")``, ``io.BytesIO``)."""

    def read(self, size: int = ..., /) -> bytes: ...


class _Seekable(Readable, Protocol):
    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def tell(self) -> int: ...


FileContent = bytes | bytearray | memoryview | str | Readable | os.PathLike[str]
FileSpec = (
    FileContent
    | None
    | tuple[str | None, FileContent | None]
    | tuple[str | None, FileContent | None, str | None]
    | tuple[str | None, FileContent | None, str | None, Mapping[str, str]]
)
FieldValue = str | bytes | int | float | None | Sequence[str | bytes | int | float | None]


class BodyChanged(ValueError):
    """A file no longer has the length measured at encode time (or cannot be read again).

    Raised by :meth:`Body.chunks` before it yields the body's last byte: what was
    yielded is short of :attr:`Body.length`, so the caller must drop the
    connection, and the server never takes a body that lies about its length.
    """


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


class _Source:
    """File content read at send time: exactly ``length`` bytes, or BodyChanged."""

    __slots__ = ("length", "what")

    replayable = True

    def __init__(self, length: int, what: str) -> None:
        self.length = length
        self.what = what

    def _opened(self) -> AbstractContextManager[Readable]:
        raise NotImplementedError

    def _read(self, f: Readable, n: int) -> bytes:
        try:
            piece = f.read(n)
        except (OSError, ValueError) as exc:
            raise BodyChanged(f"{self.what} could not be read: {exc}") from exc
        if piece is None or type(piece) is bytes:
            return piece or b""
        if isinstance(piece, (bytearray, memoryview)):
            return bytes(piece)
        raise BodyChanged(f"{self.what} returned {type(piece).__name__} from read(), not bytes")

    def pieces(self) -> Iterator[bytes]:
        """The content in pieces of at most CHUNK; the last is held back until the end is confirmed."""
        with self._opened() as f:
            left = self.length
            while left:
                piece = self._read(f, min(CHUNK, left))
                if not piece:
                    raise BodyChanged(
                        f"{self.what} ended after {self.length - left} of the {self.length} bytes measured; "
                        "it shrank after the body was encoded"
                    )
                left -= len(piece)
                if left < 0 or (left == 0 and self._read(f, 1)):
                    raise BodyChanged(
                        f"{self.what} is longer than the {self.length} bytes measured; it grew after the body was encoded"
                    )
                yield piece


class _PathSource(_Source):
    __slots__ = ("path",)

    def __init__(self, path: str, length: int, what: str) -> None:
        super().__init__(length, what)
        self.path = path

    @contextmanager
    def _opened(self) -> Iterator[Readable]:
        try:
            f = open(self.path, "rb", buffering=0)  # whole CHUNK reads: a buffer would only copy
        except OSError as exc:
            raise BodyChanged(f"{self.what} could not be opened: {exc.strerror or exc}") from exc
        with f:
            yield f


class _StreamSource(_Source):
    """A caller's file object: seekable ones are rewound to ``start`` each time; others read once."""

    __slots__ = ("f", "start", "used")

    def __init__(self, f: Readable, start: int | None, length: int, what: str) -> None:
        """``start``: where a seekable ``f`` stood at encode time; None for a stream read once."""
        super().__init__(length, what)
        self.f = f
        self.start = start
        self.used = False

    @property
    def replayable(self) -> bool:  # type: ignore[override]
        return self.start is not None

    @contextmanager
    def _opened(self) -> Iterator[Readable]:
        if self.start is None:
            if self.used:
                raise BodyChanged(f"{self.what} is a stream that was already read; it cannot be sent again")
            self.used = True
        else:
            try:
                cast(_Seekable, self.f).seek(self.start)
            except (OSError, ValueError) as exc:
                raise BodyChanged(f"{self.what} could not be rewound: {exc}") from exc
        yield self.f


def _path_source(path: os.PathLike[str] | os.PathLike[bytes], what: str) -> tuple[_PathSource, str]:
    """A path measured now (its length and that it is a readable regular file), and its file name."""
    p = os.fsdecode(os.fspath(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UsageError(f"{what}: there is no file at {p!r}") from None
    except OSError as exc:
        raise UsageError(f"{what}: {p!r} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{what}: {p!r} is not a regular file, so its length is not known before it is read")
    if not os.access(p, os.R_OK):
        raise UsageError(f"{what}: {p!r} cannot be read (permission denied)")
    return _PathSource(p, st.st_size, f"file {p!r} ({what})"), os.path.basename(p)


def _stream_source(f: Readable, what: str) -> _StreamSource:
    """A file object measured without reading it: from its position to its end, or its declared length."""
    if isinstance(f, io.TextIOBase):
        raise UsageError(f"{what}: the file is open in text mode; open it with 'rb'")
    if getattr(f, "closed", False) is True:
        raise UsageError(f"{what}: the file is closed")
    seekable = getattr(f, "seekable", None)
    try:
        can_seek = bool(seekable()) if callable(seekable) else hasattr(f, "seek") and hasattr(f, "tell")
    except (OSError, ValueError):
        can_seek = False
    if can_seek:
        sf = cast(_Seekable, f)
        try:
            start = sf.tell()
            sf.seek(0, os.SEEK_END)
            end = sf.tell()
            sf.seek(start)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{what}: the file cannot be measured ({exc})") from None
        return _StreamSource(sf, start, max(0, end - start), f"the file object of {what}")
    # Not seekable: only a length the object declares (len(), or requests' ``len`` attribute).
    declared = len(f) if hasattr(f, "__len__") else getattr(f, "len", None)  # type: ignore[arg-type]
    if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 0:
        return _StreamSource(f, None, declared, f"the stream of {what}")
    raise UsageError(
        f"{what}: the file is not seekable and does not say its length (no len()), so no Content-Length "
        "can be sent; pass a path, a seekable file or bytes"
    )


def _field_name(name: object, arg: str, multipart: bool) -> str:
    if isinstance(name, bytes):
        try:
            name = name.decode()
        except UnicodeDecodeError:
            raise UsageError(f"{arg} has a field name {name!r} that is not UTF-8") from None
    if not isinstance(name, str):
        raise UsageError(f"{arg} has a field name of type {type(name).__name__}; field names are str")
    if multipart and _CRLF_NUL.search(name):
        raise UsageError(f"{arg} field name {_shown(name)} contains CR, LF or NUL")
    return name


def _scalar(value: object, name: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (int, float)):
        return str(value).encode()
    raise UsageError(
        f"data= field {_shown(name)} has a value of type {type(value).__name__}; give str, bytes, int or float"
    )


def _values(value: object, name: str) -> list[bytes]:
    """A field's values: one, none (None), or one per item of a list or tuple."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [_scalar(v, name) for v in value if v is not None]
    return [_scalar(value, name)]


def _pairs(given: object, arg: str) -> list[tuple[object, object]]:
    if isinstance(given, Mapping):
        return list(given.items())
    try:
        items = iter(given)  # type: ignore[call-overload]
    except TypeError:
        raise UsageError(f"{arg} must be a mapping or (name, value) pairs, not {type(given).__name__}") from None
    pairs: list[tuple[object, object]] = []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise UsageError(f"{arg} item {i} ({_shown(repr(item), 40)}) is not a (name, value) pair")
        pairs.append((item[0], item[1]))
    return pairs


def _guess_type(filename: str) -> str:
    guessed, encoding = mimetypes.guess_type(filename)
    if encoding is not None:
        return _COMPRESSED.get(encoding, _OCTET)
    return guessed or _OCTET


def _header_value(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{what} is of type {type(value).__name__}, not str")
    if _CRLF_NUL.search(value):
        raise UsageError(f"{what} contains CR, LF or NUL")
    return value


_Content = bytes | _Source


def _content(content: object, where: str) -> tuple[_Content, str | None]:
    """Content as bytes or a source to stream, and the filename it suggests (None: none)."""
    if isinstance(content, str):
        return content.encode(), None
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content), None
    if isinstance(content, os.PathLike):
        return _path_source(content, where)
    if callable(getattr(content, "read", None)):
        src = _stream_source(content, where)  # type: ignore[arg-type]
        name = getattr(content, "name", None)
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        # As requests: "<stdin>" and the like are not names; an fd (int) has none.
        if isinstance(name, str) and name and not (name[0] == "<" and name[-1] == ">"):
            return src, os.path.basename(name)
        return src, None
    raise UsageError(
        f"{where} has content of type {type(content).__name__}; give bytes, str, a binary file or a path"
    )


def _file_part(name: str, spec: object) -> tuple[str, _Content] | None:
    """One file's part head (without its delimiter) and content; None when its content is None."""
    where = f"files= field {_shown(name)}"
    extra: Mapping[str, str] = {}
    if isinstance(spec, (tuple, list)):
        if not 2 <= len(spec) <= 4:
            raise UsageError(f"{where} is a tuple of {len(spec)} items; give {_TUPLE_FORMS}")
        filename, raw = spec[0], spec[1]
        if raw is None:
            return None
        content, _ = _content(raw, where)
        if filename is not None and not isinstance(filename, str):
            raise UsageError(f"{where} has a filename of type {type(filename).__name__}; give str or None")
        if len(spec) >= 3:
            ctype = None if spec[2] is None else _header_value(spec[2], f"{where}'s content type")
        else:
            ctype = None if filename is None else _guess_type(filename)
        if len(spec) == 4:
            if not isinstance(spec[3], Mapping):
                raise UsageError(f"{where} has headers of type {type(spec[3]).__name__}; give a mapping")
            extra = spec[3]
    else:
        if spec is None:
            return None
        content, filename = _content(spec, where)
        filename = filename or name
        ctype = _guess_type(filename)
    if filename is not None and "\x00" in filename:
        raise UsageError(f"{where} has a filename with NUL in it")
    disposition = f'form-data; name="{name.translate(_QUOTE)}"'
    if filename is not None:
        disposition += f'; filename="{filename.translate(_QUOTE)}"'
    lines = {"content-disposition": f"Content-Disposition: {disposition}"}
    if ctype is not None:
        lines["content-type"] = f"Content-Type: {ctype}"
    for k, v in extra.items():
        if not isinstance(k, str) or not _TOKEN.fullmatch(k):
            raise UsageError(f"{where} has a header name {_shown(str(k), 40)} that is not an HTTP token")
        lines[k.lower()] = f"{k}: {_header_value(v, f'{where} header {k!r}')}"
    return "\r\n".join(lines.values()) + "\r\n\r\n", content


def _boundary(contents: Sequence[bytes]) -> str:
    """A random boundary found in none of ``contents``."""
    while True:
        b = _random_boundary()
        token = b.encode()
        if not any(token in c for c in contents):
            return b


def _random_boundary() -> str:
    return os.urandom(16).hex()


@dataclass(frozen=True)
class Body:
    """An encoded request body; see the module docstring.

    ``content_type``: the Content-Type header to send, or None for none.
    ``length``: the exact Content-Length, known without reading any file.
    ``small``: the whole body when it is at most :data:`SMALL` bytes and has no
    file object or path (send it in one write), else None.
    ``replayable``: :meth:`chunks` may run again and yields the same bytes (a
    307/308 redirect, a retry): true unless the body holds a non-seekable stream.
    """

    content_type: str | None
    length: int
    small: bytes | None
    replayable: bool
    _segments: tuple[bytes | _Source, ...] = field(default=(), repr=False)

    def chunks(self) -> Iterator[bytes]:
        """The body in non-empty pieces of at most :data:`CHUNK` bytes.

        Files are read here, blocking, CHUNK at a time (a path is opened now and
        closed when the iterator ends or is closed); a seekable file object is
        rewound to where it stood at encode time. A file that is shorter or
        longer than measured, or a stream read before, raises
        :class:`BodyChanged` before the body's last byte.
        """
        if self.small is not None:
            if self.small:
                yield self.small
            return
        held: list[bytes] = []  # bytes in memory gathered into pieces of up to CHUNK
        size = 0
        for seg in self._segments:
            if isinstance(seg, bytes):
                off = 0
                while off < len(seg):
                    take = min(CHUNK - size, len(seg) - off)
                    held.append(seg[off:off + take])
                    size += take
                    off += take
                    if size == CHUNK:
                        yield b"".join(held)
                        held, size = [], 0
            else:
                if held:
                    yield b"".join(held)
                    held, size = [], 0
                yield from seg.pieces()
        if held:
            yield b"".join(held)


def _whole(content_type: str | None, data: bytes) -> Body:
    """A body held in memory (the common case, without _body's generality)."""
    if len(data) <= SMALL:
        return Body(content_type, len(data), data, True)
    return Body(content_type, len(data), None, True, (data,))


def _body(content_type: str | None, segments: list[bytes | _Source]) -> Body:
    length = sum(len(s) if isinstance(s, bytes) else s.length for s in segments)
    sources = [s for s in segments if not isinstance(s, bytes)]
    if not sources and length <= SMALL:
        return Body(content_type, length, b"".join(segments), True)  # type: ignore[arg-type]
    return Body(content_type, length, None, all(s.replayable for s in sources), tuple(segments))


def _multipart(data: object, files: list[tuple[object, object]]) -> Body:
    if isinstance(data, (str, bytes, bytearray, memoryview, os.PathLike)) or callable(getattr(data, "read", None)):
        raise UsageError("data= must be form fields (a mapping or (name, value) pairs) when files= is given")
    parts: list[tuple[str, _Content]] = []
    for raw_name, value in _pairs(data, "data=") if data is not None else ():
        name = _field_name(raw_name, "data=", True)
        head = f'Content-Disposition: form-data; name="{name.translate(_QUOTE)}"\r\n\r\n'
        parts.extend((head, v) for v in _values(value, name))
    for raw_name, spec in files:
        part = _file_part(_field_name(raw_name, "files=", True), spec)
        if part is not None:
            parts.append(part)
    boundary = _boundary([c for _, c in parts if isinstance(c, bytes)])
    segments: list[bytes | _Source] = []
    delimiter = f"--{boundary}\r\n"
    for head, content in parts:
        segments.append((delimiter + head).encode())
        segments.append(content)
        delimiter = f"\r\n--{boundary}\r\n"
    segments.append(f"{delimiter[:-2]}--\r\n".encode())  # "--B--", after a CRLF if a part came before
    return _body(f"multipart/form-data; boundary={boundary}", [s for s in segments if not isinstance(s, bytes) or s])


def encode_body(
    *,
    data: bytes | str | Readable | os.PathLike[str] | Mapping[str, FieldValue]
    | Iterable[tuple[str, FieldValue]] | None = None,
    files: Mapping[str, FileSpec] | Iterable[tuple[str, FileSpec]] | None = None,
) -> Body:
    """The body for ``data=`` and ``files=`` as requests takes them (see the module docstring).

    A spec that cannot be encoded is a :class:`UsageError` naming the field. Files
    are measured here, not read.
    """
    if files is not None:
        pairs = _pairs(files, "files=")
        if pairs:  # an empty files= is no files, as in requests
            return _multipart(data, pairs)
    if data is None:
        return _whole(None, b"")
    if type(data) is dict and all(type(k) is str and type(v) is str for k, v in data.items()):
        # The common form, at urlencode's own cost: nothing to check or convert.
        return _whole(_FORM, urlencode(data).encode("ascii"))
    if isinstance(data, str):
        return _whole(None, data.encode())
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _whole(None, bytes(data))
    if isinstance(data, os.PathLike):
        return _body(None, [_path_source(data, "data=")[0]])
    if callable(getattr(data, "read", None)):
        return _body(None, [_stream_source(data, "data=")])  # type: ignore[arg-type]
    fields: list[tuple[str, bytes]] = []
    for raw_name, value in _pairs(data, "data="):
        name = _field_name(raw_name, "data=", False)
        fields.extend((name, v) for v in _values(value, name))
    return _whole(_FORM, urlencode(fields).encode("ascii"))
