"""Correlation: values the server handed out are read from the live response, not replayed.

A recording holds the token its login returned, the id of the item it
created; replayed as recorded they are expired or someone else's. A value
that appears in a response (a JSON field, a header, a cookie) and later in a
request (its URL, a header such as ``Authorization: Bearer <token>``, its
body) becomes a variable: the generated code stores it on ``self`` after the
response that produced it and uses it from then on.

What counts as such a value: a string of 8 characters or more with a digit
(or of 16 or more), without spaces, not a date; an integer only under an
id-like JSON key (``id``, ``job_id``, ``userId``) and only where an id goes
in a later request (a whole path segment, a query value or a JSON field with
an id-like name). A value the recording sent before any response produced
it (a user name, a search term) is input, not correlation. The first
response that produced a value is the one it is read from; a JSON field is
preferred to a header and a header to a cookie.
"""

from __future__ import annotations

import bisect
import itertools
import json
import keyword
import re
from dataclasses import dataclass
from typing import Literal, Union
from urllib.parse import quote, unquote_plus, urlsplit

from .bodies import JsonValue
from .model import Exchange
from .names import segment_kind

__all__ = ["Correlator", "JsonTemplate", "Ref", "Source", "Template", "TemplateLeaf", "id_like", "is_credential"]


@dataclass(frozen=True)
class Ref:
    """A value read at run time: ``self.<var>``; ``number``: it is an int."""

    var: str
    number: bool = False


#: A string made of literal text and values read at run time.
Template = tuple[Union[str, Ref], ...]
#: A JSON value whose leaves may be read at run time (a Ref) or built from them (a Template).
JsonTemplate = Union[JsonValue, Ref, "TemplateLeaf", list["JsonTemplate"], dict[str, "JsonTemplate"]]


@dataclass(frozen=True)
class TemplateLeaf:
    """A JSON string leaf with values read at run time inside it."""

    parts: Template


@dataclass(frozen=True)
class Source:
    """Where a response holds a value: a JSON path, a header's name or a cookie's name."""

    kind: Literal["json", "header", "cookie"]
    path: tuple[str | int, ...]


@dataclass
class _Candidate:
    value: str | int
    entry: int  #: position of the producing request among the replayed ones
    source: Source
    rank: int  #: lower is preferred
    hint: str  #: a name for the variable
    var: str | None = None  #: assigned on first use
    usable: bool | None = None  #: None until checked: the value was not sent before it was produced


_MAX_DEPTH = 6
_PREFIX = 8  # the shortest string worth correlating
_MAX_ITEMS = 20  # of an array: the first items are the ones a page shows and a user clicks
_ID_KEY = re.compile(r"^(?:id|ID|.*[_-](?:id|ID)|.*[a-z0-9]Id|.*ID)$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d")
_FLOAT = re.compile(r"^-?\d+\.\d+(?:[eE][-+]?\d+)?$")
_UNCORRELATED_HEADERS = frozenset({
    "date", "expires", "last-modified", "content-length", "content-type", "content-encoding",
    "content-language", "content-disposition", "server", "connection", "keep-alive", "vary",
    "cache-control", "pragma", "etag", "transfer-encoding", "set-cookie", "strict-transport-security",
    "referrer-policy", "permissions-policy", "report-to", "nel", "alt-svc", "age", "via", "server-timing",
    "timing-allow-origin", "accept-ranges", "www-authenticate", "link", "p3p", "retry-after",
})
_UNCORRELATED_PREFIXES = ("access-control-", "content-security-policy", "x-content-", "x-frame-", "x-xss-",
                          "x-powered-", "x-cache", "cf-", "x-amz-cf-", "cross-origin-")
#: Attribute names a User already has: a variable must not replace them.
_TAKEN = frozenset({
    "client", "host", "index", "random", "wait_time", "weight", "http2", "on_start", "on_stop", "tasks",
    "fixed_count", "user", "parent", "environment", "replay",
})
_CREDENTIAL = re.compile(r"token|session|auth|jwt|csrf|xsrf|(?:^|_)sid(?:$|_)|bearer|api_?key|secret")


def id_like(key: str | int | None) -> bool:
    """Whether a JSON key names an identifier (``id``, ``job_id``, ``userId``)."""
    return isinstance(key, str) and bool(_ID_KEY.match(key))


def _worth_a_string(value: str) -> bool:
    """A string that can only have come from the server: long, no spaces, not a date or a number."""
    if len(value) < 8 or any(c.isspace() for c in value) or _DATE.match(value) or _FLOAT.match(value):
        return False
    return len(value) >= 16 or any(c.isdigit() for c in value)


def _snake(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _noun_of(url: str) -> str:
    """The resource a URL names: its last path segment that is not an id (``/api/campaigns/7`` -> campaign)."""
    for seg in reversed(urlsplit(url).path.split("/")):
        if seg and segment_kind(seg) is None:
            return _singular(_snake(seg))
    return ""


def is_credential(var: str) -> bool:
    """Whether a variable's name says it is a credential (a token, a session id)."""
    return bool(_CREDENTIAL.search(var))


class Correlator:
    """Finds the values to correlate in ``entries`` (the replayed requests, in order) and
    turns the requests' strings into templates that read them at run time."""

    def __init__(self, entries: tuple[Exchange, ...]) -> None:
        self._entries = entries
        self._by_value: dict[tuple[str, str | int], _Candidate] = {}
        for pos, e in enumerate(entries):
            for cand in self._produced(pos, e):
                key = (type(cand.value).__name__, cand.value)
                known = self._by_value.get(key)
                if known is None or (known.entry == pos and cand.rank < known.rank):
                    self._by_value[key] = cand
        self._by_entry: dict[int, list[_Candidate]] = {}
        for c in self._by_value.values():
            self._by_entry.setdefault(c.entry, []).append(c)
        # Every string candidate is 8 characters or more: indexed by its first 8, a text is searched
        # in one pass over its positions instead of once per candidate.
        self._by_prefix: dict[str, list[_Candidate]] = {}
        for c in self._by_value.values():
            if isinstance(c.value, str):
                self._by_prefix.setdefault(c.value[:_PREFIX], []).append(c)
        # Every request's strings, in order, one line each (no candidate holds a line break): where a
        # value first appears tells whether a request sent it before a response produced it.
        forms = [tuple(v for _, v in e.form or ()) for e in entries]
        self._sent, self._sent_ends = _joined(
            [(e.url, e.body_text or "", *(v for _, v in e.request_headers), *f) for e, f in zip(entries, forms)])
        # Numbers are looked for where an id goes: the path, the query, the body (not the host's port).
        self._numbers, self._numbers_ends = _joined(
            [(urlsplit(e.url).path, urlsplit(e.url).query, e.body_text or "", *f) for e, f in zip(entries, forms)])
        self._names: set[str] = set()
        self._suffix: dict[str, int] = {}  # the next number to try after a taken name

    # -- producers ---------------------------------------------------------------------------
    def _produced(self, pos: int, e: Exchange) -> list[_Candidate]:
        out: list[_Candidate] = []
        text = e.response_text
        if text and ("json" in e.response_mime.lower() or text.lstrip()[:1] in ("{", "[")):
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict | list):
                self._walk(doc, (), pos, e, False, out)
        for name, value in e.response_headers:
            low = name.lower()
            if low in _UNCORRELATED_HEADERS or low.startswith(_UNCORRELATED_PREFIXES):
                continue
            value = value.strip()
            if _worth_a_string(value):
                hint = _snake(low[2:] if low.startswith("x-") else low)
                out.append(_Candidate(value, pos, Source("header", (name,)), 20, hint))
        for name, value in e.response_cookies:
            if _worth_a_string(value):
                out.append(_Candidate(value, pos, Source("cookie", (name,)), 30, _snake(name)))
        return out

    def _walk(self, node: JsonValue, path: tuple[str | int, ...], pos: int, e: Exchange, in_array: bool,
              out: list[_Candidate]) -> None:
        if len(path) > _MAX_DEPTH:
            return
        if isinstance(node, dict):
            for k, v in node.items():
                self._walk(v, (*path, k), pos, e, in_array, out)
            return
        if isinstance(node, list):
            for i, v in enumerate(node[:_MAX_ITEMS]):
                self._walk(v, (*path, i), pos, e, True, out)
            return
        key = path[-1] if path else None
        rank = len(path) + (10 if in_array else 0)
        if isinstance(node, str) and _worth_a_string(node):
            out.append(_Candidate(node, pos, Source("json", path), rank, self._hint(path, e)))
        elif isinstance(node, int) and not isinstance(node, bool) and id_like(key) and not in_array:
            out.append(_Candidate(node, pos, Source("json", path), rank, self._hint(path, e)))

    @staticmethod
    def _hint(path: tuple[str | int, ...], e: Exchange) -> str:
        keys = [_snake(p) for p in path if isinstance(p, str)]
        name = keys[-1] if keys and keys[-1] else "value"
        if name == "id":
            # {"user": {"id": 42}} is the user's id; a bare {"id": 7} is the id of what the URL names.
            noun = _singular(keys[-2]) if len(keys) > 1 and keys[-2] else _noun_of(e.url)
            name = f"{noun}_id" if noun else "id"
        return name

    # -- consumers ---------------------------------------------------------------------------
    def _use(self, cand: _Candidate | None, pos: int) -> Ref | None:
        """The variable for a candidate seen in request ``pos``, if it may be correlated there."""
        if cand is None or cand.entry >= pos:
            return None
        if cand.usable is None:
            cand.usable = not self._sent_before(cand.value, cand.entry)
        if not cand.usable:
            return None
        if cand.var is None:
            cand.var = self._name(cand.hint)
        return Ref(cand.var, isinstance(cand.value, int))

    def _sent_before(self, value: str | int, last: int) -> bool:
        """Whether a request up to ``last`` (inclusive) already carried ``value``: then it is input."""
        if isinstance(value, int):
            found = re.search(rf"(?<![0-9A-Za-z.]){value}(?![0-9A-Za-z.])", self._numbers)
            return found is not None and bisect.bisect_right(self._numbers_ends, found.start()) <= last
        at = self._sent.find(value)
        return at >= 0 and bisect.bisect_right(self._sent_ends, at) <= last

    def _name(self, hint: str) -> str:
        name = hint if hint.isidentifier() else f"v_{hint}"
        if keyword.iskeyword(name) or name in _TAKEN or name.startswith("step_"):
            name += "_value"
        base, n = name, self._suffix.get(name, 2)
        while name in self._names:
            name, n = f"{base}_{n}", n + 1
        self._suffix[base] = n
        self._names.add(name)
        return name

    def whole(self, pos: int, value: str | int, *, id_place: bool) -> Ref | None:
        """A Ref when the whole of ``value`` (a path segment, a query or form value, a JSON leaf)
        was produced earlier; ``id_place``: an id may stand there (numbers are only taken there)."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return self._use(self._by_value.get(("int", value)), pos) if id_place else None
        ref = self._use(self._by_value.get(("str", value)), pos)
        if ref is None and id_place and value.isdigit() and len(value) < 19:
            ref = self._use(self._by_value.get(("int", int(value))), pos)
        return ref

    def string(self, pos: int, text: str) -> Template:
        """``text`` with every earlier-produced string inside it (on word boundaries) read at run time."""
        if len(text) < 8:
            return (text,)
        found: list[tuple[int, int, int, _Candidate]] = []
        by_prefix = self._by_prefix
        for start in range(len(text) - _PREFIX + 1):
            for cand in by_prefix.get(text[start : start + _PREFIX], ()):
                value = str(cand.value)
                end = start + len(value)
                if cand.entry < pos and text.startswith(value, start) and (
                    (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())
                ):
                    found.append((cand.rank, -len(value), start, cand))
        if not found:
            return (text,)
        chosen: list[tuple[int, int, Ref]] = []
        for _, neg_len, start, cand in sorted(found, key=lambda f: (f[0], f[1], f[2])):
            end = start - neg_len
            if any(s < end and start < e for s, e, _ in chosen):
                continue
            ref = self._use(cand, pos)
            if ref is not None:
                chosen.append((start, end, ref))
        parts: list[str | Ref] = []
        at = 0
        for start, end, ref in sorted(chosen, key=lambda c: c[0]):
            if start > at:
                parts.append(text[at:start])
            parts.append(ref)
            at = end
        if at < len(text):
            parts.append(text[at:])
        return tuple(parts)

    def url(self, pos: int, path: str, query: str) -> tuple[Template, frozenset[int]]:
        """A request's path and query as a template, and the indexes of path segments read at run time."""
        parts: list[str | Ref] = []
        correlated: set[int] = set()
        for i, seg in enumerate(path.split("/")):
            if i:
                parts.append("/")
            # A segment with escapes stays as recorded: the value read at run time would need them too.
            ref = self.whole(pos, seg, id_place=True) if seg and "%" not in seg else None
            if ref is not None:
                parts.append(ref)
                correlated.add(i)
            else:
                parts.append(seg)
        if not correlated:
            ref = self.whole(pos, path, id_place=False)  # a Location header's path, say
            if ref is not None:
                parts = [ref]
        if query:
            parts.append("?")
            for j, pair in enumerate(query.split("&")):
                if j:
                    parts.append("&")
                key, sep, raw = pair.partition("=")
                ref = self.whole(pos, unquote_plus(raw), id_place=id_like(unquote_plus(key))) if sep and raw else None
                # Only a value that needs no escaping goes in as read; anything else stays as recorded.
                if ref is not None and quote(unquote_plus(raw), safe="-_.~") == raw:
                    parts.extend((key + "=", ref))
                else:
                    parts.append(pair)
        return _merge(parts), frozenset(correlated)

    def json(self, pos: int, node: JsonValue, key: str | int | None = None) -> JsonTemplate:
        """A JSON body with earlier-produced values read at run time."""
        if isinstance(node, dict):
            return {k: self.json(pos, v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [self.json(pos, v, key) for v in node]
        if isinstance(node, bool) or node is None or isinstance(node, float):
            return node
        if isinstance(node, int):
            return self.whole(pos, node, id_place=id_like(key)) or node
        ref = self.whole(pos, node, id_place=id_like(key))
        if ref is not None:
            return TemplateLeaf((ref,)) if ref.number else ref  # a number written as a string stays one
        parts = self.string(pos, node)
        return node if parts == (node,) else TemplateLeaf(parts)

    def reads_after(self, pos: int) -> list[tuple[str, Source]]:
        """The variables to read from the response of request ``pos``: (name, where), in order."""
        found = [c for c in self._by_entry.get(pos, ()) if c.var is not None]
        return [(c.var, c.source) for c in sorted(found, key=lambda c: c.var or "") if c.var is not None]


def _joined(rows: list[tuple[str, ...]]) -> tuple[str, list[int]]:
    """Each row's strings on lines of one text, and where each row ends in it (for bisect)."""
    lines = ["\n".join(row) for row in rows]
    return "\n".join(lines), list(itertools.accumulate(len(line) + 1 for line in lines))


def _merge(parts: list[str | Ref]) -> Template:
    """Adjacent literal parts joined."""
    out: list[str | Ref] = []
    for p in parts:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] = out[-1] + p
        elif p != "":
            out.append(p)
    return tuple(out)
