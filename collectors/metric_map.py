"""Which Prometheus series tell a queue's state: selectors, the field mapping, presets.

A selector is ``name`` or ``name{label="value",...}``; it matches every series
of that name whose labels include the given ones, and the matches are summed
(so ``demo_jobs_processed_total`` adds up every ``type``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from loadgen.errors import UsageError

__all__ = ["FIELDS", "PRESETS", "MetricSelector", "QueueMetricMap", "parse_selector", "split_top_level"]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SELECTOR = re.compile(rf"^\s*(?P<name>{_NAME})\s*(?:\{{(?P<labels>.*)\}})?\s*$", re.DOTALL)
_MATCHER = re.compile(r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class MetricSelector:
    """A metric name and the label values a series must have to be counted."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with ``labels`` is selected."""
        return all(labels.get(key) == value for key, value in self.labels)

    def __str__(self) -> str:
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_selector(text: str) -> MetricSelector:
    """``name`` or ``name{label="value",...}`` -> MetricSelector (UsageError when malformed)."""
    match = _SELECTOR.match(text)
    if match is None:
        raise UsageError(f'"{text}" is not a metric selector; use name or name{{label="value"}}.')
    labels: list[tuple[str, str]] = []
    body = (match.group("labels") or "").strip()
    pos = 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if m is None or m.end() == pos:
            raise UsageError(
                f'"{text}" has a malformed label matcher; use name{{label="value",other="value"}}.'
            )
        value = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), m.group("value"))
        labels.append((m.group("label"), value))
        pos = m.end()
    return MetricSelector(match.group("name"), tuple(labels))


def split_top_level(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside ``{...}`` and quotes (label values may contain ``sep``)."""
    parts: list[str] = []
    depth, quoted, escaped, start = 0, False, False, 0
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "{":
            depth += 1
        elif not quoted and char == "}":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and char == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


@dataclass(frozen=True, slots=True)
class QueueMetricMap:
    """For each QueueSample field, the series it comes from (several are summed; empty: not read).

    - ``length``, ``backlog_age``: gauges (messages waiting; seconds the oldest has waited);
    - ``processing_time``: a histogram or summary (its ``_sum``/``_count`` deltas give the mean
      over the sample period), or a gauge already in seconds;
    - ``published``, ``consumed``: counters of messages added and finished (failed ones included),
      turned into per-second rates;
    - ``failed``: a counter of failed messages; error rate = its increase / ``consumed``'s increase.
    """

    length: tuple[MetricSelector, ...] = ()
    backlog_age: tuple[MetricSelector, ...] = ()
    processing_time: tuple[MetricSelector, ...] = ()
    published: tuple[MetricSelector, ...] = ()
    consumed: tuple[MetricSelector, ...] = ()
    failed: tuple[MetricSelector, ...] = ()

    def selectors(self) -> list[MetricSelector]:
        """Every selector of the map, in field order."""
        return [s for f in fields(self) for s in getattr(self, f.name)]

    def is_empty(self) -> bool:
        return not self.selectors()

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, str | Iterable[str]], base: QueueMetricMap | None = None
    ) -> QueueMetricMap:
        """Fields from ``{"length": "sel", "consumed": ["a_total", "b_total"] or "a_total,b_total"}``."""
        values = {f.name: getattr(base, f.name) if base is not None else () for f in fields(cls)}
        for key, raw in mapping.items():
            if key not in values:
                raise UsageError(f"Unknown queue metric field {key!r}; use one of {', '.join(FIELDS)}.")
            items = split_top_level(raw, ",") if isinstance(raw, str) else list(raw)
            selectors = tuple(parse_selector(item) for item in items if str(item).strip())
            values[key] = selectors
        return cls(**values)


#: The QueueMetricMap field names, as they are spelt in specs.
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(QueueMetricMap))

#: Built-in mappings; "demo" reads the content job queue of ``loadgen demo-target``.
PRESETS: Mapping[str, QueueMetricMap] = MappingProxyType(
    {
        "demo": QueueMetricMap(
            length=(MetricSelector("demo_queue_length"),),
            backlog_age=(MetricSelector("demo_queue_backlog_age_seconds"),),
            processing_time=(MetricSelector("demo_job_processing_seconds"),),
            published=(MetricSelector("demo_jobs_published_total"),),
            consumed=(MetricSelector("demo_jobs_processed_total"), MetricSelector("demo_jobs_failed_total")),
            failed=(MetricSelector("demo_jobs_failed_total"),),
        ),
    }
)
