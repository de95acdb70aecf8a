"""Lifecycle hooks (loadgen.events): init at load, test_start/test_stop once per run around the
users, request after each request while someone listens; listeners belong to their scenario."""

from __future__ import annotations

import pytest

from loadgen import events
from loadgen.errors import ScenarioError
from loadgen.events import RequestFailed
from scenario_runs import cli, load, module_of, requests_by_name, run, write

pytestmark = pytest.mark.timeout(120)

LIFECYCLE = """
    import asyncio
    from loadgen import User, constant, events, task

    LOG = []

    @events.test_start.add_listener
    def started(environment, **kw):
        LOG.append(("test_start", environment.host, environment.options["users"], environment.runner))

    @events.test_stop.add_listener
    async def stopped(environment):
        await asyncio.sleep(0)
        LOG.append(("test_stop", environment.host))

    class U(User):
        wait_time = constant(0.02)

        async def on_start(self):
            assert self.environment.options["users"] == 2
            LOG.append("on_start")

        async def on_stop(self):
            LOG.append("on_stop")

        @task
        async def t(self):
            await self.client.get("/health")
"""


@pytest.mark.parametrize("model", ["closed", "open"])
def test_test_start_and_test_stop_fire_once_around_the_users(tmp_path, start_demo, model):
    demo = start_demo()
    sc = load(tmp_path, LIFECYCLE)
    cfg = {"model": "open", "rate": 20.0, "preallocated_users": 2} if model == "open" else {}
    _, s = run(sc, demo.url, **cfg)
    log = module_of(sc)["LOG"]
    assert log[0] == ("test_start", demo.url, 2, None)
    assert log[-1] == ("test_stop", demo.url)
    assert log.count(log[0]) == 1 and log.count(log[-1]) == 1
    assert log.count("on_start") == log.count("on_stop") >= 2
    assert s["exceptions"] == {} and s["requests"] > 0


REQUESTS = """
    from loadgen import User, constant, events, task

    SEEN = []
    CLIENTS = []

    @events.request.add_listener
    def on_request(request_type, name, response_time, response_length, response, context, exception,
                   start_time, url, **kw):
        SEEN.append(dict(request_type=request_type, name=name, response_time=response_time,
                         response_length=response_length, response=response, context=context,
                         exception=exception, start_time=start_time, url=url))

    @events.request.add_listener
    async def also_async(**kw):
        SEEN.append("async")

    class U(User):
        wait_time = constant(0.02)

        async def on_start(self):
            CLIENTS.append(type(self.client).__name__)

        @task
        async def t(self):
            await self.client.get("/health?x=1")
            await self.client.post("/nope", json={}, name="missing")
            await self.client.get("http://127.0.0.1:1/refused", name="refused")
"""


def test_request_listeners_see_every_request_as_locust_passes_it(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, REQUESTS)
    _, s = run(sc, demo.url, users=2, run_time_s=1.0)
    g = module_of(sc)
    seen = [r for r in g["SEEN"] if r != "async"]
    assert len(seen) == g["SEEN"].count("async") == s["requests"] > 0
    by_name = {r["name"]: r for r in seen}
    assert by_name.keys() == set(requests_by_name(s)) == {"/health", "missing", "refused"}
    ok, missing, refused = by_name["/health"], by_name["missing"], by_name["refused"]
    assert ok["request_type"] == "GET" and ok["exception"] is None and ok["context"] == {}
    assert ok["url"] == demo.url + "/health?x=1" and ok["response"].status == 200
    assert ok["response_length"] == len(ok["response"].content) > 0
    assert ok["response_time"] == ok["response"].elapsed_ms > 0 and ok["start_time"] > 1.6e9
    assert missing["request_type"] == "POST" and isinstance(missing["exception"], RequestFailed)
    assert str(missing["exception"]) == "HTTP 404"
    assert isinstance(refused["exception"], RequestFailed) and str(refused["exception"]) == "connect"
    assert set(g["CLIENTS"]) == {"ReportingClient"}


def test_without_request_listeners_users_get_the_plain_client(tmp_path, start_demo):
    demo = start_demo()
    load(tmp_path, REQUESTS, "with_listeners.py")  # loaded, never run: its listeners must not leak
    sc = load(tmp_path, LIFECYCLE.replace("        async def on_start(self):\n",
                                          "        async def on_start(self):\n"
                                          "            LOG.append(type(self.client).__name__)\n"))
    run(sc, demo.url)
    assert set(x for x in module_of(sc)["LOG"] if isinstance(x, str) and x.endswith("Client")) == {"Client"}


def test_listener_exceptions_are_counted_with_their_place_and_the_run_goes_on(tmp_path, start_demo):
    demo = start_demo()
    sc = load(tmp_path, """
        from loadgen import User, constant, events, task

        @events.test_start.add_listener
        def bad_start(environment):
            raise RuntimeError("no fixtures")

        @events.request.add_listener
        def bad_request(**kw):
            raise ValueError("bad listener")

        class U(User):
            wait_time = constant(0.02)

            @task
            async def t(self):
                await self.client.get("/health")
    """)
    _, s = run(sc, demo.url)
    n = s["requests"]
    assert n > 2 and s["failed_iterations"]["total"] == 0
    assert {k.split("s.py:", 1)[1]: v for k, v in s["exceptions"].items()} == {
        "5: RuntimeError: no fixtures": 1, "9: ValueError: bad listener": n}


def test_listeners_belong_to_their_scenario_and_are_taken_away_after_its_run(tmp_path, start_demo):
    demo = start_demo()
    before = [list(h.listeners) for h in events.HOOKS]
    sc = load(tmp_path, LIFECYCLE)
    assert [list(h.listeners) for h in events.HOOKS] == before  # loading adds nothing to the hooks
    assert [fn.__name__ for fn in sc.listeners.of(events.test_start)] == ["started"]
    run(sc, demo.url)
    assert [list(h.listeners) for h in events.HOOKS] == before


def test_init_fires_at_load_and_what_it_adds_belongs_to_the_scenario(tmp_path):
    sc = load(tmp_path, """
        from loadgen import User, events, task

        options = {"host": "http://example.test:8080"}
        SEEN = []

        @events.init.add_listener
        def on_init(environment, **kw):
            SEEN.append((environment.host, dict(environment.options), environment.runner))
            environment.events.request.add_listener(on_request)

        def on_request(**kw):
            pass

        class U(User):
            @task
            async def t(self):
                pass
    """)
    assert module_of(sc)["SEEN"] == [("http://example.test:8080", {"host": "http://example.test:8080"}, None)]
    assert [fn.__name__ for fn in sc.listeners.of(events.request)] == ["on_request"]
    assert events.request.listeners == [] and events.init.listeners == []


def test_an_init_listener_that_raises_makes_the_file_broken(tmp_path):
    with pytest.raises(ScenarioError, match=r"s.py:5: KeyError: 'API_KEY' raised while running its events.init"):
        load(tmp_path, """
            from loadgen import User, events, task

            @events.init.add_listener
            def on_init(environment, **kw):
                raise KeyError("API_KEY")

            class U(User):
                @task
                async def t(self):
                    pass
        """)
    assert events.init.listeners == []


def test_event_hook_api():
    hook = events.EventHook("custom")
    calls = []

    @hook.add_listener
    def one(**kw):
        calls.append(kw)

    assert one.__name__ == "one" and hook.listeners == [one]
    hook.fire(a=1)
    hook.remove_listener(one)
    hook.fire(a=2)
    assert calls == [{"a": 1}]
    with pytest.raises(ValueError):
        hook.remove_listener(one)
    with pytest.raises(TypeError):
        hook.add_listener("not a function")  # type: ignore[arg-type]


def test_each_worker_fires_test_start_and_test_stop_once(tmp_path, start_demo):
    demo = start_demo()
    marks = tmp_path / "marks.txt"
    f = write(tmp_path, f"""
        from loadgen import User, constant, events, task

        def mark(what):
            with open({str(marks)!r}, "a") as fh:
                fh.write(what + "\\n")

        events.test_start.add_listener(lambda environment: mark("start"))
        events.test_stop.add_listener(lambda environment: mark("stop"))

        class U(User):
            wait_time = constant(0.05)

            @task
            async def t(self):
                await self.client.get("/health")
    """)
    proc, s = cli(tmp_path, str(f), "--host", demo.url, "--run-time", "1s", "--users", "2", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert sorted(marks.read_text().split()) == ["start", "start", "stop", "stop"]
    assert s["requests"] > 0 and s["exceptions"] == {}
