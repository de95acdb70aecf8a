"""The one exception hierarchy of loadgen.

Every error a user can cause or meet derives from :class:`LoadgenError`. Each
class carries the process exit code the CLI turns it into, so the mapping from
"what went wrong" to "what CI sees" lives in one place.
"""

from __future__ import annotations

__all__ = [
    "LoadgenError",
    "UsageError",
    "ScenarioError",
    "RunError",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_RUN",
]

EXIT_OK = 0  #: the run passed
EXIT_FAILED = 1  #: a threshold or a regression failed
EXIT_USAGE = 2  #: bad usage, configuration or scenario
EXIT_RUN = 3  #: the run could not be carried out


class LoadgenError(Exception):
    """Base of every error loadgen reports to a user as one sentence."""

    exit_code: int = EXIT_USAGE


class UsageError(LoadgenError):
    """A bad option, duration, URL, stage list or other configuration value."""

    exit_code = EXIT_USAGE


class ScenarioError(LoadgenError):
    """A scenario file that cannot be loaded: syntax, import, or no tasks."""

    exit_code = EXIT_USAGE


class RunError(LoadgenError):
    """The run could not be carried out (for example, the target is unreachable)."""

    exit_code = EXIT_RUN
