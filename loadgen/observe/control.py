"""The control API on the metrics port: stop the run, change its rate or user count.

``GET /api/control`` shows the run's control state; ``POST /api/control/stop``,
``/rate`` (``{"rate": 50}``, open model) and ``/users`` (``{"users": 20}``, closed)
change it. Every reply is JSON: the state, or ``{"ok", "message", ...}``.

Who may control: with ``--control-token`` every POST must carry
``Authorization: Bearer TOKEN`` (compared in constant time); without one, control
is allowed only when the port is bound to a loopback address, and only to a request
that names a loopback host (a page of another site made to resolve to 127.0.0.1,
DNS rebinding, names its own). A POST must say ``Content-Type: application/json``,
which a page of another site can only send after a CORS preflight this port never
approves, and an ``Origin``, when given, must be this port's own. ``GET`` is open:
it shows no more than ``/metrics`` does.

A change is handed to the thread that owns the run (:class:`~loadgen.engine.steering.Steer`)
and the reply waits until it is applied, so it says what was applied and when.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from ..config import number
from ..engine.steering import Action, Change, ControlState, Refused, Steer
from ..errors import UsageError
from .routes import Reply, Request

if TYPE_CHECKING:
    from ..engine.recorder import IntervalSnapshot
    from ..session.options import RunSpec
    from ..sinks import RunView
    from .exporter import MetricsExporter

__all__ = ["ControlApi", "PREFIX", "attach", "is_loopback"]

PREFIX = "/api/control"
#: How long a reply waits for the run to apply a change (a scenario may hold the loop).
WAIT_S = 5.0
_ACTIONS: tuple[Action, ...] = ("stop", "rate", "users")


def attach(exporter: MetricsExporter, *, token: str | None, spec: RunSpec | None = None) -> ControlApi:
    """Mount the control API on the exporter's port; it learns the run from the first interval."""
    api = ControlApi(token=token, model=spec.config.model if spec is not None else None)
    exporter.server.mount(PREFIX, api)
    exporter.add_part(api.follow, on_finish=api.finish)
    return api


def is_loopback(addr: str) -> bool:
    """Whether ``addr`` (an address to bind, or a host a request names) is this machine's
    loopback only: 127.0.0.0/8, ::1, ``localhost``. ``0.0.0.0``, ``::`` and names are not."""
    a = addr.strip().lower()
    if a.startswith("[") and a.endswith("]"):
        a = a[1:-1]
    if a in ("localhost", "localhost."):
        return True
    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _host_port(authority: str) -> tuple[str, int] | None:
    """``host[:port]`` of a Host header or an origin's authority, the port 80 when not given."""
    try:
        parts = urlsplit("//" + authority)
        return (parts.hostname or "", parts.port or 80)
    except ValueError:
        return None


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether ``Origin`` is this port's own: ``http://`` and the very host and port the request names."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme != "http" or host is None:
        return False
    mine = _host_port(host)
    return mine is not None and _host_port(parts.netloc) == mine


def _json(status: int, doc: dict[str, object], headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, "application/json", orjson.dumps(doc) + b"\n", (("Cache-Control", "no-store"), *headers))


def _no(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return _json(status, {"ok": False, "message": message}, headers)


class _BadBody(Exception):
    """A body that does not say what to change: one sentence, a 400."""


def _value(action: Action, body: bytes) -> float | None:
    """The rate or user count a POST body gives, checked against the bounds ``--rate``/``--users`` have."""
    if action == "stop":
        if body.strip():
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError:
                raise _BadBody("the body is not JSON; send {} or nothing to stop the run") from None
        return None
    shape = f'{{"{action}": NUMBER}}'
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _BadBody(f"the body is not JSON; send {shape}") from None
    if not isinstance(doc, dict) or set(doc) != {action}:
        raise _BadBody(f"the body must be {shape}")
    v = doc[action]
    try:
        # A string is not a number here, even one that reads as one: the message quotes it.
        n = number(action, None if isinstance(v, str) else v, text=v)
    except UsageError as exc:
        raise _BadBody(str(exc).replace(f"--{action} ", f"{action} ", 1)) from None
    return float(n)


def _said(change: Change, relayed: bool) -> str:
    when = f"at {change.at_s:.1f}s"
    if change.action == "stop":
        return f"the run is stopping ({when}): in-flight requests may finish within the graceful stop"
    to = "the workers were told" if relayed else "applied"
    if change.action == "rate":
        return f"rate set to {change.value:g}/s {when} until the planned end; {to}"
    return f"user count set to {int(change.value or 0)} {when} (reached at --spawn-rate) until the planned end; {to}"


def state_json(state: ControlState) -> dict[str, object]:
    """The run's part of ``GET /api/control``."""
    return {"model": state.model, "rate": state.rate, "users": state.users, "can": list(state.can),
            "changes": [c.to_json() for c in state.changes], "running": state.running}


class ControlApi:
    """The handler of ``/api/control`` and a part of the exporter (see the module docstring)."""

    def __init__(self, *, token: str | None, model: str | None = None) -> None:
        # Whitespace around a token cannot travel in a header (a secret file's trailing newline):
        # it is not part of the token. A blank token is none.
        self._token = token.strip().encode() if token and token.strip() else None
        self._model = model
        self._steer: Steer | None = None
        self._over = threading.Event()

    # -- the part: told of the run each interval, and when it is over ---------------------
    def follow(self, snap: IntervalSnapshot, run: RunView) -> None:  # noqa: ARG002 - the sink signature
        if self._steer is None:
            self._steer = getattr(run, "steering", None)  # a run that cannot be steered: control is refused

    def finish(self) -> None:
        self._over.set()

    # -- the handler -------------------------------------------------------------------
    def __call__(self, request: Request) -> Reply:
        try:
            return self._route(request)
        except Exception as exc:  # a reply, never a traceback on the run's terminal
            return _no(500, f"the control API failed: {type(exc).__name__}: {exc}")

    def _route(self, request: Request) -> Reply:
        sub = request.path[len(PREFIX):].strip("/")
        if not sub:
            if request.method not in ("GET", "HEAD"):
                return _no(405, "GET /api/control shows the state; POST to /api/control/stop, /rate or /users",
                           (("Allow", "GET, HEAD"),))
            return _json(200, self._state(request))
        action = next((a for a in _ACTIONS if a == sub), None)
        if action is None:
            return _no(404, f"no control {sub!r}: POST to /api/control/stop, /rate or /users")
        if request.method != "POST":
            return _no(405, f"/api/control/{action} takes POST", (("Allow", "POST"),))
        refused = self._refusal(request)
        if refused is not None:
            return refused
        try:
            value = _value(action, request.body)
        except _BadBody as exc:
            return _no(400, str(exc))
        return self._apply(action, value)

    def _policy(self, request: Request) -> str | None:
        """Why this port refuses control (no token and not on loopback), or None."""
        if self._token is None and not is_loopback(request.server_addr):
            return (f"control is refused: the metrics port is bound to {request.server_addr or 'every address'}, "
                    "not to loopback; give --control-token to allow it")
        return None

    def _refusal(self, request: Request) -> Reply | None:
        """A POST's checks, in order: the policy (403), the token (401), the origin (403), the body's type (415)."""
        why = self._policy(request)
        if why is not None:
            return _no(403, why)
        headers = request.headers
        host = headers.get("host")
        if self._token is None:
            name = _host_port(host) if host is not None else None
            if host is not None and (name is None or not is_loopback(name[0])):
                return _no(403, f"control is refused: the request names the host {host[:100]!r}, not a loopback "
                                "address (give --control-token to control from elsewhere)")
        else:
            scheme, _, given = headers.get("authorization", "").strip().partition(" ")
            # WSGI gives a header's bytes read as Latin-1: encoded back, they are what the client
            # sent, so a token of any characters matches itself as UTF-8 (what curl sends).
            sent = given.strip().encode("latin-1", "replace")
            if scheme.lower() != "bearer" or not hmac.compare_digest(sent, self._token):
                return _no(401, "control needs the header Authorization: Bearer TOKEN, with the --control-token "
                                "the run was given", (("WWW-Authenticate", 'Bearer realm="loadgen control"'),))
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host):
            return _no(403, f"control is refused from another origin ({origin[:100]!r}); use this port's own page")
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return _no(415, "a control call must say Content-Type: application/json")
        return None

    def _state(self, request: Request) -> dict[str, object]:
        why = self._policy(request)
        steer = self._steer
        if steer is None:
            doc: dict[str, object] = {"model": self._model, "rate": None, "users": None, "can": [], "changes": [],
                                      "running": False}
            run_why: str | None = "the run is over" if self._over.is_set() else "the run has not started yet"
        else:
            state = steer.state()
            doc = state_json(state)
            run_why = state.why
        return {"allowed": why is None, "why": why or run_why, **doc, "token_required": self._token is not None}

    def _apply(self, action: Action, value: float | None) -> Reply:
        steer = self._steer
        if self._over.is_set():
            return _no(409, "the run is over")
        if steer is None:
            return _no(409, "the run has not started yet; try again in a second")
        fut: Future[Change] = steer.submit(action, value)
        try:
            change = self._wait(fut)
        except Refused as exc:
            return _no(409, str(exc))
        status = 202 if action == "stop" or steer.relayed else 200
        now = steer.state()
        return _json(status, {"ok": True, "message": _said(change, steer.relayed), "change": change.to_json(),
                              "rate": now.rate, "users": now.users, "can": list(now.can), "running": now.running})

    @staticmethod
    def _wait(fut: Future[Change]) -> Change:
        try:
            return fut.result(timeout=WAIT_S)
        except TimeoutError:
            if fut.cancel():  # not started: withdrawn, so it never applies behind the caller's back
                raise Refused(f"the run did not take the change within {WAIT_S:g}s (its loop is busy, or it "
                              "is ending); nothing was changed") from None
        try:
            return fut.result(timeout=WAIT_S)  # it is being applied: that takes no time
        except TimeoutError:
            raise Refused("the change is still being applied; GET /api/control shows when it is") from None
