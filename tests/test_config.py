"""Durations, stages and URLs: parsed once, bad ones rejected in one sentence."""

import pytest

from loadgen.config import RunConfig, Stage, parse_duration, parse_header, parse_method, parse_size, parse_stages, parse_url
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


@pytest.mark.parametrize("text", ["30s", "30s:x", "xs:5", ",", "10s:-1", "1s:nan", "1s:inf", "inf:5", "1s:1e12"])
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


@pytest.mark.parametrize("text", ["inf", "1e400", "nan", "-inf", "100000h", "99999999999"])
def test_durations_are_finite_and_bounded(text):
    with pytest.raises(UsageError, match="finite|longer than 30 days"):
        parse_duration(text)


@pytest.mark.parametrize("text,size", [("64KiB", 65536), ("10MB", 10_000_000), ("1GiB", 1 << 30), ("1048576", 1 << 20),
                                       ("100mib", 100 << 20), ("1.5 MiB", 3 << 19)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "inf", "nan", "-1", "1e400", "10XB", "100PiB", "MiB"])
def test_bad_sizes(text):
    with pytest.raises(UsageError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    "kw",
    [{"rate": float("nan")}, {"rate": float("inf")}, {"rate": 1e12}, {"spawn_rate": float("nan")},
     {"timeout_s": float("inf")}, {"connect_timeout_s": 0}, {"break_error_rate": -1}, {"users": 10**9},
     {"max_head_bytes": 10}, {"max_body_bytes": 0}, {"max_names": 0}, {"seed": -1}, {"users": True}],
)
def test_run_config_holds_every_number_to_its_bounds(kw):
    """Scenario options and the workers' JSON reach RunConfig without the CLI's parsers."""
    with pytest.raises(UsageError, match="must be"):
        RunConfig(**kw)


def test_run_config_round_trips_through_the_workers_json_and_the_stored_config():
    import orjson

    from loadgen.session import RunSpec
    from loadgen.session.record import stored_config

    cfg = RunConfig(host="http://u:pw@127.0.0.1:8080", model="open", rate=50.0, stages=(Stage(1, 5),),
                    max_head_bytes=4096, max_body_bytes=1 << 20, max_decoded_bytes=2 << 20, max_names=7)
    job = orjson.loads(orjson.dumps(cfg.to_json()))
    assert RunConfig.from_json(job) == cfg  # what a worker process gets
    spec = RunSpec(cfg, scenario=None, adhoc=None, target=None, summary_json=None, quiet=True)
    stored = orjson.loads(orjson.dumps(stored_config(spec)))
    assert stored["host"] == "http://u:***@127.0.0.1:8080"  # the password is not stored
    back = RunConfig.from_json(stored)
    assert (back.max_head_bytes, back.max_body_bytes, back.max_decoded_bytes, back.max_names) == (4096, 1 << 20, 2 << 20, 7)
    old = {k: v for k, v in stored.items() if not k.startswith("max_") or k == "max_inflight"}
    assert RunConfig.from_json(old).max_names == 200  # runs stored before these fields existed


def test_a_stored_ad_hoc_config_keeps_header_names_only():
    from loadgen.engine.engine import AdHocRequest
    from loadgen.session import RunSpec
    from loadgen.session.record import stored_config

    adhoc = AdHocRequest(url="http://u:pw@h/x", method="POST", headers={"Authorization": "Bearer t"}, body=b"abc")
    spec = RunSpec(RunConfig(model="open", rate=1.0), scenario=None, adhoc=adhoc, target=None, summary_json=None,
                   quiet=True)
    doc = stored_config(spec)
    assert doc["adhoc"] == {"url": "http://u:***@h/x", "method": "POST", "headers": ["Authorization"], "body_bytes": 3}
    assert RunConfig.from_json(doc) == spec.config  # the ad-hoc part is the request's, not the config's


def test_urls_that_a_request_line_cannot_carry():
    for url in ["http://h/a b", "http://h/\r\n", "http://h:0/", "http://h/\u00fc", "http://bad_host!/", "http://" + "a" * 64 + "/"]:
        with pytest.raises(UsageError):
            parse_url(url, what="--url")
    with pytest.raises(UsageError) as exc:
        parse_url("http://user:s3cret@h:99999/", what="--url")
    assert "s3cret" not in str(exc.value) and "user:***@" in str(exc.value)
    assert parse_url("http://[::1]:8080/x?q=1") == "http://[::1]:8080/x?q=1"
    assert parse_url("https://a-b.example.com./") == "https://a-b.example.com./"


def test_headers_and_methods():
    assert parse_header("X-Token:  abc\tdef ") == ("X-Token", "abc\tdef")
    assert parse_header("Accept-Language: fr-CH, caf\u00e9") == ("Accept-Language", "fr-CH, caf\u00e9")
    assert parse_method("get") == "GET"
    for bad in ["Authorization: Bearer a\r\nX: y", "X: \u4e2d", "Bad Name: v", ": v"]:
        with pytest.raises(UsageError) as exc:
            parse_header(bad)
        assert "Bearer" not in str(exc.value)  # a header's value is never quoted: it may be a credential
    for bad in ["GE T", "", "GET\n"]:
        with pytest.raises(UsageError):
            parse_method(bad)
