"""Regression tolerances: how much worse a candidate run may be than its baseline.

Read from a JSON file in the old Locust suite's format (``//`` and ``/* */``
comments allowed), see :func:`load_tolerances`; without a file the defaults of
:class:`Tolerances` apply. Users know the file as the *thresholds file*
(``--thresholds-file``), so every message says "thresholds" as they do.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import UsageError

__all__ = ["PERCENTILES", "Tolerances", "load_tolerances", "parse_tolerances_text", "strip_json_comments"]

#: Accepted percentile names -> (canonical name, percentile).
PERCENTILES: dict[str, tuple[str, float]] = {
    "p50": ("p50", 50.0),
    "p75": ("p75", 75.0),
    "p90": ("p90", 90.0),
    "p95": ("p95", 95.0),
    "p99": ("p99", 99.0),
    "p99.9": ("p99.9", 99.9),
    "p999": ("p99.9", 99.9),
}

_RATIO_KEYS = ("response_time", "error_rate", "cpu_usage", "memory_usage", "queue_length", "throughput")
_INT_MINIMUM = {"baseline_runs": 1, "min_requests": 0}


class _Invalid(Exception):
    """A bad tolerance value; the message is a sentence fragment, without the file name."""


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def _check_ratio(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"{key} must be a number, not {_json_type(value)} ({value!r})")
    if not math.isfinite(value):
        raise _Invalid(f"{key} must be a finite number, not {value!r}")
    if value < 0:
        raise _Invalid(f"{key} must not be negative, not {value!r}")
    return float(value)


def _check_count(key: str, value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{key} must be a whole number, not {_json_type(value)} ({value!r})")
    low = _INT_MINIMUM[key]
    if value < 0:
        raise _Invalid(f"{key} must not be negative, not {value}")
    if value < low:
        raise _Invalid(f"{key} must be at least {low}, not {value}")
    return value


def _check_confidence(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"confidence must be a number, not {_json_type(value)} ({value!r})")
    if not (0.5 < value < 1):  # also refuses NaN
        raise _Invalid(f"confidence must be above 0.5 and below 1 (0.99 is 99 %), not {value!r}")
    return float(value)


def _check_percentile(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"percentile must be a string such as \"p95\", not {_json_type(value)} ({value!r})")
    canon = PERCENTILES.get(value.strip().lower())
    if canon is None:
        raise _Invalid(f"percentile {value!r} is not one of p50, p75, p90, p95, p99, p99.9")
    return canon[0]


def _check_value(key: str, value: object) -> float | int | str:
    """The normalised value of one tolerance key, or :class:`_Invalid`."""
    if key in _RATIO_KEYS:
        return _check_ratio(key, value)
    if key in _INT_MINIMUM:
        return _check_count(key, value)
    if key == "confidence":
        return _check_confidence(value)
    if key == "percentile":
        return _check_percentile(value)
    raise _Invalid(f"unknown key {key!r}")  # pragma: no cover - callers check keys first


@dataclass(frozen=True, slots=True)
class Tolerances:
    """How much worse a candidate may be; the defaults apply without a thresholds file.

    ``response_time``, ``cpu_usage``, ``memory_usage``, ``queue_length``: relative
    increase allowed (0.2 = +20 %); ``throughput``: relative drop allowed;
    ``error_rate``: absolute increase allowed (0.01 = one percentage point);
    ``confidence``: how sure the statistical guard must be that a latency or
    error-rate change is beyond the tolerance (above 0.5, below 1).
    """

    response_time: float = 0.2
    error_rate: float = 0.01
    cpu_usage: float = 0.15
    memory_usage: float = 0.15
    queue_length: float = 0.25
    throughput: float = 0.2
    percentile: str = "p95"  #: p50, p75, p90, p95, p99 or p99.9 ("p999" is accepted and stored as "p99.9")
    baseline_runs: int = 3  #: K, how many of the baseline version's newest runs form the baseline
    min_requests: int = 30  #: fewer requests -> latency verdict "insufficient data"
    #: one-sided confidence of the statistical guard (condition 3): 0.99 -> a 99 % bound, a test at p < 0.01
    confidence: float = 0.99
    source: str | None = field(default=None, compare=False)  #: the file they came from, None for defaults

    def __post_init__(self) -> None:
        for name in _keys():
            try:
                value = _check_value(name, getattr(self, name))
            except _Invalid as exc:
                raise UsageError(f"invalid thresholds: {exc}") from None
            object.__setattr__(self, name, value)

    @property
    def percentile_value(self) -> float:
        """The percentile as a number, e.g. 95.0 or 99.9."""
        return PERCENTILES[self.percentile][1]

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> Tolerances:
        """Inverse of :meth:`to_json`; unknown keys are ignored (a document from a later version)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (doc or {}).items() if k in known})


def _keys() -> list[str]:
    """The tolerance keys a file may set (every field but ``source``)."""
    return [f.name for f in fields(Tolerances) if f.name != "source"]


# A JSON string (no raw newlines inside), a // comment, a /* */ comment, or an unterminated /*.
_COMMENT_OR_STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|/\*.*?\*/|/\*', re.DOTALL)


def strip_json_comments(text: str) -> str:
    """``text`` with ``//`` and ``/* */`` comments blanked out; strings are left alone.

    Each comment character becomes a space (newlines are kept), so line and
    column numbers of a JSON error still point into the original file. A
    ``//`` inside a string (``"https://…"``) is not a comment. Raises
    ``ValueError`` naming the line of an unterminated ``/*``.
    """

    def blank(m: re.Match[str]) -> str:
        s = m.group(0)
        if s[0] == '"':
            return s
        if s == "/*":  # the closed form is tried first, so this one is never closed
            line = text.count("\n", 0, m.start()) + 1
            raise ValueError(f"a /* comment opened on line {line} is never closed")
        return re.sub(r"[^\n]", " ", s)

    return _COMMENT_OR_STRING.sub(blank, text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object hook: a key given twice is a mistake, not "the last one wins"."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Invalid(f"key {k!r} appears more than once")
        out[k] = v
    return out


def _parse_json(text: str, where: str) -> object:
    try:
        cleaned = strip_json_comments(text.removeprefix("\ufeff"))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if not cleaned.strip():
        raise UsageError(f"{where} is empty; it must hold a JSON object such as {{\"response_time\": 0.2}}")
    try:
        return json.loads(cleaned, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _Invalid as exc:
        raise UsageError(f"{where}: {exc}") from None
    except RecursionError:
        raise UsageError(f"{where} is nested too deeply to be a thresholds file") from None


def parse_tolerances_text(text: str, source: str) -> Tolerances:
    """Tolerances from the text of a thresholds file; ``source`` names it in errors.

    Keys not given keep their defaults. Any problem raises :class:`UsageError`
    with one sentence naming ``source`` and the problem.
    """
    where = f"thresholds file {source}"
    data = _parse_json(text, where)
    if not isinstance(data, dict):
        raise UsageError(f"{where} must hold a JSON object of thresholds, not {_json_type(data)}")
    known = _keys()
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys are {', '.join(known)}"
            raise UsageError(f"{where}: unknown key {key!r}{hint}")
        try:
            values[key] = _check_value(key, value)
        except _Invalid as exc:
            raise UsageError(f"{where}: {exc}") from None
    return Tolerances(**values, source=source)


def load_tolerances(path: str | os.PathLike[str]) -> Tolerances:
    """Read and validate a thresholds file; any problem is a :class:`UsageError` naming the file."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise UsageError(f"thresholds file {source} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"thresholds file {source} is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"thresholds file {source} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"thresholds file {source} is not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_tolerances_text(text, source)
