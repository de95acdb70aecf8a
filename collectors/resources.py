"""Resource usage of services (sets of processes), sampled with psutil.

Each sample re-resolves the service's processes (so restarted or newly forked
workers are followed) and sums them: CPU % of one core from the growth of
their CPU times since the previous sample (never psutil's blocking interval),
RSS, threads, cumulative disk bytes and network bytes (see
:mod:`loadgen.collectors.procnet` for what "per process" can honestly mean).
A process that vanishes or refuses access mid-sample is left out of that
sample; the collector never fails because of one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil
from loadgen.collectors.base import Sample, Source, SourceFailure
from loadgen.collectors.procnet import IS_LINUX, net_dev_totals, netns_id
from loadgen.collectors.spec import ServiceSpec

from loadgen.samples import ResourceSample

__all__ = ["ProcessReading", "ResourceSource", "own_lineage", "read_process", "resolve_processes"]

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)  # ZombieProcess is a NoSuchProcess; named for clarity


@dataclass(frozen=True, slots=True)
class ProcessReading:
    """One process at one moment."""

    pid: int
    create_time: float
    cpu_s: float  #: user + system CPU seconds since the process started
    rss_bytes: int
    threads: int
    read_bytes: int | None  #: None when the OS will not tell (another user's process, macOS)
    write_bytes: int | None
    netns: str | None


def own_lineage() -> frozenset[int]:
    """loadgen's pid and its ancestors: never matched by name: or cmd: (their command lines hold the pattern)."""
    pids = {os.getpid()}
    try:
        pids.update(p.pid for p in psutil.Process().parents())
    except psutil.Error:
        pass
    return frozenset(pids)


def resolve_processes(spec: ServiceSpec, exclude: frozenset[int] | None = None) -> list[psutil.Process]:
    """The processes ``spec`` names right now (descendants too with ``+children``), each once, by pid.

    name: and cmd: never match ``exclude`` (default: loadgen and its ancestors, see own_lineage).
    """
    if exclude is None:
        exclude = own_lineage()
    found: dict[int, psutil.Process] = {}
    if spec.kind in ("pid", "pidfile"):
        pid = int(spec.value) if spec.kind == "pid" else _read_pidfile(spec.value)
        if pid is not None:
            try:
                found[pid] = psutil.Process(pid)
            except psutil.Error:
                pass
    else:
        pattern = re.compile(spec.value) if spec.kind == "cmd" else None
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.pid in exclude:
                continue
            if pattern is None:
                if proc.info.get("name") == spec.value:
                    found[proc.pid] = proc
            else:
                cmdline = proc.info.get("cmdline")
                if cmdline and pattern.search(" ".join(cmdline)):
                    found[proc.pid] = proc
    if spec.children:
        for proc in list(found.values()):
            try:
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
            except psutil.Error:
                pass
    return [found[pid] for pid in sorted(found)]


def _read_pidfile(path: str) -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def read_process(proc: psutil.Process) -> ProcessReading | None:
    """The process's counters, or None if it has vanished, is a zombie, or refuses even basic access."""
    try:
        with proc.oneshot():
            cpu = proc.cpu_times()
            memory = proc.memory_info()
            threads = proc.num_threads()
            create_time = proc.create_time()
            read_bytes = write_bytes = None
            try:
                io = proc.io_counters()
                read_bytes, write_bytes = int(io.read_bytes), int(io.write_bytes)
            except (psutil.AccessDenied, AttributeError, NotImplementedError):
                pass
    except (*_GONE, psutil.AccessDenied):
        return None
    return ProcessReading(
        pid=proc.pid,
        create_time=create_time,
        cpu_s=float(cpu.user + cpu.system),
        rss_bytes=int(memory.rss),
        threads=int(threads),
        read_bytes=read_bytes,
        write_bytes=write_bytes,
        netns=netns_id(proc.pid),
    )


class ResourceSource(Source):
    """Samples one service; the first call only primes the CPU baseline and returns nothing."""

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        clock: Callable[[], float] = time.time,
        exclude: frozenset[int] | None = None,
    ) -> None:
        super().__init__(f"resource:{spec.label}")
        self.spec = spec
        self._clock = clock
        self._exclude = own_lineage() if exclude is None else exclude
        self._own_netns = netns_id("self")
        self._previous: dict[int, tuple[float, float]] = {}  # pid -> (create_time, cpu_s)
        self._previous_mono: float | None = None
        self._previous_wall: float | None = None

    def _sample(self) -> list[Sample]:
        mono, wall = time.monotonic(), self._clock()
        readings = [
            r for r in map(read_process, resolve_processes(self.spec, self._exclude)) if r is not None
        ]
        previous, previous_mono, previous_wall = self._previous, self._previous_mono, self._previous_wall
        self._previous = {r.pid: (r.create_time, r.cpu_s) for r in readings}
        self._previous_mono, self._previous_wall = mono, wall
        if not readings:
            self._previous_mono = self._previous_wall = None  # the next reading primes afresh
            raise SourceFailure(f"no running process matches {self.spec.display}.")
        if previous_mono is None or previous_wall is None:
            return []  # CPU % needs two readings
        elapsed = mono - previous_mono
        cpu_s = sum(self._cpu_growth(r, previous, previous_wall) for r in readings)
        sent, recv, scope = self._network(readings)
        return [
            ResourceSample(
                ts=wall,
                service=self.spec.label,
                pids=tuple(r.pid for r in readings),
                cpu_percent=100.0 * cpu_s / elapsed if elapsed > 0 else 0.0,
                rss_bytes=sum(r.rss_bytes for r in readings),
                threads=sum(r.threads for r in readings),
                disk_read_bytes=_sum_or_none(r.read_bytes for r in readings),
                disk_write_bytes=_sum_or_none(r.write_bytes for r in readings),
                net_sent_bytes=sent,
                net_recv_bytes=recv,
                net_scope=scope,
            )
        ]

    @staticmethod
    def _cpu_growth(reading: ProcessReading, previous: dict[int, tuple[float, float]], since: float) -> float:
        """CPU seconds the process used since the previous sample (0 when that cannot be known)."""
        before = previous.get(reading.pid)
        if before is not None and abs(before[0] - reading.create_time) < 0.5:
            return max(0.0, reading.cpu_s - before[1])
        if reading.create_time >= since - 0.05:  # born (or pid reused) during the period: all of it counts
            return reading.cpu_s
        return (
            0.0  # matched for the first time though older (a changed command line): its baseline starts now
        )

    def _network(self, readings: list[ProcessReading]) -> tuple[int | None, int | None, str]:
        """(sent, received, scope): the processes' own namespaces when all differ from ours, else host-wide."""
        namespaces: dict[str, int] = {}
        for reading in readings:
            if reading.netns is not None:
                namespaces.setdefault(reading.netns, reading.pid)
        separate = (
            IS_LINUX
            and self._own_netns is not None
            and all(r.netns is not None for r in readings)
            and self._own_netns not in namespaces
        )
        if separate:
            totals = [net_dev_totals(pid) for pid in namespaces.values()]
            if all(t is not None for t in totals):
                return (
                    sum(t[0] for t in totals if t is not None),
                    sum(t[1] for t in totals if t is not None),
                    "namespace",
                )
        try:
            counters = psutil.net_io_counters()
        except (OSError, RuntimeError):
            counters = None
        if counters is None:
            return None, None, "system"
        return int(counters.bytes_sent), int(counters.bytes_recv), "system"


def _sum_or_none(values: Iterable[int | None]) -> int | None:
    """The sum, or None when any process would not tell (a partial sum would mislead)."""
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total
