"""The regression tolerances and the thresholds file that sets them (JSON with comments)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loadgen.errors import EXIT_USAGE, UsageError
from loadgen.judgement.tolerances import Tolerances, load_tolerances, parse_tolerances_text, strip_json_comments


def test_default_thresholds() -> None:
    t = Tolerances()
    assert (t.response_time, t.error_rate, t.cpu_usage, t.memory_usage, t.queue_length) == (0.2, 0.01, 0.15, 0.15, 0.25)
    assert (t.throughput, t.percentile, t.baseline_runs, t.min_requests) == (0.2, "p95", 3, 30)
    assert t.confidence == 0.99
    assert t.percentile_value == 95.0
    assert Tolerances(percentile="p999").percentile == "p99.9"
    assert Tolerances(percentile="p999").percentile_value == 99.9
    with pytest.raises(UsageError, match="percentile 'p42'"):
        Tolerances(percentile="p42")
    with pytest.raises(UsageError, match="must not be negative"):
        Tolerances(cpu_usage=-1)
    assert Tolerances(confidence=0.9).confidence == 0.9
    assert Tolerances(confidence=0.999).to_json()["confidence"] == 0.999
    for bad in (0.5, 1, 1.0, 99, 0, -0.99, math.nan, math.inf):
        with pytest.raises(UsageError) as e:
            Tolerances(confidence=bad)
        expected = f"invalid thresholds: confidence must be above 0.5 and below 1 (0.99 is 99 %), not {bad!r}"
        assert str(e.value) == expected
    with pytest.raises(UsageError, match="confidence must be a number, not a string"):
        Tolerances(confidence="99%")  # type: ignore[arg-type]


LOCUST_FILE = """\
// Copied from the Locust suite.
{
  /* relative increases */
  "response_time": 0.3,   // 30 %
  "error_rate": 0.02,
  "cpu_usage": 0.1, /* a comment
     over several lines */ "memory_usage": 0.2,
  "queue_length": 0.5
}
"""


def test_locust_thresholds_file_with_comments(tmp_path: Path) -> None:
    p = tmp_path / "thresholds.json"
    p.write_text(LOCUST_FILE)
    t = load_tolerances(p)
    assert (t.response_time, t.error_rate, t.cpu_usage, t.memory_usage, t.queue_length) == (0.3, 0.02, 0.1, 0.2, 0.5)
    assert (t.throughput, t.percentile, t.baseline_runs, t.min_requests) == (0.2, "p95", 3, 30)  # defaults
    assert t.source == str(p)
    t = parse_tolerances_text(
        '\ufeff{"throughput": 0, "percentile": "P99", "baseline_runs": 5, "min_requests": 0, "confidence": 0.95}',
        "x.json",
    )
    assert (t.throughput, t.percentile, t.baseline_runs, t.min_requests) == (0.0, "p99", 5, 0)
    assert t.confidence == 0.95 and load_tolerances(p).confidence == 0.99
    assert parse_tolerances_text('{"percentile": "p999"}', "x").percentile == "p99.9"
    assert parse_tolerances_text('{"response_time": 1}', "x").response_time == 1.0
    # BOM in a file
    p.write_bytes(b"\xef\xbb\xbf{}")
    assert load_tolerances(p) == Tolerances()


def test_double_slash_inside_strings_is_kept() -> None:
    text = (
        '{"url": "http://example.com//a", /* c */ "b": "/* not a comment */",\n'
        ' "q": "say \\"hi // there\\"", // end\n "n": 1} // tail'
    )
    cleaned = strip_json_comments(text)
    assert json.loads(cleaned) == {
        "url": "http://example.com//a",
        "b": "/* not a comment */",
        "q": 'say "hi // there"',
        "n": 1,
    }
    assert cleaned.count("\n") == text.count("\n") and len(cleaned) == len(text)  # positions kept
    # Through the parser: the string survives intact into the error message.
    with pytest.raises(UsageError, match=r"percentile 'p95 // really' is not one of"):
        parse_tolerances_text('{"percentile": "p95 // really"} // comment', "t.json")


BAD_FILES = [
    ("{\n  // ok\n  \"response_time\": 0.2\n  \"error_rate\": 0.01\n}", "not valid JSON at line 4, column 3"),
    ("{\n /* a\n b */ \"response_time\": ,\n}", "not valid JSON at line 3"),
    ('{"response_time": 0.2} /* never closed', "comment opened on line 1 is never closed"),
    ('{"respons_time": 0.2}', "unknown key 'respons_time'; did you mean 'response_time'?"),
    ('{"colour": "red"}', "unknown key 'colour'; known keys are response_time"),
    ('{"response_time": "0.2"}', "response_time must be a number, not a string"),
    ('{"error_rate": true}', "error_rate must be a number, not a boolean"),
    ('{"cpu_usage": null}', "cpu_usage must be a number, not null"),
    ('{"memory_usage": -0.1}', "memory_usage must not be negative"),
    ('{"queue_length": NaN}', "queue_length must be a finite number"),
    ('{"throughput": [0.2]}', "throughput must be a number, not a list"),
    ('{"baseline_runs": 2.5}', "baseline_runs must be a whole number"),
    ('{"baseline_runs": 0}', "baseline_runs must be at least 1"),
    ('{"baseline_runs": -3}', "baseline_runs must not be negative"),
    ('{"min_requests": -1}', "min_requests must not be negative"),
    ('{"percentile": "p42"}', "percentile 'p42' is not one of p50, p75, p90, p95, p99, p99.9"),
    ('{"percentile": 95}', "percentile must be a string"),
    ('{"confidence": 99}', "confidence must be above 0.5 and below 1 (0.99 is 99 %), not 99"),
    ('{"confidence": 0.5}', "confidence must be above 0.5 and below 1"),
    ('{"confidence": "0.99"}', "confidence must be a number, not a string"),
    ('{"confidance": 0.9}', "unknown key 'confidance'; did you mean 'confidence'?"),
    ('[0.2]', "must hold a JSON object of thresholds, not a list"),
    ('{"error_rate": 0.01, "error_rate": 0.02}', "key 'error_rate' appears more than once"),
    ("  // only a comment\n", "is empty"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_FILES)
def test_bad_thresholds_files(tmp_path: Path, text: str, problem: str) -> None:
    p = tmp_path / "my-thresholds.json"
    p.write_text(text)
    with pytest.raises(UsageError) as e:
        load_tolerances(p)
    msg = str(e.value)
    assert msg.startswith(f"thresholds file {p}"), msg
    assert problem in msg
    assert "\n" not in msg and e.value.exit_code == EXIT_USAGE


def test_unreadable_thresholds_files(tmp_path: Path) -> None:
    cases = {
        tmp_path / "absent.json": "does not exist",
        tmp_path: "is a directory",
    }
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"response_time": 0.2} // caf\xe9')
    cases[bad] = "is not UTF-8 text"
    for path, problem in cases.items():
        with pytest.raises(UsageError) as e:
            load_tolerances(path)
        assert str(path) in str(e.value) and problem in str(e.value)
        assert e.value.exit_code == EXIT_USAGE
