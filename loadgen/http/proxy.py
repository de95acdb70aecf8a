"""Which proxy, if any, a connection to an origin goes through.

:meth:`Proxies.from_env` reads the environment as requests does (urllib's
``getproxies_environment``): ``http_proxy``, ``https_proxy``, ``all_proxy`` and
``no_proxy`` in either case, the lower-case one winning (an empty lower-case
one unsets the upper-case one), and ``HTTP_PROXY`` ignored when
``REQUEST_METHOD`` says the process is a CGI script (httpoxy). ``--proxy`` takes
the place of the environment's proxies for http and https alike; ``--proxy ""``
means no proxy at all, as in curl.

``NO_PROXY`` is a comma-separated list of: ``*`` (no proxy for anything), a host
name, which also covers its subdomains (``example.com`` and ``.example.com``
both cover ``api.example.com``), an IP address, a CIDR block (``127.0.0.0/8``,
``fd00::/8``), each optionally with ``:PORT`` (``[::1]:8080`` for IPv6) to cover
that port only. Unlike requests, a name matches on a label boundary:
``example.com`` does not cover ``notexample.com`` (curl and Go agree). Names
are not resolved: ``localhost`` does not cover ``127.0.0.1``.

Only http:// proxies are supported (CONNECT tunnels https through them); an
https:// or SOCKS proxy URL is a :class:`UsageError`, as is a malformed one,
naming the variable it came from, with its user-info masked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from ..redact import mask_userinfo
from .origin import basic_auth

__all__ = ["NoProxy", "Proxies", "Proxy"]

#: Routes remembered per Proxies; past it the cache starts over (a scenario hitting endless hosts).
_MAX_CACHED = 4096

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Proxy:
    """One proxy: where it listens and the credentials it is sent (never shown)."""

    host: str
    port: int
    scheme: str
    #: ``Basic ...`` from the URL's ``user:password`` (percent-decoded), else None.
    authorization: str | None = field(repr=False)
    #: The URL with its user-info masked, for messages.
    shown: str

    @classmethod
    def parse(cls, url: str, source: str) -> Proxy:
        """The proxy ``url`` names (``host:port`` alone means http); ``source`` (the variable or
        option it came from) is named in the :class:`UsageError` for a URL that cannot be used."""
        text = url.strip()
        if "://" not in text:
            text = "http://" + text  # as requests does for "host:port"
        shown = mask_userinfo(text)

        def bad(why: str) -> UsageError:
            return UsageError(f"the proxy URL {shown!r} in {source} {why}")

        if " " in text or not text.isprintable():
            raise bad("contains a space or a control character")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise bad("has an invalid host or port") from None
        if port == 0:
            raise bad("has an invalid host or port")
        scheme = parts.scheme.lower()
        if scheme != "http":
            raise bad(f"uses {scheme}://, and loadgen supports only http:// proxies")
        host = parts.hostname
        if not host:
            raise bad("has no host")
        user, password = parts.username, parts.password
        authorization = basic_auth(unquote(user or ""), unquote(password or "")) if user or password else None
        return cls(host, port or 80, scheme, authorization, shown)


class NoProxy:
    """The origins ``NO_PROXY`` exempts from the proxy (see the module docstring)."""

    __slots__ = ("text", "everything", "names", "addresses", "networks")

    def __init__(self, text: str = "", source: str = "NO_PROXY") -> None:
        """Parse ``text``; an entry that cannot be read is a :class:`UsageError` naming ``source``."""
        self.text = text
        self.everything = False
        self.names: list[tuple[str, int | None]] = []
        self.addresses: list[tuple[_Address, int | None]] = []
        self.networks: list[tuple[_Network, int | None]] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self.everything = True
                continue
            host, port = _split_entry(entry, source)
            if "/" in host:
                try:
                    self.networks.append((ipaddress.ip_network(host, strict=False), port))
                except ValueError:
                    raise UsageError(f"{source} entry {entry!r} is not a valid address block") from None
                continue
            try:
                self.addresses.append((ipaddress.ip_address(host), port))
            except ValueError:
                name = host.strip(".")
                if name:
                    self.names.append((name, port))

    def covers(self, host: str, port: int) -> bool:
        """True when a connection to ``host:port`` must not use the proxy."""
        if self.everything:
            return True
        host = host.lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            for name, p in self.names:
                if (p is None or p == port) and (host == name or host.endswith("." + name)):
                    return True
            return False
        return any(ip == a and (p is None or p == port) for a, p in self.addresses) or any(
            ip in net and (p is None or p == port) for net, p in self.networks
        )


def _split_entry(entry: str, source: str) -> tuple[str, int | None]:
    """A NO_PROXY entry as host and port (None: any port)."""
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"{source} entry {entry!r} is not [IPv6] or [IPv6]:PORT")
        return host, _entry_port(rest[1:], entry, source) if rest else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, _entry_port(port, entry, source)
    return entry, None  # a name, an IPv4 address, or a bare IPv6 address or block


def _entry_port(text: str, entry: str, source: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"{source} entry {entry!r} has an invalid port")
    return int(text)


def _environment(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """urllib's ``getproxies_environment``, keeping each value's variable name: kind -> (value, name)."""
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name.lower()[:-6]] = (value, name)
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)  # a CGI script: HTTP_PROXY may come from a request header (httpoxy)
    # Lower-case names again, so that they win (and an empty one unsets its upper-case twin).
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                found[name.lower()[:-6]] = (value, name)
            else:
                found.pop(name.lower()[:-6], None)
    return found


class Proxies:
    """The proxies for plain http and for https, and the origins that bypass them."""

    __slots__ = ("http", "https", "no_proxy", "_cache")

    def __init__(self, http: Proxy | None = None, https: Proxy | None = None, no_proxy: NoProxy | None = None) -> None:
        self.http = http
        self.https = https
        self.no_proxy = no_proxy if no_proxy is not None else NoProxy()
        self._cache: dict[tuple[str, str, int], Proxy | None] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str], explicit: str | None = None) -> Proxies:
        """The proxies ``environ`` sets, or ``explicit`` (``--proxy``) for both schemes; see the
        module docstring. A URL or NO_PROXY entry that cannot be used is a :class:`UsageError`."""
        found = _environment(environ)
        no_value, no_name = found.get("no", ("", "NO_PROXY"))
        no_proxy = NoProxy(no_value, no_name)
        if explicit is not None:
            if not explicit.strip():
                return cls(None, None, no_proxy)
            proxy = Proxy.parse(explicit, "--proxy")
            return cls(proxy, proxy, no_proxy)
        every = Proxy.parse(*found["all"]) if "all" in found and not {"http", "https"} <= found.keys() else None
        http = Proxy.parse(*found["http"]) if "http" in found else every
        https = Proxy.parse(*found["https"]) if "https" in found else every
        return cls(http, https, no_proxy)

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a connection to this origin, or None to connect directly (cached)."""
        key = (scheme, host, port)
        try:
            return self._cache[key]
        except KeyError:
            pass
        proxy = self.https if scheme == "https" else self.http
        if proxy is not None and self.no_proxy.covers(host, port):
            proxy = None
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = proxy
        return proxy

    def __bool__(self) -> bool:
        return self.http is not None or self.https is not None

    def __repr__(self) -> str:
        def shown(p: Proxy | None) -> str | None:
            return None if p is None else p.shown

        return f"Proxies(http={shown(self.http)!r}, https={shown(self.https)!r}, no_proxy={self.no_proxy.text!r})"
