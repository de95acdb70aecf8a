"""Durations, stages and URLs: parsed once, bad ones rejected in one sentence."""

import pytest

from loadgen.config import RunConfig, Stage, parse_duration, parse_stages, parse_url
from loadgen.errors import UsageError


@pytest.mark.parametrize(
    "text,seconds",
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1h2m3s", 3723), ("2", 2), ("1.5s", 1.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "s", "1h 30m", "-5s", "30s5"])
def test_bad_durations(text):
    with pytest.raises(UsageError, match="duration|negative"):
        parse_duration(text)


def test_stages():
    assert parse_stages("30s:100,1m:500,30s:0") == (Stage(30, 100), Stage(60, 500), Stage(30, 0))


@pytest.mark.parametrize("text", ["30s", "30s:x", "xs:5", ",", "10s:-1"])
def test_bad_stages(text):
    with pytest.raises(UsageError):
        parse_stages(text)


@pytest.mark.parametrize("url", ["htp://x", "http://", "127.0.0.1:80", "http://h:99999/"])
def test_bad_urls(url):
    with pytest.raises(UsageError):
        parse_url(url)


def test_open_model_needs_a_rate():
    with pytest.raises(UsageError, match="open model"):
        RunConfig(model="open")


def test_run_config_rejects_nonsense():
    for kw in ({"users": 0}, {"spawn_rate": 0}, {"max_inflight": 0}, {"test_type": "smoke"}, {"rate": -1}):
        with pytest.raises(UsageError):
            RunConfig(**kw)
