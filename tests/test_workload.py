"""Schedules give exact intended times: constant, ramping, Poisson, and the test-type shapes."""

import itertools
import math
import random

import pytest

from loadgen.config import Stage
from loadgen.engine.workload import arrival_times, count_until, level_at, shape_for


def test_constant_rate_gives_exact_times():
    times = list(arrival_times([Stage(0, 100), Stage(1.0, 100)]))
    assert len(times) == 100
    for k, t in enumerate(times):
        assert t == pytest.approx(k / 100, abs=1e-12)


def test_linear_ramp_places_arrival_k_where_the_integral_reaches_k():
    # 0 -> 100/s over 10 s: N(t) = 5 t^2, so arrival k is at sqrt(k / 5).
    stages = [Stage(10.0, 100)]
    times = list(arrival_times(stages))
    assert len(times) == 500  # N(10) = 500, events k = 0..499
    for k, t in enumerate(times):
        assert t == pytest.approx(math.sqrt(k / 5), abs=1e-9)


def test_ramp_down_and_multi_stage_counts_match_the_integral():
    stages = [Stage(2.0, 200), Stage(3.0, 200), Stage(2.0, 0)]
    times = list(arrival_times(stages))
    assert len(times) == round(count_until(stages, 7.0))  # 200 + 600 + 200
    assert len(times) == 1000
    assert times == sorted(times)
    for k in (1, 250, 999):
        assert count_until(stages, times[k]) == pytest.approx(k, abs=1e-6)


def test_poisson_is_seeded_and_has_the_right_mean_rate():
    stages = [Stage(0, 1000), Stage(20.0, 1000)]
    a = list(arrival_times(stages, poisson=True, seed=7))
    b = list(arrival_times(stages, poisson=True, seed=7))
    c = list(arrival_times(stages, poisson=True, seed=8))
    assert a == b and a != c
    # 20000 expected; Poisson sd ~141, allow 5 sd
    assert abs(len(a) - 20000) < 5 * math.sqrt(20000)
    gaps = [y - x for x, y in itertools.pairwise(a)]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(1 / 1000, rel=0.03)
    # exponential gaps: the coefficient of variation is 1
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
    assert sd / mean == pytest.approx(1.0, rel=0.05)


def test_poisson_reproduces_the_exact_unit_process_under_a_constant_rate():
    rng = random.Random(3)
    expected = list(itertools.accumulate(rng.expovariate(1.0) for _ in range(50)))
    times = list(arrival_times([Stage(0, 10), Stage(100, 10)], poisson=True, seed=3))[:50]
    for e, t in zip(expected, times):
        assert t == pytest.approx(e / 10, abs=1e-9)


def test_zero_rate_stage_has_no_arrivals():
    assert list(arrival_times([Stage(5.0, 0)])) == []
    # a hold at zero between two active stages leaves a gap
    times = list(arrival_times([Stage(0, 10), Stage(1, 10), Stage(0, 0), Stage(2, 0), Stage(0, 10), Stage(1, 10)]))
    assert not [t for t in times if 1.0 < t < 3.0]
    assert len(times) == 20


def test_level_at_interpolates():
    stages = [Stage(10, 100), Stage(10, 100), Stage(0, 300)]
    assert level_at(stages, 5) == pytest.approx(50)
    assert level_at(stages, 15) == pytest.approx(100)
    assert level_at(stages, 25) == 300


@pytest.mark.parametrize("kind", ["load", "stress", "soak", "spike"])
def test_shapes_span_the_duration_and_reach_the_target(kind):
    shape = shape_for(kind, 100.0, 60.0, ramp_s=6.0)
    assert shape.duration_s == pytest.approx(60.0)
    assert max(s.target for s in shape.stages) == pytest.approx(100.0)
    assert shape.phases[0].start_s == 0 and shape.phases[-1].end_s == pytest.approx(60.0)


def test_stress_steps_up_evenly():
    shape = shape_for("stress", 100.0, 50.0, steps=5)
    assert [p.target for p in shape.phases] == [20, 40, 60, 80, 100]
    assert level_at(shape.stages, 9.99) == 20 and level_at(shape.stages, 10.01) == 40


def test_spike_bursts_then_recovers():
    shape = shape_for("spike", 100.0, 100.0)
    assert level_at(shape.stages, 10) == 20
    assert level_at(shape.stages, 40) == 100
    assert level_at(shape.stages, 80) == 20
