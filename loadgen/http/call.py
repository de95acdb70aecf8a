"""What one call asks beyond the common request: ``files=``, ``auth=``, ``cookies=``, ``timeout=``, ``verify=``, ``cert=``.

Built only when a call passes one of them, so the common request pays one
test of six ``None`` values and nothing else. The names and forms are the
requests library's, so a Locust task's call reads the same here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .body import Body, encode_body
from .cookies import cookie_header
from .origin import basic_auth
from .tls import TlsOptions

if TYPE_CHECKING:
    from .session import Session

__all__ = ["CallOptions"]


class CallOptions:
    """One call's extras, checked: ``headers`` (Authorization, Cookie), a ``body`` to encode or stream,
    ``timeout_ns`` for the response, ``tls`` when ``verify=``/``cert=`` differ from the run's."""

    __slots__ = ("headers", "body", "timeout_ns", "tls", "streamed")

    def __init__(self, headers: dict[str, str], body: Body | None, timeout_ns: int, tls: TlsOptions | None) -> None:
        self.headers = headers
        self.body = body
        self.timeout_ns = timeout_ns
        self.tls = tls
        #: Bytes sent after the request's head and small body: a streamed body's length.
        self.streamed = body.length if body is not None and body.small is None else 0

    @classmethod
    def of(cls, session: Session, files: Any, data: Any, auth: Any, cookies: Any, timeout: Any, verify: Any,
           cert: Any) -> CallOptions:
        headers: dict[str, str] = {}
        if auth is not None:
            if not (isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(a, str) for a in auth)):
                raise UsageError("auth= takes a (user, password) pair of strings (Basic authentication)")
            headers["Authorization"] = basic_auth(*auth)
        if cookies is not None:
            if not isinstance(cookies, Mapping):
                raise UsageError("cookies= takes a mapping of cookie names to values")
            if cookies:
                headers["Cookie"] = cookie_header(cookies)
        body = encode_body(data=data, files=files) if files is not None else None
        timeout_ns = session.timeout_ns if timeout is None else _timeout_ns(timeout)
        tls = session.tls.for_request(verify, cert) if verify is not None or cert is not None else None
        return cls(headers, body, timeout_ns, tls)

    def without_body(self) -> CallOptions:
        """The same options for a redirect's next hop that drops the body (303, or 301/302 after POST)."""
        return CallOptions(self.headers, None, self.timeout_ns, self.tls) if self.body is not None else self


def _timeout_ns(timeout: Any) -> int:
    """requests' ``timeout=``: seconds, or ``(connect, read)`` whose read part bounds the response here."""
    value = timeout[1] if isinstance(timeout, tuple) and len(timeout) == 2 else timeout
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
        raise UsageError(f"timeout= takes seconds greater than 0 (or a (connect, read) pair), not {timeout!r}")
    return int(value * 1e9)
