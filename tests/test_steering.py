"""Steering a run (loadgen.engine.steering): the schedule a sequence of changes leaves, the
stages that ran, the arrivals after a change, and the thread-safe handle."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from loadgen.config import RunConfig, Stage
from loadgen.engine.steering import MAX_CHANGES, Change, Refused, Steer, Steering, cut, fixed_load
from loadgen.engine.workload import arrival_times, count_until, level_at


def _open(rate: float = 20.0, run_s: float = 6.0) -> Steering:
    return Steering("open", (Stage(0.0, rate), Stage(run_s, rate)), end_s=run_s, spawn_rate=10.0)


def test_fixed_load_names_what_sets_the_load():
    """One rule for the engine and the coordinator: a LoadShape (named) or a stress run's steps."""
    plain = RunConfig(model="open", rate=50, run_time_s=10.0)
    assert fixed_load(plain, None) is None
    assert fixed_load(plain, "Waves") == "the scenario's LoadShape (Waves) sets the user count"
    stress = RunConfig(model="open", rate=50, run_time_s=10.0, test_type="stress", break_p95_ms=50.0)
    assert fixed_load(stress, None) is not None and "stress run's steps" in fixed_load(stress, None)


def test_cut_keeps_the_curve_up_to_t():
    stages = (Stage(4.0, 40.0), Stage(0.0, 10.0), Stage(4.0, 10.0))
    assert cut(stages, 2.0) == [Stage(2.0, 20.0)]  # half-way up the ramp
    assert cut(stages, 4.0) == [Stage(4.0, 40.0), Stage(0.0, 10.0)]  # the jump at 4 s applies from 4 s
    assert cut(stages, 5.0) == [Stage(4.0, 40.0), Stage(0.0, 10.0), Stage(1.0, 10.0)]
    assert cut(stages, 0.0) == []
    for t in (0.5, 2.0, 3.99, 4.5, 7.9):
        assert level_at(cut(stages, t), t) == pytest.approx(level_at(stages, t))


def test_a_rate_change_replaces_what_remained_and_the_applied_stages_say_so():
    s = _open()
    change = s.change("rate", 80.0, 2.0)
    assert change == Change(2.0, "rate", 80.0, "api")
    assert s.stages == (Stage(0.0, 20.0), Stage(2.0, 20.0), Stage(0.0, 80.0), Stage(4.0, 80.0))
    assert s.level(1.0) == 20.0 and s.level(2.5) == 80.0 and s.level(5.99) == 80.0
    assert s.applied(6.0) == s.stages
    assert s.applied(3.0) == (Stage(0.0, 20.0), Stage(2.0, 20.0), Stage(0.0, 80.0), Stage(pytest.approx(1.0), 80.0))
    s.change("rate", 10.0, 4.0)
    assert s.level(3.0) == 80.0 and s.level(4.5) == 10.0
    assert [st.target for st in s.applied(6.0)] == [20.0, 20.0, 80.0, 80.0, 10.0, 10.0]
    assert sum(st.duration_s for st in s.applied(6.0)) == pytest.approx(6.0)
    assert [c.action for c in s.changes] == ["rate", "rate"] and s.steered


def test_a_user_change_ramps_at_the_spawn_rate_then_holds():
    # A load run of 10 users (ramped at 10/s) for 10 s; at 3 s, 20 users at 5/s: 2 s of ramp.
    s = Steering("closed", (Stage(1.0, 10.0), Stage(9.0, 10.0)), end_s=10.0, spawn_rate=5.0)
    s.change("users", 20, 3.0)
    assert s.level(3.0) == 10.0 and s.level(4.0) == pytest.approx(15.0) and s.level(5.0) == 20.0
    assert s.level(9.0) == 20.0
    # Down again near the end: the ramp is cut at the planned end, at the level reached there.
    s.change("users", 1, 9.0)
    assert s.level(9.5) == pytest.approx(17.5)
    assert s.applied(10.0)[-1] == Stage(1.0, pytest.approx(15.0))
    state = s.state(4.0, running=True)
    assert state.users == 15 and state.rate is None and state.can == ("stop", "users")


def test_what_does_not_apply_is_refused_in_one_sentence():
    s = _open()
    with pytest.raises(Refused, match="open model's load is its rate: users applies to the closed model"):
        s.change("users", 5, 1.0)
    with pytest.raises(Refused, match="schedule is over"):
        s.change("rate", 50.0, 6.0)
    shaped = Steering("closed", (Stage(1.0, 2.0),), end_s=1e9, spawn_rate=1.0, fixed="a LoadShape sets it")
    with pytest.raises(Refused, match="a LoadShape sets it"):
        shaped.change("users", 3, 1.0)
    assert shaped.change("stop", None, 1.0).action == "stop"  # a stop always applies
    assert not shaped.steered and shaped.state(1.0, running=True).can == ("stop",)


def test_a_flood_of_changes_is_bounded():
    s = _open(run_s=10_000.0)
    for k in range(MAX_CHANGES):
        s.change("rate", 10.0 + k % 7, k * 0.01)
    with pytest.raises(Refused, match="1,000 changes"):
        s.change("rate", 50.0, 100.0)
    assert len(s.changes) == MAX_CHANGES
    assert len(s.stages) <= 2 * MAX_CHANGES + 2  # the schedule stays bounded too
    assert s.state(100.0, running=True).can == ("stop",)
    assert s.change("stop", None, 100.0).action == "stop"


def test_constant_arrivals_after_a_change_are_the_changed_schedule_s():
    s = _open(rate=20.0, run_s=6.0)
    s.change("rate", 80.0, 2.013)
    whole = [t for t in arrival_times(s.stages) if t > 2.013]
    tail = list(s.arrivals(2.013, poisson=False, seed=None, part=(0, 1)))
    assert tail == pytest.approx(whole)
    assert len(tail) == pytest.approx(80 * (6 - 2.013), abs=1)
    # The parts of a run split them exactly as the engine splits a schedule: every n-th event
    # of the whole run's count, from the i-th.
    everything = list(arrival_times(s.stages))
    for i in range(3):
        part = list(s.arrivals(2.013, poisson=False, seed=None, part=(i, 3)))
        assert part == pytest.approx([t for t in everything[i::3] if t > 2.013])


def test_constant_arrivals_continue_the_count_on_a_ramp():
    s = Steering("open", (Stage(4.0, 100.0),), end_s=4.0, spawn_rate=1.0)
    s.change("rate", 30.0, 1.7)
    done = count_until(s.stages, 1.7)
    tail = list(s.arrivals(1.7, poisson=False, seed=1, part=(0, 1)))
    assert tail[0] > 1.7 and tail == pytest.approx([t for t in arrival_times(s.stages) if t > 1.7])
    assert len(tail) == pytest.approx(30 * 2.3, abs=1) and done == pytest.approx(100 * 1.7 ** 2 / 8)


def test_poisson_arrivals_after_a_change_are_seeded():
    s = _open(rate=20.0, run_s=60.0)
    s.change("rate", 200.0, 10.0)
    a = list(s.arrivals(10.0, poisson=True, seed=7, part=(0, 1)))
    assert a == list(s.arrivals(10.0, poisson=True, seed=7, part=(0, 1)))
    assert a != list(s.arrivals(10.0, poisson=True, seed=8, part=(0, 1)))
    assert all(10.0 < t < 60.0 for t in a) and a == sorted(a)
    assert 200 * 50 * 0.9 < len(a) < 200 * 50 * 1.1
    halves = [list(s.arrivals(10.0, poisson=True, seed=7, part=(i, 2))) for i in range(2)]
    assert sorted(halves[0] + halves[1]) == a


def test_state_before_during_and_after():
    s = _open()
    assert s.state(None, running=False).why == "the run has not started yet"
    during = s.state(1.0, running=True)
    assert during.running and during.can == ("stop", "rate") and during.rate == 20.0 and during.why is None
    after = s.state(7.0, running=False)
    assert after.can == () and after.why


def _steer(s: Steering, *, post, running=lambda: True, clock=lambda: 1.0, refuse=None) -> Steer:
    return Steer(s, clock=clock, running=running, post=post,
                 apply=lambda action, value, at_s: s.change(action, value, 1.0 if at_s is None else at_s),
                 refuse=refuse)


def test_steer_hands_the_change_to_the_owning_thread():
    s = _open()
    ran_on: list[str] = []

    def post(fn):
        def owner():
            ran_on.append(threading.current_thread().name)
            fn()
        threading.Thread(target=owner, name="owner").start()

    fut = _steer(s, post=post).submit("rate", 50.0)
    assert fut.result(timeout=10) == Change(1.0, "rate", 50.0)
    assert ran_on == ["owner"] and s.level(2.0) == 50.0
    with pytest.raises(Refused, match="applies to the closed model"):
        _steer(s, post=post).submit("users", 5).result(timeout=10)


def test_steer_refuses_without_a_thread_to_apply_it():
    s = _open()

    def closed(fn):
        raise RuntimeError("Event loop is closed")

    for steer, match in ((_steer(s, post=closed), "over"),
                         (_steer(s, post=closed, clock=lambda: None), "not started"),
                         (_steer(s, post=closed, running=lambda: False), "over or already stopping"),
                         (_steer(s, post=closed, refuse="a shard"), "a shard")):
        with pytest.raises(Refused, match=match):
            steer.submit("rate", 5.0).result(timeout=1)
    assert not s.changes


def test_a_change_withdrawn_before_it_runs_never_applies():
    s = _open()
    queued: list = []
    fut: Future = _steer(s, post=queued.append).submit("rate", 50.0)
    assert fut.cancel()  # the caller gave up waiting
    queued[0]()  # the owner comes round to it later
    assert not s.changes and s.level(2.0) == 20.0


def test_constant_arrivals_after_a_late_change_go_on_after_those_already_started():
    # A worker applies a change as of the coordinator's time of it (1.0 s), once its own clock is a
    # little past: arrivals 21 and 22 already started on the old schedule; the changed one goes on from 23.
    s = _open()
    s.change("rate", 100.0, 1.0)
    late = list(s.arrivals(1.0, poisson=False, seed=None, part=(0, 1), first=23))
    on_time = list(s.arrivals(1.0, poisson=False, seed=None, part=(0, 1)))
    assert on_time[:3] == pytest.approx([1.01, 1.02, 1.03]) and late[0] == pytest.approx(1.03)
    assert late == on_time[2:]
    # Each part keeps its own numbers: part 1 of 2 goes on from 23, part 0 from 24.
    assert list(s.arrivals(1.0, poisson=False, seed=None, part=(1, 2), first=23)) == on_time[2::2]
    assert list(s.arrivals(1.0, poisson=False, seed=None, part=(0, 2), first=24)) == on_time[3::2]
