"""One user's cookies by RFC 6265, on the standard library's :mod:`http.cookiejar`.

:class:`CookieJar` keeps what servers set (``Set-Cookie``) and what a scenario
sets itself, and gives the ``Cookie`` header for each request: Domain and
host-only cookies, Path (the default path taken from the request URL),
Expires and Max-Age (Max-Age wins; 0 or a past date deletes), Secure (sent
over https only). HttpOnly is ignored: a load generator is not a page's
script. The matching is http.cookiejar's, with the settings requests uses
(``DefaultCookiePolicy()``) and three corrections towards RFC 6265:

- a host-only cookie (no Domain) goes to its own host only, not to its
  subdomains (requests sends it to them too);
- a Domain cookie for a dotless host (``Domain=localhost``) is sent back to
  that host: http.cookiejar accepts it but compares it with the name it gives
  such hosts (``localhost.local``) and never sends it;
- from an IP address, a Domain attribute must be that address
  (``Domain=.0.0.1`` from 127.0.0.1 is refused, not sent to 10.0.0.1).

A cookie whose name or value holds a control character is ignored (RFC 6265bis):
sent back, it would make every later request of the user unsendable. Malformed
``Set-Cookie`` values are ignored without raising, as http.cookiejar does; it
drops a whole cookie whose Max-Age is not a number or whose Domain is empty
(RFC 6265 ignores only the attribute), and keeps one whose Expires is no date.

Cost. http.cookiejar takes 75-150 µs to build a Cookie header for a jar of
five cookies, so the header is cached per URL (query left out) and per origin
and set of matching cookie paths, until the jar changes or its next cookie
expires. Measured on the shared 2-core test machine (the range is its load)::

    .venv/bin/python -m timeit -s "from loadgen.http.cookies import CookieJar; j = CookieJar(); \\
      j.store('https://example.com/login', ['sid=1', 'csrf=2; Path=/', 'pref=3; Max-Age=3600', \\
      'a=4; Path=/api', 't=5; Domain=example.com']); import itertools; n = itertools.count()" STATEMENT

    j.header_for('https://example.com/api/items/1?x=1')            0.5-0.9 µs  (a URL seen before)
    j.header_for(f'https://example.com/api/items/{next(n)}')      11-16 µs    (a new URL)
    j.store('https://example.com/api/items/1', ['sid=9; Path=/'])  40-65 µs
    bool(j)                                                        0.2-0.5 µs

The client calls :meth:`CookieJar.header_for` only while the jar is not empty,
and :meth:`CookieJar.store` only for a response that sets cookies.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable, Mapping
from http.cookiejar import Cookie, DefaultCookiePolicy, eff_request_host, request_host
from http.cookiejar import CookieJar as _StdJar
from urllib.parse import urlsplit, urlunsplit

from ..errors import UsageError

__all__ = ["CookieJar", "cookie_header"]

#: Control characters but HTAB (RFC 6265bis 5.6): a cookie holding one is ignored.
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: What a cookie name set by a scenario may not hold (it must stay one name=value pair).
_BAD_NAME = re.compile(r"[\x00-\x20\x7f=;,]")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f;]")
#: Cached headers per jar; past it a cache starts again empty (many distinct URLs).
_CACHE_MAX = 1024


class _Request:
    """The part of ``urllib.request.Request`` that http.cookiejar reads, for one absolute URL."""

    __slots__ = ("_url", "type", "host", "origin_req_host", "unverifiable", "cookie")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]  # credentials are no part of a cookie's host
        if not parts.scheme or not netloc:
            raise UsageError(f"cookies need an absolute URL with a host, not {url!r}")
        self._url = url if netloc == parts.netloc else urlunsplit(parts._replace(netloc=netloc))
        self.type = parts.scheme
        self.host = self.origin_req_host = netloc
        # A scenario's request is the user's own, never a third party's (RFC 2965 "unverifiable").
        self.unverifiable = False
        self.cookie: str | None = None

    def get_full_url(self) -> str:
        return self._url

    def has_header(self, name: str) -> bool:
        return False

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return default

    def add_unredirected_header(self, name: str, value: str) -> None:
        if name == "Cookie":
            self.cookie = value


class _Headers:
    """A response's ``Set-Cookie`` values, as ``email.message.Message.get_all`` gives them."""

    __slots__ = ("_values",)

    def __init__(self, values: list[str]) -> None:
        self._values = values

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        return self._values if name.lower() == "set-cookie" else default


class _Response:
    """The part of ``http.client.HTTPResponse`` that http.cookiejar reads."""

    __slots__ = ("_headers",)

    def __init__(self, set_cookies: list[str]) -> None:
        self._headers = _Headers(set_cookies)

    def info(self) -> _Headers:
        return self._headers


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class _Policy(DefaultCookiePolicy):
    """requests' policy, host-only cookies kept to their host, and the two fixes the module docstring names."""

    def __init__(self) -> None:
        super().__init__(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain)

    def set_ok_domain(self, cookie: Cookie, request: _Request) -> bool:  # type: ignore[override]
        if not super().set_ok_domain(cookie, request):
            return False
        if cookie.domain_specified:
            host = request_host(request)
            if _is_ip(host):  # an address domain-matches itself only (RFC 6265 5.1.3)
                return cookie.domain.lstrip(".") == host
        return True

    def return_ok_domain(self, cookie: Cookie, request: _Request) -> bool:  # type: ignore[override]
        if super().return_ok_domain(cookie, request):
            return True
        if not cookie.domain_specified:
            return False
        # http.cookiejar compares with "localhost.local" for a dotless host: compare with the host itself.
        req_host, erhn = eff_request_host(request)
        domain = cookie.domain if cookie.domain.startswith(".") else "." + cookie.domain
        return req_host != erhn and ("." + req_host).endswith(domain)


def _sendable(cookie: Cookie) -> bool:
    return not _CTL.search(cookie.name) and (cookie.value is None or not _CTL.search(cookie.value))


class CookieJar:
    """One user's cookies (RFC 6265 via http.cookiejar; see the module docstring)."""

    __slots__ = ("_policy", "_jar", "held", "_paths", "_valid_until", "_by_url", "_by_paths")

    def __init__(self) -> None:
        self._policy = _Policy()
        self._jar = _StdJar(self._policy)
        #: The cookies held (one may have expired since; header_for looks): a client's fast path
        #: tests this list, a C-level truth test, rather than bool(jar), a Python call (~0.3 us).
        self.held: list[Cookie] = []
        self._paths: tuple[str, ...] = ()
        # The jar's headers hold until this time (time.time()): the earliest expiry.
        self._valid_until = float("inf")
        self._by_url: dict[str, str | None] = {}
        self._by_paths: dict[tuple[str, str, tuple[str, ...]], str | None] = {}

    def _changed(self) -> None:
        """Forget cached headers and take stock of the cookies (after any change, never per request)."""
        now = time.time()
        cookies = [c for c in self._jar]  # not list(): CookieJar.__len__ walks the whole jar once more
        for c in cookies:
            if c.is_expired(now):  # as the jar's clear_expired_cookies, without a second walk
                self._jar.clear(c.domain, c.path, c.name)
        self.held = [c for c in cookies if not c.is_expired(now)]
        self._paths = tuple({c.path: None for c in self.held})
        expiries = [c.expires for c in self.held if c.expires is not None]
        self._valid_until = min(expiries, default=float("inf"))
        self._by_url.clear()
        self._by_paths.clear()

    def _live(self) -> list[Cookie]:
        """The cookies, none past its expiry."""
        if self.held and time.time() >= self._valid_until:
            self._changed()
        return self.held

    def __bool__(self) -> bool:
        """False while empty (a cookie past its expiry counts as gone)."""
        return bool(self._live())

    def __len__(self) -> int:
        return len(self._live())

    def header_for(self, url: str) -> str | None:
        """The Cookie header value for a request to absolute ``url`` (``"a=1; b=2"``), or None."""
        if time.time() >= self._valid_until:
            self._changed()
        key = url.partition("?")[0].partition("#")[0]  # only the path decides, never the query
        if key in self._by_url:
            return self._by_url[key]
        req = _Request(url)
        ok = self._policy.path_return_ok
        # With the origin and the cookie paths that match fixed, the header is too ("/" always matches).
        by_paths = (req.type, req.host.lower(), tuple(p for p in self._paths if p == "/" or ok(p, req)))
        if by_paths in self._by_paths:
            got = self._by_paths[by_paths]
        else:
            got = self._uncached(req)
            if len(self._by_paths) >= _CACHE_MAX:
                self._by_paths.clear()
            self._by_paths[by_paths] = got
        if len(self._by_url) >= _CACHE_MAX:
            self._by_url.clear()
        self._by_url[key] = got
        return got

    def _uncached(self, req: _Request) -> str | None:
        """http.cookiejar's own answer for ``req``, with no cache in between."""
        self._jar.add_cookie_header(req)
        return req.cookie

    def store(self, url: str, set_cookies: list[str]) -> None:
        """Take the Set-Cookie header values of a response to ``url`` (malformed ones ignored)."""
        if not set_cookies:
            return
        req = _Request(url)
        # make_cookies also deletes the cookies a Max-Age=0 or a past Expires names.
        for cookie in self._jar.make_cookies(_Response(set_cookies), req):  # type: ignore[arg-type]
            if _sendable(cookie) and self._policy.set_ok(cookie, req):  # type: ignore[arg-type]
                self._jar.set_cookie(cookie)
        self._changed()

    def set(self, name: str, value: str, *, domain: str, path: str = "/") -> None:
        """A cookie the scenario sets itself (requests' ``cookies=`` on a session).

        Sent to ``domain`` and its subdomains (``127.0.0.1`` and ``localhost``
        work too) for paths under ``path``, until the user's session ends.
        """
        if not name or _BAD_NAME.search(name):
            raise UsageError(
                f"cookie name {name!r} must be non-empty, without spaces, '=', ';', ',' or control characters"
            )
        if _BAD_VALUE.search(value):
            raise UsageError(f"the value of cookie {name!r} must not contain ';' or control characters")
        domain = domain.strip().lower()
        if not domain or "/" in domain:
            raise UsageError(f"cookie {name!r} needs a host name as its domain, not {domain!r}")
        if not path.startswith("/"):
            raise UsageError(f"the path of cookie {name!r} must start with '/', not {path!r}")
        self._jar.set_cookie(Cookie(
            version=0, name=name, value=value, port=None, port_specified=False,
            domain=domain, domain_specified=True, domain_initial_dot=domain.startswith("."),
            path=path, path_specified=True, secure=False, expires=None, discard=True,
            comment=None, comment_url=None, rest={}, rfc2109=False,
        ))
        self._changed()

    def _matching(self, name: str, domain: str | None, path: str | None) -> Iterable[Cookie]:
        """Cookies called ``name`` (on ``domain`` and ``path`` if given), shortest path first."""
        bare = domain.strip().lower().lstrip(".") if domain is not None else None
        for c in sorted(self._live(), key=lambda c: len(c.path)):
            if c.name != name or (path is not None and c.path != path):
                continue
            # A host-only cookie of a dotless host is kept under "<host>.local" (http.cookiejar).
            if bare is not None and c.domain.lstrip(".") not in (bare, bare + ".local"):
                continue
            yield c

    def get(self, name: str, domain: str | None = None, path: str | None = None) -> str | None:
        """The value of cookie ``name``, or None; of several, the one with the longest path."""
        found = None
        for c in self._matching(name, domain, path):
            found = c.value if c.value is not None else ""
        return found

    def as_dict(self) -> dict[str, str]:
        """name -> value of every cookie; of several with one name, the one with the longest path."""
        by_path = sorted(self._live(), key=lambda c: len(c.path))
        return {c.name: c.value if c.value is not None else "" for c in by_path}

    def clear(self) -> None:
        """Drop every cookie."""
        self._jar.clear()
        self._changed()


def cookie_header(cookies: Mapping[str, str]) -> str:
    """The Cookie header value for a request's own ``cookies=`` mapping: ``"a=1; b=2"``."""
    return "; ".join(f"{k}={v}" for k, v in cookies.items())
