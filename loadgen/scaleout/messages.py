"""What the coordinator and its ``--workers`` say to each other over their channel.

The coordinator sends a :class:`WorkerJob`, then commands: ``"go"`` once every
worker is ready, ``"stop"`` (graceful) or ``"kill"`` (at once), and a :class:`Retarget`
when the control API changes the load (each worker applies its share). A worker answers
:class:`Ready` once its users are up, an :class:`Interval` every second, and a
:class:`Finished` at the end, or a :class:`~loadgen.scaleout.channel.ChildFailed`; each of
its log records comes as a :class:`~loadgen.diagnostics.Logged`, logged again in the run.
Snapshots and parts travel in :mod:`loadgen.scaleout.wire`'s form, the one shards store too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

from ..config import RunConfig
from ..engine.engine import AdHocRequest
from .wire import Part

__all__ = ["Command", "Finished", "Interval", "Ready", "Retarget", "WorkerJob"]


@dataclass(frozen=True, slots=True)
class Retarget:
    """The whole run's new rate (open model) or user count (closed), from now to the planned end;
    a worker applies its share of it, as it runs its share of the stages."""

    action: Literal["rate", "users"]
    value: float
    #: When the coordinator made the change, in seconds into the run: each worker applies it as of
    #: then on its own clock (which started with the others'), not when the message comes.
    at_s: float | None = None


Command = Union[Literal["go", "stop", "kill"], Retarget]


@dataclass(frozen=True, slots=True)
class WorkerJob:
    """One worker's share of a run: the whole run's config and which part of it is this worker's."""

    config: RunConfig
    scenario_path: str | None
    adhoc: AdHocRequest | None
    part: tuple[int, int]  #: (index, count), as Engine(part=...) takes it


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker's users are up; it waits for "go"."""


@dataclass(frozen=True, slots=True)
class Interval:
    snap: dict[str, Any]  #: wire.snapshot_to_json


@dataclass(frozen=True, slots=True)
class Finished:
    part: Part  #: wire.part_to_json
