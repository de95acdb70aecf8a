"""Recorded request bodies as the keywords a scenario passes: ``json=``, ``data=`` (a form or text).

JSON becomes a Python value (so values read at run time can be put inside
it), a URL-encoded form a dict of fields, anything else the recorded text with
its ``Content-Type`` kept. A multipart body is replayed as recorded: browsers
leave file contents out of a HAR, so it is worth a warning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

from .model import Exchange

__all__ = ["Body", "JsonValue", "body_of"]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True)
class Body:
    """How a request's body is replayed: ``json=``, form ``data=`` (a dict) or raw ``data=`` (text)."""

    kind: Literal["json", "form", "raw"]
    value: JsonValue  #: the JSON value; the form's {field: value}; the text


def _mime(e: Exchange) -> str:
    mime = e.body_mime
    if not mime:
        mime = next((v for n, v in e.request_headers if n.lower() == "content-type"), "")
    return mime.split(";", 1)[0].strip().lower()


def _unique(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> dict[str, JsonValue] | None:
    """The pairs as a dict, or None when a field repeats (a dict would lose one)."""
    out: dict[str, JsonValue] = {}
    for k, v in pairs:
        if k in out:
            return None
        out[k] = v
    return out


def body_of(e: Exchange) -> tuple[Body | None, str | None]:
    """The body to replay (None: none) and a warning about it, if any."""
    mime = _mime(e)
    text = e.body_text
    if text is None and e.form is not None:
        fields = _unique(e.form)
        if fields is not None and mime != "multipart/form-data":
            return Body("form", fields), None
        return None, f"{e.method} {e.url}: the recorded body has no text (only its fields); sent without a body"
    if not text:
        return None, None
    if mime == "application/json" or mime.endswith("+json") or mime == "text/json":
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        # A body that is not JSON, or is JSON's null (json=None would send none), goes as recorded.
        return (Body("json", value) if value is not None else Body("raw", text)), None
    if mime == "application/x-www-form-urlencoded":
        fields = _unique(parse_qsl(text, keep_blank_values=True))
        return (Body("form", fields) if fields is not None else Body("raw", text)), None
    if mime == "multipart/form-data":
        return Body("raw", text), f"{e.method} {e.url}: a multipart body is replayed as recorded (a HAR leaves file contents out)"
    return Body("raw", text), None
