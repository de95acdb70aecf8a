"""loadgen's HTTP/1.1 client: asyncio protocols with llhttp parsing (httptools)."""

from .client import Client, FixedRequest, Origin, Session
from .response import Headers, Response

__all__ = ["Client", "FixedRequest", "Headers", "Origin", "Response", "Session"]
