"""One diagnostics channel: the engine, the coordinator, sinks, collectors, the store and
log records report to it; the summary and the console read it; nothing prints across the display."""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
import time
import warnings

from loadgen.collectors.runner import ErrorLog
from loadgen.config import RunConfig
from loadgen.diagnostics import Diagnostic, Diagnostics, LogCapture, Logged, WarningList, capture_logging, relog
from loadgen.engine.engine import Engine
from loadgen.scaleout.coordinator import Coordinator
from loadgen.scenario import load_scenario
from loadgen.store import parse_db_url
from loadgen.store.writer import RunWriter

SCENARIO = """
import logging
from loadgen import User, task

class U(User):
    host = "http://127.0.0.1:9"

    @task
    async def t(self):
        logging.getLogger("scenario.lib").warning("a library complains")
        raise ValueError("nope")
"""


def test_entries_keep_their_order_named_ones_their_place_and_counted_ones_their_count():
    d = Diagnostics()
    d.warn("first")
    d.set("store", "database", "down")
    d.warn("a sink's", "sink")
    d.count("scenario", "x.py:3: ValueError: nope")
    d.count("scenario", "x.py:3: ValueError: nope", 2)
    d.set("store", "database", "still down")  # the same problem, now said differently: same place
    assert d.entries() == [Diagnostic("engine", "first"), Diagnostic("store", "still down"),
                           Diagnostic("sink", "a sink's"), Diagnostic("scenario", "x.py:3: ValueError: nope", 3)]
    assert d.texts("engine", "sink") == ["first", "a sink's"]
    assert d.counts("scenario") == {"x.py:3: ValueError: nope": 3}
    assert d.about("store", "database") == Diagnostic("store", "still down") and d.about("store", "spool") is None
    assert len(d) == 4 and d.latest == Diagnostic("store", "still down")


def test_replace_takes_a_reporters_whole_table_in_its_order():
    d = Diagnostics()
    d.replace("collector", {"a": Diagnostic("collector", "a 1"), "b": Diagnostic("collector", "b 1")})
    d.warn("between")
    d.replace("collector", {"b": Diagnostic("collector", "b 2"), "a": Diagnostic("collector", "a 1")})
    assert d.texts("collector") == ["b 2", "a 1"]
    assert d.latest == Diagnostic("collector", "b 2")  # "a 1" did not change


def test_a_sinks_warning_list_is_a_view():
    d = Diagnostics()
    view = WarningList(d)
    assert view == [] and len(view) == 0
    view.append("threshold failed: run aborted")
    d.warn("a collector's", "log")  # not the measurement's
    assert view == ["threshold failed: run aborted"]
    assert list(view) == ["threshold failed: run aborted"] and view[0] == "threshold failed: run aborted"
    assert d.entries("sink") == [Diagnostic("sink", "threshold failed: run aborted")]


def test_the_engine_reports_to_the_runs_diagnostics(tmp_path):
    path = tmp_path / "s.py"
    path.write_text(SCENARIO)
    d = Diagnostics()

    def warner(snap, run):
        if snap.index == 0:
            run.warnings.append("seen by a sink")

    def broken(snap, run):
        raise RuntimeError("boom")

    config = RunConfig(model="closed", users=1, run_time_s=1.2)
    with capture_logging(d, stream=io.StringIO()):
        result = Engine(config, scenario=load_scenario(path), sinks=[warner, broken], handle_signals=False,
                        diagnostics=d).run()
    (key,) = result.exceptions
    assert key.endswith("ValueError: nope") and str(path) in key and result.exceptions[key] > 1
    assert d.counts("scenario") == result.exceptions
    assert result.warnings[:2] == ["seen by a sink", "a results sink failed: RuntimeError: boom"]
    assert d.texts("engine", "sink", "workers") == result.warnings
    assert "a library complains" in d.texts("log")


def test_log_records_wait_while_held_and_are_echoed_after():
    d = Diagnostics()
    out = io.StringIO()
    log = logging.getLogger("loadgen.test")
    with capture_logging(d, stream=out) as logs:
        log.warning("before")
        with logs.held():
            log.warning("during")
            log.info("too quiet to say")
            assert out.getvalue() == "before\n"
        assert out.getvalue() == "before\nduring\n"
        warnings.warn("a library's warning", UserWarning, stacklevel=1)
    assert d.texts("log")[:2] == ["before", "during"] and "a library's warning" in d.texts("log")[2]
    log.warning("after the run")  # the handler is gone
    assert "after the run" not in d.texts("log") and "after the run" not in out.getvalue()
    assert not any(isinstance(h, LogCapture) for h in logging.getLogger().handlers)


def test_a_childs_record_is_logged_again_here():
    d = Diagnostics()
    with capture_logging(d, stream=io.StringIO()):
        relog(Logged("loadgen.collectors", logging.WARNING, "collector queue:q: cannot connect"))
    assert d.texts("log") == ["collector queue:q: cannot connect"]


def test_collector_errors_are_reported_as_the_summary_words_them():
    d = Diagnostics()
    errors = ErrorLog(clock=lambda: 1.0, diagnostics=d)
    with capture_logging(d, stream=io.StringIO()):
        errors.failed("queue:q", "cannot connect")
        errors.failed("queue:q", "cannot connect")
        errors.failed("sink:s", "sink:s failed: RuntimeError: x")
    assert d.texts("collector") == ["collector queue:q failed 2 time(s): cannot connect",
                                    "collector sink:s failed 1 time(s): sink:s failed: RuntimeError: x"]
    assert d.texts("collector") == [e.sentence() for e in errors.snapshot().values()]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_writers_problems_are_store_diagnostics(tmp_path):
    d = Diagnostics()
    blocked = tmp_path / "file"
    blocked.write_text("")
    run = {"id": "r", "test_type": "load", "model": "open", "loadgen_version": "test", "config": {},
           "started_at": time.time(), "status": "running"}
    writer = RunWriter(parse_db_url(f"postgresql://u:p@127.0.0.1:{_closed_port()}/x"), run,
                       spool_dir=blocked / "spool", connect_timeout_s=2.0, diagnostics=d)
    writer.start()
    try:
        assert writer.db_error is not None and writer.spool_error is not None
        assert d.texts("store") == [writer.spool_error, writer.db_error]
        assert "cannot write the spool file" in writer.spool_error
    finally:
        writer.finish({"status": "completed"}, [], timeout_s=10)


def test_workers_log_records_reach_the_coordinators_run(tmp_path):
    path = tmp_path / "s.py"
    path.write_text(SCENARIO.replace('raise ValueError("nope")', "import asyncio; await asyncio.sleep(0.2)"))
    d = Diagnostics()
    config = RunConfig(model="closed", users=2, run_time_s=1.0)
    with capture_logging(d, stream=io.StringIO()):
        result = Coordinator(config, workers=2, scenario_path=str(path), scenario=load_scenario(path),
                             handle_signals=False, diagnostics=d).run()
    assert result.warnings == d.texts("engine", "sink", "workers")
    assert "a library complains" in d.texts("log")


def test_reports_from_many_threads_are_all_kept():
    d = Diagnostics()

    def report(i: int) -> None:
        for j in range(200):
            d.count("scenario", f"e{j % 3}")
            d.warn(f"{i}-{j}")

    threads = [threading.Thread(target=report, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(d.counts("scenario").values()) == 800 and len(d.texts("engine")) == 800


def test_nothing_prints_across_the_live_display_and_the_summary_is_unchanged(tmp_path, capsys):
    from rich.console import Console

    from loadgen.session import GateOptions, StoreOptions
    from loadgen.session.execute import execute

    path = tmp_path / "s.py"
    path.write_text(SCENARIO)
    during: list[str] = []

    def peek(snap, run):  # what reached stderr while the display was up
        during.append(sys.stderr.getvalue())  # type: ignore[attr-defined]

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    outcome = execute(RunConfig(model="closed", users=1, run_time_s=1.2), scenario=load_scenario(path), adhoc=None,
                      target="http://127.0.0.1:9", store=StoreOptions(db=None, spool_dir=tmp_path), gate=GateOptions(),
                      console=console, quiet=False, summary_json=None, sinks=[peek])
    assert during and not any("a library complains" in err for err in during)
    assert "a library complains" in capsys.readouterr().err  # once the display was gone
    doc = outcome.summary.to_json()
    assert list(doc["exceptions"]) == [f"{path}:11: ValueError: nope"]
    assert not any("library" in w for w in doc["warnings"])  # log records are not the summary's warnings


def test_a_chatty_logger_is_counted_not_kept_record_by_record():
    d = Diagnostics()
    out = io.StringIO()
    log = logging.getLogger("loadgen.test")
    with capture_logging(d, stream=out) as logs:
        with logs.held():
            for i in range(1000):
                log.warning("the same again")
                log.warning("number %d", i)
    assert out.getvalue().startswith("the same again (1000 times)\nnumber 0\n")
    assert d.counts("log")["the same again"] == 1000 and len(d.counts("log")) == 201
    (more,) = [text for text in d.counts("log") if text.startswith("more log records")]
    assert d.counts("log")[more] == 1000 - 199


def test_a_record_the_program_prints_itself_is_not_printed_twice():
    # Found by review: a scenario that called logging.basicConfig saw each warning twice.
    d = Diagnostics()
    out = io.StringIO()
    log = logging.getLogger("loadgen.test.own")
    own = logging.StreamHandler(sys.stderr)
    log.addHandler(own)
    try:
        with capture_logging(d, stream=out):
            log.warning("printed by the program's handler")
            logging.getLogger("loadgen.test.other").warning("printed by us")
    finally:
        log.removeHandler(own)
    assert out.getvalue() == "printed by us\n"
    assert d.texts("log") == ["printed by the program's handler", "printed by us"]
