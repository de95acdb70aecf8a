"""Scheme, host and port of a target: what a connection to it is keyed by and needs."""

from __future__ import annotations

from base64 import b64encode
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from ..redact import mask_userinfo

__all__ = ["Origin", "basic_auth"]


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value for Basic credentials (Latin-1 when it can be, else UTF-8, as requests)."""
    cred = f"{user}:{password}"
    try:
        raw = cred.encode("latin-1")
    except UnicodeEncodeError:
        raw = cred.encode()
    return "Basic " + b64encode(raw).decode("ascii")


class Origin:
    """Scheme, host and port of a target, with what a connection to it needs.

    ``auth``: the ``Authorization`` value (Basic) for credentials in the URL
    (percent-decoded, as requests does), else None; nothing else keeps them.
    ``cache_key`` tells apart origins that differ only in credentials.
    """

    __slots__ = ("key", "scheme", "host", "port", "host_header", "host_line", "tls", "auth", "cache_key")

    def __init__(self, url: str) -> None:
        if " " in url or not url.isprintable():
            # Checked before urlsplit, which silently drops tabs and newlines.
            raise UsageError(f"URL {mask_userinfo(url)!r} contains a space or a control character")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"URL {mask_userinfo(url)!r} is not an http:// or https:// URL with a host")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"URL {mask_userinfo(url)!r} has an invalid port") from None
        default = 443 if self.tls else 80
        self.port = port or default
        h = self.host if ":" not in self.host else f"[{self.host}]"
        if not h.isascii():
            try:  # an internationalised name goes on the wire in its ASCII (punycode) form
                h = h.encode("idna").decode("ascii")
            except UnicodeError:
                raise UsageError(f"URL {mask_userinfo(url)!r} has a host name that cannot be encoded") from None
        self.host_header = h if self.port == default else f"{h}:{self.port}"
        self.host_line = f"Host: {self.host_header}\r\n".encode("ascii")
        self.key = f"{self.scheme}://{self.host_header}"
        self.auth: str | None = None
        user, password = parts.username, parts.password
        if user or password:
            self.auth = basic_auth(unquote(user or ""), unquote(password or ""))
        self.cache_key = self.key if self.auth is None else f"{self.key} {self.auth}"

    def with_auth(self, auth: str) -> Origin:
        """The same origin with ``auth`` as its Authorization (a redirect within the host of a URL's credentials)."""
        other = object.__new__(Origin)
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        other.auth = auth
        other.cache_key = f"{self.key} {auth}"
        return other

