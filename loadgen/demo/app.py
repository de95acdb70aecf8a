"""The demo target: a small aiohttp stand-in of a marketing-content platform.

Load tests need a target whose behaviour they control (added latency, injected
errors, event-loop stalls, a job backlog) and whose request count they can
check against their own. Every piece of state lives on a :class:`DemoState`
stored on the app, so several targets can run in one process (tests do).
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from loadgen.demo.auth import Session, TokenStore, credentials_ok
from loadgen.demo.config import CONTENT_TYPES, DemoConfig
from loadgen.demo.jobs import JobQueue
from loadgen.demo.page import add_page_routes
from loadgen.errors import RunError

__all__ = [
    "DEMO_STATE",
    "DemoState",
    "RunningDemo",
    "ThreadedDemo",
    "make_app",
    "serve",
    "start",
]

log = logging.getLogger(__name__)

#: Requests to these paths are not counted: they are how a test observes the target.
_UNCOUNTED_PATHS = frozenset({"/metrics", "/_stats", "/_stats/reset"})
_PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_UNAUTHORIZED_BODY = orjson.dumps({"error": "missing, invalid or expired bearer token"})
_INJECTED_BODY = orjson.dumps({"error": "injected"})
_SEED_CAMPAIGNS = 50
_MAX_PAGE = 100
_DEFAULT_PAGE = 20


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response serialised with orjson (several times faster than json.dumps)."""
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def _unauthorized() -> web.Response:
    return web.Response(
        body=_UNAUTHORIZED_BODY,
        status=401,
        content_type="application/json",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _bad_request(message: str) -> web.Response:
    return _json({"error": message}, 400)


async def _read_object(request: web.Request) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one (-> 400)."""
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


class RequestStats:
    """The exact count of requests the target saw, for "generator == target" assertions."""

    __slots__ = ("requests",)

    def __init__(self) -> None:
        self.requests = 0


class HttpMetrics:
    """Per-request Prometheus series, with labelled children cached to keep the middleware cheap."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "demo_http_requests_total",
            "HTTP requests answered, by route pattern and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "demo_http_request_duration_seconds",
            "Time from the middleware seeing a request to its response being ready.",
            ["method", "route"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and record its duration."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(method, route, str(status)),
                self._duration.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class CampaignStore:
    """In-memory campaigns, seeded deterministically so list pages are stable across runs."""

    _CHANNELS = ("email", "social", "search", "display", "video")
    _STATUSES = ("active", "paused", "draft")

    def __init__(self, rng: random.Random, count: int = _SEED_CAMPAIGNS) -> None:
        self._items: list[dict[str, Any]] = []
        self._by_id: dict[int, dict[str, Any]] = {}
        base = datetime(2024, 1, 1, tzinfo=timezone.utc)
        for i in range(count):
            self._add(
                name=f"Campaign {i + 1:03d}",
                budget=float(rng.randrange(500, 50_000, 50)),
                channel=rng.choice(self._CHANNELS),
                status=rng.choice(self._STATUSES),
                owner="seed",
                created_at=base + timedelta(days=i),
            )

    def __len__(self) -> int:
        return len(self._items)

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """Campaigns ``offset .. offset+limit`` in creation order."""
        return self._items[offset : offset + limit]

    def get(self, campaign_id: int) -> dict[str, Any] | None:
        return self._by_id.get(campaign_id)

    def create(self, name: str, budget: float, owner: str) -> dict[str, Any]:
        """Add a draft campaign owned by ``owner``."""
        return self._add(name, budget, "email", "draft", owner, datetime.now(timezone.utc))

    def _add(
        self, name: str, budget: float, channel: str, status: str, owner: str, created_at: datetime
    ) -> dict[str, Any]:
        campaign = {
            "id": len(self._items) + 1,
            "name": name,
            "budget": budget,
            "channel": channel,
            "status": status,
            "owner": owner,
            "created_at": created_at.isoformat(timespec="seconds"),
        }
        self._items.append(campaign)
        self._by_id[campaign["id"]] = campaign
        return campaign


class Freezer:
    """Blocks the whole event loop (time.sleep in a callback) on a fixed schedule.

    This simulates a stop-the-world pause (GC, swapping) in the target: every
    connection stalls at once, which is what coordinated-omission-free latency
    measurement must catch. Freezes happen at ``start + k * every`` for k >= 1.
    """

    def __init__(self, every_s: float, for_s: float) -> None:
        self._every = every_s
        self._for = for_s
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started_at: float | None = None  # time.monotonic() at server start
        self.freezes = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.started_at = time.monotonic()
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def next_freeze_at(self) -> float:
        """time.monotonic() of the next freeze (skips slots already missed)."""
        assert self.started_at is not None, "the freezer has not started"
        elapsed = time.monotonic() - self.started_at
        return self.started_at + (int(elapsed // self._every) + 1) * self._every

    def _schedule(self) -> None:
        assert self._loop is not None
        delay = max(0.0, self.next_freeze_at() - time.monotonic())
        self._handle = self._loop.call_later(delay, self._freeze)

    def _freeze(self) -> None:
        time.sleep(self._for)  # deliberately blocking: that is the point
        self.freezes += 1
        self._schedule()


class DemoState:
    """All mutable state of one demo app, and the request handlers that use it."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_metrics = HttpMetrics(self.registry)
        self.stats = RequestStats()
        self.tokens = TokenStore(config.token_ttl_s, config.refresh_ttl_s)
        self.jobs = JobQueue(config, self.registry)
        self.campaigns = CampaignStore(random.Random(config.seed))
        self.freezer = Freezer(config.freeze_every_s, config.freeze_for_s) if config.freezing else None

    # -- auth ---------------------------------------------------------------

    def _session(self, request: web.Request) -> Session | None:
        """The live session of the request's ``Authorization: Bearer`` token, if any."""
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        return self.tokens.verify(token) if token else None

    def _token_response(self, session: Session) -> web.Response:
        return _json(
            {
                "access_token": session.access_token,
                "refresh_token": session.refresh_token,
                "token_type": "bearer",
                "expires_in": self.tokens.access_ttl_s,
            }
        )

    async def login(self, request: web.Request) -> web.Response:
        body = await _read_object(request)
        if body is None:
            return _bad_request("body must be a JSON object")
        username, password = body.get("username"), body.get("password")
        if not credentials_ok(username, password):
            return _json({"error": "invalid username or password"}, 401)
        assert isinstance(username, str)
        return self._token_response(self.tokens.login(username))

    async def refresh(self, request: web.Request) -> web.Response:
        body = await _read_object(request)
        if body is None:
            return _bad_request("body must be a JSON object")
        token = body.get("refresh_token")
        session = self.tokens.refresh(token) if isinstance(token, str) else None
        if session is None:
            return _json({"error": "unknown or expired refresh token"}, 401)
        return self._token_response(session)

    async def verify(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session is None:
            return _unauthorized()
        return _json(
            {
                "valid": True,
                "username": session.username,
                "expires_in": round(self.tokens.expires_in(session), 3),
            }
        )

    async def logout(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session is None:
            return _unauthorized()
        self.tokens.logout(session)
        return web.Response(status=204)

    # -- content jobs -------------------------------------------------------

    async def create_content(self, request: web.Request) -> web.Response:
        if self._session(request) is None:
            return _unauthorized()
        body = await _read_object(request)
        if body is None:
            return _bad_request("body must be a JSON object")
        content_type, prompt = body.get("type"), body.get("prompt", "")
        if content_type not in CONTENT_TYPES:
            return _bad_request(f"type must be one of {', '.join(CONTENT_TYPES)}")
        if not isinstance(prompt, str):
            return _bad_request("prompt must be a string")
        job = self.jobs.submit(content_type, prompt)
        return _json(
            {"job_id": job.job_id, "status": job.status},
            202,
            headers={"Location": f"/api/content/{job.job_id}"},
        )

    async def get_content(self, request: web.Request) -> web.Response:
        if self._session(request) is None:
            return _unauthorized()
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return _json({"error": "job not found"}, 404)
        return _json(job.to_json(time.monotonic()))

    # -- campaigns ----------------------------------------------------------

    async def list_campaigns(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", _DEFAULT_PAGE))
            offset = int(request.query.get("offset", 0))
        except ValueError:
            return _bad_request("limit and offset must be integers")
        if not (0 <= limit <= _MAX_PAGE) or offset < 0:
            return _bad_request(f"limit must be 0..{_MAX_PAGE} and offset >= 0")
        return _json({"items": self.campaigns.page(offset, limit), "total": len(self.campaigns)})

    async def get_campaign(self, request: web.Request) -> web.Response:
        raw = request.match_info["campaign_id"]
        campaign = self.campaigns.get(int(raw)) if raw.isdigit() else None
        if campaign is None:
            return _json({"error": "campaign not found"}, 404)
        return _json(campaign)

    async def create_campaign(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session is None:
            return _unauthorized()
        body = await _read_object(request)
        if body is None:
            return _bad_request("body must be a JSON object")
        name, budget = body.get("name"), body.get("budget", 0)
        if not isinstance(name, str) or not name.strip():
            return _bad_request("name is required")
        if isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0:
            return _bad_request("budget must be a non-negative number")
        return _json(self.campaigns.create(name, float(budget), session.username), 201)

    # -- operations -----------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text="loadgen demo target")

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "queue_length": len(self.jobs)})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": _PROMETHEUS_CONTENT_TYPE}
        )

    async def get_stats(self, request: web.Request) -> web.Response:
        return _json({"requests": self.stats.requests})

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats.requests = 0
        return _json({"requests": 0})


DEMO_STATE = web.AppKey("demo_state", DemoState)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_of(request: web.Request) -> str:
    """The matched route pattern (bounded label cardinality), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _make_middleware(state: DemoState) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Counting, metrics, latency and error injection in one cheap closure (no per-request lookups)."""
    stats, metrics, rng = state.stats, state.http_metrics, state.rng
    latency_s = state.config.latency_ms / 1000.0
    error_rate = state.config.error_rate

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        path = request.path
        if path in _UNCOUNTED_PATHS:
            return await handler(request)
        stats.requests += 1
        started = time.perf_counter()
        status = 500
        try:
            if path == "/" or path.startswith("/api/"):
                if latency_s:
                    await asyncio.sleep(latency_s)
                if error_rate and rng.random() < error_rate:
                    return web.Response(
                        body=_INJECTED_BODY, status=500, content_type="application/json"
                    )
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            if status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return _json({"error": exc.reason.lower()}, status, headers)
        except asyncio.CancelledError:
            status = 499  # the client went away before the answer
            raise
        except Exception:
            log.exception("demo target handler failed for %s %s", request.method, path)
            return _json({"error": "internal"}, 500)
        finally:
            metrics.observe(request.method, _route_of(request), status, time.perf_counter() - started)

    return middleware


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start the job workers and the freezer with the server, stop them with it."""
    state = app[DEMO_STATE]
    state.jobs.start()
    if state.freezer is not None:
        state.freezer.start(asyncio.get_running_loop())
    yield
    if state.freezer is not None:
        state.freezer.stop()
    await state.jobs.stop()


def make_app(config: DemoConfig) -> web.Application:
    """Build (not start) the demo app; raises UsageError on a bad config."""
    config.validate()
    state = DemoState(config)
    app = web.Application(middlewares=[_make_middleware(state)])
    app[DEMO_STATE] = state
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_routes(
        [
            web.get("/", state.index),
            web.get("/health", state.health),
            web.get("/metrics", state.metrics),
            web.get("/_stats", state.get_stats),
            web.post("/_stats/reset", state.reset_stats),
            web.post("/api/auth/login", state.login),
            web.post("/api/auth/refresh", state.refresh),
            web.get("/api/auth/verify", state.verify),
            web.post("/api/auth/logout", state.logout),
            web.post("/api/content", state.create_content),
            web.get("/api/content/{job_id}", state.get_content),
            web.get("/api/campaigns", state.list_campaigns),
            web.post("/api/campaigns", state.create_campaign),
            web.get("/api/campaigns/{campaign_id}", state.get_campaign),
        ]
    )
    add_page_routes(app)  # a browser page over the API, for HAR recordings (loadgen har)
    return app


def _url_host(host: str) -> str:
    """A host to put in a URL: wildcard binds are reached via loopback, IPv6 needs brackets."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@dataclass
class RunningDemo:
    """A started demo target on the current event loop."""

    app: web.Application
    config: DemoConfig
    port: int
    url: str
    _runner: web.AppRunner

    @property
    def state(self) -> DemoState:
        return self.app[DEMO_STATE]

    async def close(self) -> None:
        """Stop listening, finish in-flight requests (bounded) and stop the workers."""
        await self._runner.cleanup()


async def start(config: DemoConfig, *, shutdown_timeout: float = 5.0) -> RunningDemo:
    """Start the demo target on config.host/config.port (port 0 picks a free port).

    Raises UsageError on a bad config and RunError when the address cannot be bound.
    """
    app = make_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=1024, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise RunError(
            f"The demo target could not listen on {config.host}:{config.port}: {exc.strerror or exc}."
        ) from exc
    port = int(runner.addresses[0][1])
    return RunningDemo(app, config, port, f"http://{_url_host(config.host)}:{port}", runner)


async def _serve_until_signal(config: DemoConfig) -> None:
    running = await start(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            pass
    print(f"demo target listening on {running.url}", flush=True)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        await running.close()


def serve(config: DemoConfig) -> None:
    """Run the demo target until SIGINT/SIGTERM, on uvloop when it is installed."""
    config.validate()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve_until_signal(config))


class ThreadedDemo:
    """A demo target on its own event loop in a daemon thread.

    Load tests drive the target from the main thread; running the server on a
    separate loop keeps the two from sharing (and skewing) one event loop, and
    lets a freeze stall the target without stalling the generator.
    """

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: RunningDemo | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-target", daemon=True)

    @classmethod
    def start(cls, config: DemoConfig, timeout: float = 10.0) -> ThreadedDemo:
        """Start the server thread and wait until it listens (re-raising its start-up error)."""
        config.validate()
        demo = cls(config)
        demo._thread.start()
        if not demo._ready.wait(timeout):
            raise RunError(f"The demo target did not start within {timeout} s.")
        if demo._error is not None:
            raise demo._error
        return demo

    @property
    def running(self) -> RunningDemo:
        assert self._running is not None, "the demo target is not running"
        return self._running

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def app(self) -> web.Application:
        return self.running.app

    @property
    def state(self) -> DemoState:
        """The live state; read it only for assertions (it belongs to the server thread)."""
        return self.running.state

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join its thread; safe to call twice."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> ThreadedDemo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                self._running = loop.run_until_complete(start(self.config, shutdown_timeout=1.0))
            except BaseException as exc:  # handed to the starting thread
                self._error = exc
                return
            finally:
                self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._running.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
