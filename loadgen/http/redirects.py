"""The rules of following a redirect, as browsers and requests apply them (RFC 9110 §15.4).

Pure functions; the client (:meth:`loadgen.http.client.Client.request`)
loops over the hops, records the call once, and counts a loop or too many
hops as the error kinds ``redirect_loop`` and ``too_many_redirects``.
"""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

__all__ = ["REDIRECTS", "DEFAULT_MAX_REDIRECTS", "redirected_method", "next_url", "keeps_authorization"]

#: Statuses that are followed when the response has a Location (300 and 305 are not, as in requests).
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SAFE = "!#$%&'()*+,/:;=?@[]~"
#: As requests' Session (30 there), k6, vegeta and oha (10): 10.
DEFAULT_MAX_REDIRECTS = 10


def redirected_method(status: int, method: str) -> tuple[str, bool]:
    """The next hop's method, and whether it carries the body again.

    303 turns anything but HEAD into GET; 301 and 302 turn POST into GET
    (what every browser does, RFC 9110 §15.4.2-3 allows it); 307 and 308
    keep the method and the body.
    """
    if status == 303:
        return ("HEAD", False) if method == "HEAD" else ("GET", False)
    if status in (301, 302) and method == "POST":
        return "GET", False
    return method, status in (307, 308)


def next_url(current: str, location: str) -> str | None:
    """The absolute URL ``location`` points to from ``current`` (fragment dropped), or None.

    None when it is not an http(s) URL with a host (``ftp:``, ``javascript:``,
    a malformed Location): the 3xx is then the call's final response.
    """
    location = location.strip()
    if not location or not location.isprintable():
        return None
    # As requests does: a space or a character past ASCII in a Location is percent-encoded,
    # what is already encoded stays as it is.
    location = quote(location, safe=_SAFE)
    try:
        url = urljoin(current, location)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url.partition("#")[0]


def keeps_authorization(old: str, new: str) -> bool:
    """Whether the Authorization header may follow a hop from ``old`` to ``new``.

    Same host only, and never from https down to http (as requests'
    ``should_strip_auth``: credentials go no further than their host).
    """
    a, b = urlsplit(old), urlsplit(new)
    if a.hostname != b.hostname:
        return False
    return not (a.scheme == "https" and b.scheme == "http")
