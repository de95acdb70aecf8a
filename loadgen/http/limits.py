"""How much of a response loadgen will take before it calls the response ``too_large``.

A load generator holds one response per request in flight, so whatever a
target sends must have a ceiling: endless header lines, an endless body or a
small gzip body that decodes to gigabytes would otherwise take the machine's
memory and, with it, every number of the run. Passing a limit is an error of
kind ``too_large`` (:data:`loadgen.engine.recorder.ERR_TOO_LARGE`) and the connection
is dropped at once. Limits are checked per read from the socket, so a response
may pass one by up to one read (at most a few hundred KiB) before it is cut off.

Defaults, all in bytes:

- ``max_head_bytes`` 1 MiB: status line and headers, interim (1xx) responses
  included. Node.js stops at 16 KiB and curl at about 300 KiB; Go's client
  allows 10 MiB. 1 MiB lets any real set of cookies and headers through and
  still stops a header flood early.
- ``max_body_bytes`` 64 MiB: the body as sent (before decoding). Browsers and
  most clients stream bodies and set no limit; loadgen keeps the body in
  memory for the scenario, so it needs one. API responses and pages are far
  below it; a larger download is rarely what a load test means to measure
  and can still be allowed with ``--max-body-size``.
- ``max_decoded_bytes`` 64 MiB: the body after gzip/deflate decoding, checked
  only when a scenario reads ``content``, ``text`` or ``json()``. The same
  ceiling as the body, so that a compressed body can never cost more memory
  than an uncompressed one may.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_LIMITS"]


@dataclass(frozen=True)
class Limits:
    """Size limits of one response, in bytes (see the module docstring)."""

    max_head_bytes: int = 1 << 20
    max_body_bytes: int = 64 << 20
    max_decoded_bytes: int = 64 << 20


DEFAULT_LIMITS = Limits()
