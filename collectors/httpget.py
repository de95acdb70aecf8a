"""A small blocking HTTP GET for collectors (they run in their own thread, off the hot path)."""

from __future__ import annotations

import base64
import http.client
import urllib.error
import urllib.request

from loadgen.collectors.base import SourceFailure

__all__ = ["MAX_BODY_BYTES", "HTTPStatusFailure", "http_get"]

#: A metrics page or an API answer larger than this is refused rather than read into memory.
MAX_BODY_BYTES = 32 * 1024 * 1024


class HTTPStatusFailure(SourceFailure):
    """The server answered, with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# Collectors talk to services next to the target, directly: proxies from the environment are
# ignored. One opener for every sample (building one per request costs more than the request).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 5.0,
    accept: str = "*/*",
    what: str = "",
) -> bytes:
    """The body of ``GET url`` (which carries no credentials: they are sent as basic auth).

    Raises SourceFailure with one sentence naming ``what`` (or the URL) on any failure.
    """
    name = what or url
    headers = {"Accept": accept, "User-Agent": "loadgen-collector"}
    if username is not None or password is not None:
        token = base64.b64encode(f"{username or ''}:{password or ''}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            body: bytes = response.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        hint = " (check the user and password)" if exc.code in (401, 403) else ""
        raise HTTPStatusFailure(f"{name} answered HTTP {exc.code} {exc.reason}{hint}.", exc.code) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise SourceFailure(f"{name} did not answer within {timeout_s:g} s.") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise SourceFailure(f"{name} cannot be reached: {text}.") from None
    except TimeoutError:
        raise SourceFailure(f"{name} did not answer within {timeout_s:g} s.") from None
    except OSError as exc:
        raise SourceFailure(f"{name} failed: {exc.strerror or exc}.") from None
    except http.client.HTTPException as exc:
        raise SourceFailure(f"{name} sent a broken HTTP answer ({type(exc).__name__}).") from None
    if len(body) > MAX_BODY_BYTES:
        raise SourceFailure(
            f"{name} answered more than {MAX_BODY_BYTES // (1024 * 1024)} MiB; refusing to read it."
        )
    return body
