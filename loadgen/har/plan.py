"""The replay a scenario is written from: requests as calls, in steps, with what each reads back."""

from __future__ import annotations

from dataclasses import dataclass

from .correlate import JsonTemplate, Source, Template

__all__ = ["Call", "Plan", "Step"]


@dataclass(frozen=True)
class Call:
    """One request of the replay, as the scenario makes it."""

    method: str
    url: Template  #: relative to the scenario's host, or absolute for another origin
    name: str | None  #: the row name when it is not the URL's path
    headers: tuple[tuple[str, Template], ...]
    json: JsonTemplate | None  #: ``json=`` (None: no JSON body)
    data: JsonTemplate | None  #: ``data=``: a form's fields (dict) or the text
    status: int  #: the recorded status, which the replay checks
    follow: bool  #: False for a recorded redirect (the next recorded request is where it led)
    reads: tuple[tuple[str, Source], ...]  #: variables read from the response
    think_s: float  #: recorded pause before it (0: none worth replaying)


@dataclass(frozen=True)
class Step:
    """A group of calls replayed together, as one method; ``pause_s`` before it."""

    method: str  #: the method's name
    title: str  #: for its docstring
    calls: tuple[Call, ...]
    pause_s: float


@dataclass(frozen=True)
class Plan:
    """Everything the scenario file says."""

    source: str  #: the HAR file's name, as given
    scenario: str  #: the scenario file's name, for the docstring's command line
    creator: str
    host: str
    on_start: tuple[Call, ...]
    steps: tuple[Step, ...]
    wait: tuple[float, float]  #: between(low, high) between iterations
    kept: int
    dropped: dict[str, int]
