"""loadgen's HTTP client: HTTP/1.1 on asyncio protocols with llhttp parsing (httptools), HTTP/2 over h2."""

from .client import Client, FixedRequest, Origin, Session
from .response import Headers, Response

__all__ = ["Client", "FixedRequest", "Headers", "Origin", "Response", "Session"]
