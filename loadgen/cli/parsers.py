"""The option table's parsers: a value as typed (or as a scenario's ``options`` gave it)
to what the run holds, or one sentence naming the option.

Each takes the value and the option's flag, so a message names what the user typed.
Number bounds live in :mod:`loadgen.config`; here they are only applied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..config import (
    Stage,
    number,
    parse_duration,
    parse_header,
    parse_method,
    parse_size,
    parse_stages,
    parse_url,
    shown,
)
from ..errors import UsageError

if TYPE_CHECKING:
    from ..collectors import QueueSpec, ServiceSpec
    from ..judgement.criteria import Criterion
    from ..judgement.tolerances import Tolerances
    from ..store.url import DatabaseURL

T_co = TypeVar("T_co", covariant=True)
Parser = Callable[[object, str], T_co]

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def as_given(value: object, flag: str) -> object:
    """Passed on as typed: :class:`~loadgen.config.RunConfig` or the store checks it."""
    return value


def url(value: object, flag: str) -> str:
    return parse_url(value, what=flag)  # type: ignore[arg-type]  # parse_url refuses a non-string


def method(value: object, flag: str) -> str:
    return parse_method(str(value))


def bounded(field: str) -> Parser[int | float]:
    """A number within the bounds :mod:`loadgen.config` documents for ``field``."""
    return lambda value, flag: number(field, value)


def duration(field: str, scale: float = 1.0) -> Parser[float]:
    """A duration, then held to ``field``'s bounds (``scale`` 1000: the field holds milliseconds)."""

    def parse(value: object, flag: str) -> float:
        return float(number(field, scale * parse_duration(value, what=flag), text=value))  # type: ignore[arg-type]

    return parse


def size(field: str) -> Parser[int]:
    """A size such as ``64KiB``, then held to ``field``'s bounds."""

    def parse(value: object, flag: str) -> int:
        return int(number(field, parse_size(value, what=flag), text=value))  # type: ignore[arg-type]

    return parse


def seconds(value: object, flag: str) -> float:
    """A duration with no bounds but the common ones (finite, at most 30 days)."""
    return parse_duration(value, what=flag)  # type: ignore[arg-type]


def interval(value: object, flag: str) -> float:
    """A duration that must be above zero: something is done every so often."""
    every = seconds(value, flag)
    if every <= 0:
        raise UsageError(f"{flag} must be positive")
    return every


def choice(*allowed: str) -> Parser[str]:
    def parse(value: object, flag: str) -> str:
        if value not in allowed:
            raise UsageError(f"{flag} must be {' or '.join(allowed)}, not {shown(value)}")
        return str(value)

    return parse


def stages(value: object, flag: str) -> tuple[Stage, ...]:
    # A scenario's options may hold anything; the command line always gives text.
    if not isinstance(value, str):
        raise UsageError(f"stages must be text such as '30s:100,1m:500', not {shown(value)}")
    return parse_stages(value) if value else ()


def headers(value: object, flag: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_header(item) for item in value)  # type: ignore[attr-defined]  # typer gives a list


def body(value: object, flag: str) -> bytes:
    """The text itself, or with a leading ``@`` the bytes of the file it names."""
    text = str(value)
    if not text.startswith("@"):
        return text.encode()
    try:
        with open(text[1:], "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"{flag} file {text[1:]} cannot be read: {exc.strerror}") from None


def readable_file(value: object, flag: str) -> str:
    """A path to a file this process can read (certificates, keys, CA bundles); checked here, read later."""
    path = os.path.expanduser(str(value))
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise UsageError(f"{flag} {shown(value)} is not a readable file")
    return path


def resolve(value: object, flag: str) -> tuple[str, ...]:
    """``HOST:PORT:ADDR`` specs (repeatable; a scenario's options may give one or a list)."""
    from ..http.connector import parse_resolve

    items = _items(value, flag, "HOST:PORT:ADDR text")
    for item in items:
        parse_resolve(str(item))  # UsageError, one sentence, for a bad one
    return tuple(str(i) for i in items)


def _items(value: object, flag: str, what: str) -> list[object]:
    """A repeatable option's values: the command line gives a list, a scenario's options one or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise UsageError(f"{flag} takes {what} or a list of them, not {shown(value)}")


def proxy(value: object, flag: str) -> str:
    """A proxy URL (checked as the environment's are; its password never shown)."""
    from ..http.proxy import Proxies

    Proxies.from_env({}, explicit=str(value))
    return str(value)


def criteria(value: object, flag: str) -> tuple[Criterion, ...]:
    from ..judgement.criteria import parse_criteria

    return parse_criteria(value or ())  # type: ignore[arg-type]  # it refuses what is not a list of text


def tolerances(value: object, flag: str) -> Tolerances:
    """The regression comparison's tolerances file; empty: the defaults."""
    from ..judgement.tolerances import Tolerances, load_tolerances

    return load_tolerances(str(value)) if value else Tolerances()


def services(value: object, flag: str) -> tuple[ServiceSpec, ...]:
    from ..collectors import parse_monitors

    return tuple(parse_monitors(value))  # type: ignore[arg-type]  # it refuses what it cannot read


def queues(value: object, flag: str) -> tuple[QueueSpec, ...]:
    from ..collectors import parse_queues

    return tuple(parse_queues(value))  # type: ignore[arg-type]


def database(value: object, flag: str) -> DatabaseURL | None:
    """A results store's URL; ``none`` stores nothing."""
    from ..store.url import parse_db_url

    text = str(value)
    return None if text.strip().lower() == "none" else parse_db_url(text)


def workers(value: object, flag: str) -> int:
    """A count of worker processes, or ``auto``: one per core."""
    from ..scaleout.coordinator import resolve_workers

    if not (isinstance(value, str) and value.strip().lower() == "auto"):
        number("workers", value)
    return resolve_workers(value)  # type: ignore[arg-type]


def shard(value: object, flag: str) -> tuple[int, int] | None:
    """``I/N``; empty: ``LOADGEN_SHARD`` or an Indexed Job's index, read by :func:`~loadgen.scaleout.shards.parse_shard`."""
    from ..scaleout.shards import parse_shard

    return parse_shard(str(value))


def run_id(value: object, flag: str) -> str:
    text = str(value)
    if not _RUN_ID.fullmatch(text):
        raise UsageError(f"{flag} {text!r} must be letters, digits, '.', '_' or '-' (at most 63)")
    return text


def webhooks(value: object, flag: str) -> tuple[str, ...]:
    """Webhook URLs (http or https with a host); a bad one is named with its secret part hidden."""
    from ..notify.targets import check_webhook

    urls: list[str] = []
    for item in _items(value, flag, "a URL"):
        urls.extend(str(item).split())  # LOADGEN_NOTIFY: URLs separated by spaces
    return tuple(check_webhook(u, flag) for u in urls)


def scenario_name(value: object, flag: str) -> str:
    """A scenario's identity: printable text on one line, at most 200 characters."""
    text = str(value).strip()
    if not text or len(text) > 200 or not text.isprintable():
        raise UsageError(f"{flag} {shown(text)} must be printable text on one line, 1 to 200 characters")
    return text
