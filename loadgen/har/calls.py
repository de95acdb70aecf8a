"""A recorded request as the call a scenario makes: its URL, row name, headers and body, with the
values the server handed out replaced by what the correlator reads at run time."""

from __future__ import annotations

from urllib.parse import urlsplit

from .bodies import Body, body_of
from .correlate import Correlator, JsonTemplate, Ref, TemplateLeaf, id_like
from .filters import origin_of
from .headers import clean_headers
from .model import Exchange
from .names import template
from .plan import Call

__all__ = ["call_of"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _form(corr: Correlator, pos: int, fields: dict[str, JsonTemplate]) -> dict[str, JsonTemplate]:
    out: dict[str, JsonTemplate] = {}
    for k, v in fields.items():
        if not isinstance(v, str):
            out[k] = v
            continue
        ref = corr.whole(pos, v, id_place=id_like(k))
        if ref is not None:
            out[k] = TemplateLeaf((ref,)) if ref.number else ref
            continue
        parts = corr.string(pos, v)
        out[k] = v if parts == (v,) else TemplateLeaf(parts)
    return out


def _body(corr: Correlator, pos: int, body: Body) -> tuple[JsonTemplate | None, JsonTemplate | None]:
    """(``json=``, ``data=``) of a body."""
    if body.kind == "json":
        return corr.json(pos, body.value), None
    if body.kind == "form" and isinstance(body.value, dict):
        return None, _form(corr, pos, dict(body.value))
    text = str(body.value)
    parts = corr.string(pos, text)
    return None, text if parts == (text,) else TemplateLeaf(parts)


def call_of(corr: Correlator, pos: int, e: Exchange, origin: str, warnings: list[str]) -> Call:
    """Request ``pos`` of the replay as a call (no reads, no think time yet: the caller adds them)."""
    parts = urlsplit(e.url)
    path = parts.path or "/"
    url, correlated = corr.url(pos, path, parts.query)
    if url and isinstance(url[0], Ref):
        # The whole path is read at run time (a Location, a link): its variable parts are those with digits.
        correlated = frozenset(i for i, seg in enumerate(path.split("/")) if any(c.isdigit() for c in seg))
    name: str | None = template(path, correlated)
    if origin_of(e.url) != origin:
        base = f"{parts.scheme}://{parts.netloc}"
        url = (base + url[0], *url[1:]) if isinstance(url[0], str) else (base, *url)
        name = origin_of(e.url) + template(path, correlated)  # another host's /x must not share our row
    elif name == path:
        name = None  # the client's default row is the path
    body, warning = body_of(e)
    if warning:
        warnings.append(warning)
    headers = clean_headers(e.request_headers, body_sets_type=body is not None and body.kind != "raw")
    if body is not None and body.kind == "raw" and e.body_mime and all(n != "Content-Type" for n, _ in headers):
        headers.append(("Content-Type", e.body_mime))
    json_arg, data_arg = _body(corr, pos, body) if body is not None else (None, None)
    return Call(
        method=e.method,
        url=url,
        name=name,
        headers=tuple((n, corr.string(pos, v)) for n, v in headers),
        json=json_arg,
        data=data_arg,
        status=e.status,
        follow=e.status not in _REDIRECTS,
        reads=(),
        think_s=0.0,
    )
