"""What Locust's names become in loadgen: the tables the converter reads, and why the rest stays.

Everything here is data. A Locust name is matched by the last part of its
qualified name (``locust.HttpUser``, ``locust.user.wait_time.constant`` and
``locust.contrib.fasthttp.FastHttpUser`` are all found), because Locust exports
the same objects from several modules.
"""

from __future__ import annotations

__all__ = [
    "LOADGEN_NAMES",
    "USER_BASES",
    "TASKSET_BASES",
    "SHAPE_BASES",
    "HTTP_METHODS",
    "POSITIONAL",
    "FAST_POSITIONAL",
    "KEPT_KEYWORDS",
    "DROPPED_KEYWORDS",
    "EVENTS",
    "event_reason",
    "locust_reason",
    "FASTHTTP_SETTINGS",
    "CLIENT_ATTRIBUTES",
    "CLIENT_HINTS",
    "RESPONSE_ATTRIBUTES",
    "RESPONSE_HINTS",
    "LOCUST_ONLY_METHODS",
    "SHAPE_ONLY_METHODS",
    "MAPPED_WITH_WARNING",
]

#: Locust's public names (last part of the qualified name) and loadgen's for them.
LOADGEN_NAMES: dict[str, str] = {
    "HttpUser": "User",
    "FastHttpUser": "User",
    "User": "User",
    "TaskSet": "TaskSet",
    "SequentialTaskSet": "SequentialTaskSet",
    "task": "task",
    "tag": "tag",
    "between": "between",
    "constant": "constant",
    "constant_pacing": "constant_pacing",
    "constant_throughput": "constant_throughput",
    "events": "events",
    "LoadTestShape": "LoadShape",
    "StopUser": "StopUser",
    "RescheduleTask": "RescheduleTask",
    "RescheduleTaskImmediately": "RescheduleTask",
    "InterruptTaskSet": "InterruptTaskSet",
}

#: Mapped, but not exactly: the warning says what differs.
MAPPED_WITH_WARNING: dict[str, str] = {
    "RescheduleTaskImmediately": "RescheduleTaskImmediately became RescheduleTask: loadgen still waits the user's "
    "wait_time before the next task",
}

USER_BASES = frozenset({"HttpUser", "FastHttpUser", "User"})
TASKSET_BASES = frozenset({"TaskSet", "SequentialTaskSet"})
SHAPE_BASES = frozenset({"LoadTestShape"})

#: The client's request methods (requests' and Locust's names; loadgen's are the same).
HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})

#: Keywords that positional arguments after the URL stand for (requests.Session under HttpUser).
POSITIONAL: dict[str, tuple[str, ...]] = {
    "post": ("data", "json"),
    "put": ("data",),
    "patch": ("data",),
    "request": ("name", "catch_response", "context"),
}
#: The same for FastHttpUser's client (locust.contrib.fasthttp.FastHttpSession).
FAST_POSITIONAL: dict[str, tuple[str, ...]] = {
    "post": ("data",),
    "put": ("data",),
    "patch": ("data",),
    "request": ("name", "data", "catch_response", "stream", "headers", "auth", "json", "allow_redirects", "context"),
}

#: Request keywords loadgen's client takes under the same name and meaning.
KEPT_KEYWORDS = frozenset(
    {"name", "headers", "json", "data", "params", "files", "auth", "cookies", "timeout", "verify", "cert",
     "allow_redirects"}
)

#: Keywords dropped, and why (None: nothing is lost).
DROPPED_KEYWORDS: dict[str, str | None] = {
    "catch_response": None,
    "stream": "stream= dropped: loadgen reads every body (up to its size limit)",
    "context": "context= dropped: loadgen's request listeners get no per-request context",
}

#: The events loadgen's `events` has (loadgen.events: test_start, test_stop, request, init).
EVENTS = frozenset({"test_start", "test_stop", "request", "init"})

_EVENT_HINTS: dict[str, str] = {
    "init_command_line_parser": "custom command-line options do not exist in loadgen: read such settings from "
    "environment variables",
    "report_to_master": "loadgen merges its workers' results itself; there is no master to report to",
    "worker_report": "loadgen merges its workers' results itself; there is no master to report to",
    "test_stopping": "use events.test_stop",
    "quitting": "use events.test_stop",
    "quit": "use events.test_stop",
    "reset_stats": "loadgen has no web UI to reset statistics from",
    "usage_monitor": "loadgen measures its own resources (--collect)",
    "cpu_warning": "loadgen watches its own event loop (stalls are reported)",
}


def event_reason(event: str) -> str:
    """Why a listener of Locust's ``events.<event>`` cannot be converted."""
    hint = _EVENT_HINTS.get(event)
    return f"loadgen has no '{event}' event" + (f": {hint}" if hint else "")


_RUNNER = "Locust's runner internals have no loadgen equivalent (loadgen's environment.runner is None)"
_LIBRARY = "loadgen does not run as a library from a locustfile: use `loadgen run FILE`"
_FAST = "a FastHttpUser-only API: loadgen's client is requests-like (`with` blocks, r.fail(), r.json())"

#: Why a Locust name has no loadgen equivalent (by last part; `locust_reason` has the default).
_REASONS: dict[str, str] = {
    "run_single_user": "loadgen has no run_single_user: run `loadgen run FILE --users 1` instead",
    "HttpSession": "a second HTTP session is a custom client: loadgen gives each user one client, which takes "
    "absolute URLs to other hosts",
    "FastHttpSession": "a second HTTP session is a custom client: loadgen gives each user one client, which takes "
    "absolute URLs to other hosts",
    "ResponseContextManager": "Locust's response class: loadgen's is loadgen.Response",
    "RestResponseContextManager": _FAST,
    "FastResponse": _FAST,
    "runners": _RUNNER,
    "MasterRunner": _RUNNER,
    "WorkerRunner": _RUNNER,
    "LocalRunner": _RUNNER,
    "Runner": _RUNNER,
    "Environment": _LIBRARY,
    "env": _LIBRARY,
    "stats_printer": _LIBRARY,
    "stats_history": _LIBRARY,
    "setup_logging": _LIBRARY,
    "log": _LIBRARY,
    "stats": _LIBRARY,
    "web": "loadgen has no web UI",
    "EventHook": "loadgen's events are test_start, test_stop, request and init; it has no custom events",
}


def locust_reason(qualified: str) -> str:
    """Why ``qualified`` (``locust.runners.MasterRunner``) is kept as Locust's."""
    last = qualified.rpartition(".")[2]
    if last.startswith("STATE_"):
        return _RUNNER
    return _REASONS.get(last, f"loadgen has no equivalent of {qualified}")


#: FastHttpUser's class settings: what to use in loadgen instead.
FASTHTTP_SETTINGS: dict[str, str] = {
    "network_timeout": "--timeout (or timeout= per call)",
    "connection_timeout": "--timeout",
    "max_redirects": "--max-redirects (or max_redirects= per call)",
    "max_retries": "nothing: loadgen does not retry",
    "insecure": "--insecure (or verify=False per call)",
    "default_headers": "self.client.headers in on_start",
    "concurrency": "nothing: each user keeps one connection per origin (HTTP/2 multiplexes)",
    "client_pool": "nothing: connections are per user",
    "ssl_context_factory": "--ca-bundle, --client-cert/--client-key",
    "proxy_host": "--proxy",
    "proxy_port": "--proxy",
}

#: Attributes of Locust's client that loadgen's client has (the request methods aside).
CLIENT_ATTRIBUTES = frozenset({"headers", "cookies", "base_url", "request_name", "rename_request"})

#: What to use instead of a requests.Session attribute loadgen's client lacks.
CLIENT_HINTS: dict[str, str] = {
    "auth": "pass auth= with each call",
    "verify": "use --insecure or --ca-bundle, or verify= per call",
    "cert": "use --client-cert/--client-key, or cert= per call",
    "proxies": "use --proxy (or HTTP_PROXY/HTTPS_PROXY)",
    "max_redirects": "use --max-redirects, or max_redirects= per call",
    "params": "pass params= with each call",
    "request_event": "loadgen records the client's requests itself",
}

#: Methods of Locust's User/TaskSet that loadgen's lack, and why.
LOCUST_ONLY_METHODS: dict[str, str] = {
    "wait": "loadgen's task sets have no wait(): the wait_time runs between tasks",
    "schedule_task": "loadgen's task sets have no schedule_task(): call the task method and await it",
    "get_next_task": "loadgen's task sets have no get_next_task()",
    "execute_task": "loadgen's task sets have no execute_task(): call the task method and await it",
    "context": "loadgen's users have no context(): request listeners get no per-user context",
    "rest": _FAST,
    "rest_": _FAST,
    "stop": "loadgen's users have no stop(): raise StopUser",
}

#: Methods of Locust's LoadTestShape that loadgen's LoadShape lacks.
SHAPE_ONLY_METHODS: dict[str, str] = {
    "get_current_user_count": "loadgen's LoadShape has no get_current_user_count(): a shape says the users it wants",
    "reset_time": "loadgen's LoadShape has no reset_time(): get_run_time() counts from the start",
}

#: What loadgen's Response has under requests' names (success()/failure() and elapsed are converted).
RESPONSE_ATTRIBUTES = frozenset(
    {"status", "status_code", "ok", "headers", "content", "text", "json", "elapsed_ms", "url", "history", "error",
     "check", "fail"}
)

#: What to use instead of a requests.Response attribute loadgen's Response lacks.
RESPONSE_HINTS: dict[str, str] = {
    "elapsed": "use r.elapsed_ms (milliseconds)",
    "iter_lines": "the body is read whole: use r.text.splitlines()",
    "iter_content": "the body is read whole: use r.content",
    "raw": "the body is read whole: use r.content",
    "raise_for_status": "a status of 400 or above already counts as an error; r.ok says whether it did",
    "reason": "use r.status",
    "cookies": "the user's cookies are in self.client.cookies",
    "encoding": "r.text decodes UTF-8",
    "apparent_encoding": "r.text decodes UTF-8",
    "is_redirect": "redirects are followed: r.history lists them",
    "request": "loadgen's Response does not keep the request",
    "js": "use r.json()",
}
