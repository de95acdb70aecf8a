"""The recorder: cheap per-request records in, per-second interval snapshots out.

On the hot path a finished request appends one fixed-width row of seven
integers to its endpoint's ``array('q')`` buffer: that is the whole cost of
measuring it. Once a second, off the hot path, :meth:`Recorder.snapshot`
swaps every buffer for an empty one and folds the rows into HDR histograms
with numpy (see :mod:`loadgen.engine.histogram`). Memory stays bounded: a second's
rows, one histogram set per interval handed to sinks, and the run totals.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from hdrh.histogram import HdrHistogram

from . import histogram as hdr

__all__ = [
    "Endpoint",
    "EndpointInterval",
    "IntervalSnapshot",
    "Recorder",
    "Totals",
    "ERROR_CODES",
    "ROW",
    "DEFAULT_MAX_NAMES",
    "OTHER_NAME",
]

#: The request row, seven int64 columns appended to :attr:`Endpoint.buf` once per request
#: (a flat ``array("q")``: one ``extend`` of a tuple is the cheapest record there is) and
#: read back per interval as a numpy matrix by these column numbers.
COL_START, COL_SENT, COL_FIRST_BYTE, COL_DONE, COL_CODE, COL_BYTES_OUT, COL_BYTES_IN = range(7)
#: Start is the intended start in the open model, else when the request was made (ns);
#: sent and first byte are when the request went out and the response began; code is an
#: HTTP status, a status + EXPECTED_OFFSET, or an error code below 1 (ERROR_CODES).
ROW = 7
#: Codes below 1 in the code column are transport errors; 1..999 are HTTP statuses.
#: ``cutoff``: still in flight when the run ended (graceful stop over, or a second signal);
#: ``too_large``: the response passed a size limit (head, body or decoded body);
#: ``invalid_request``: the request could not be put on the wire as asked (CR/LF or
#: non-Latin-1 in a header, a method or URL with spaces); it was never sent.
#: ``tls``: the TLS handshake failed (a certificate not trusted, a client certificate refused);
#: ``proxy``: the proxy refused or failed the tunnel (CONNECT answered other than 2xx);
#: ``redirect_loop``: a redirect led back to a URL already visited by this call;
#: ``too_many_redirects``: more redirects than the call's limit (``max_redirects``).
ERROR_CODES = {
    0: "other", -1: "connect", -2: "timeout", -3: "reset", -4: "protocol",
    -5: "cutoff", -6: "too_large", -7: "invalid_request", -8: "tls", -9: "proxy",
    -10: "redirect_loop", -11: "too_many_redirects",
}
ERR_OTHER, ERR_CONNECT, ERR_TIMEOUT, ERR_RESET, ERR_PROTOCOL = 0, -1, -2, -3, -4
ERR_CUTOFF, ERR_TOO_LARGE, ERR_INVALID_REQUEST = -5, -6, -7
ERR_TLS, ERR_PROXY, ERR_REDIRECT_LOOP, ERR_TOO_MANY_REDIRECTS = -8, -9, -10, -11
#: Default of ``--max-names``: distinct endpoints (method and name) a run keeps apart.
DEFAULT_MAX_NAMES = 200
#: The request name every endpoint past the cap is folded into (its method kept).
OTHER_NAME = "__other__"
# Folded names are remembered (as hashes) up to this many, for the warning's count.
_FOLD_TRACK = 100_000

#: Added to a status the request declared expected (``expect=``): recorded, not an error.
EXPECTED_OFFSET = 1000


class Endpoint:
    """One request name and method: its hot-path buffer and its check tallies."""

    __slots__ = ("method", "name", "key", "buf", "check_errors", "checks", "late_errors")

    def __init__(self, method: str, name: str) -> None:
        self.method = method
        self.name = name
        self.key = f"{method} {name}"
        self.buf = array("q")
        self.check_errors = 0  # failed checks on otherwise good responses, this interval
        self.checks: dict[str, list[int]] = {}  # check name -> [passes, fails], whole run
        # Errors found after the request's row was recorded (a body too large to decode when
        # the scenario reads it), by kind, this interval; each is one more error, not a request.
        self.late_errors: dict[str, int] = {}

    def record_check(self, name: str, ok: bool, *, count_error: bool) -> None:
        tally = self.checks.get(name)
        if tally is None:
            tally = self.checks[name] = [0, 0]
        tally[0 if ok else 1] += 1
        if count_error:
            self.check_errors += 1

    def record_late_error(self, kind: str) -> None:
        """Count an error of ``kind`` on a request already recorded (see ``late_errors``)."""
        self.late_errors[kind] = self.late_errors.get(kind, 0) + 1


@dataclass
class EndpointInterval:
    """What one endpoint did in one interval (or, merged, over a window or the run)."""

    method: str
    name: str
    requests: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    status_codes: dict[int, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    latency: HdrHistogram = field(default_factory=hdr.new_histogram)
    # Service time and time to first byte are kept for the run as a whole only:
    # three histograms per endpoint every second would cost the loop milliseconds.
    service: HdrHistogram | None = None
    ttfb: HdrHistogram | None = None

    def merge(self, other: EndpointInterval) -> None:
        """Add another interval of the same endpoint; exact, histograms included."""
        self.requests += other.requests
        self.errors += other.errors
        for k, v in other.errors_by_kind.items():
            self.errors_by_kind[k] = self.errors_by_kind.get(k, 0) + v
        for k, v in other.status_codes.items():
            self.status_codes[k] = self.status_codes.get(k, 0) + v
        self.bytes_sent += other.bytes_sent
        self.bytes_received += other.bytes_received
        hdr.merge(self.latency, other.latency)
        if other.service is not None:
            if self.service is None:
                self.service = hdr.new_histogram()
            hdr.merge(self.service, other.service)
        if other.ttfb is not None:
            if self.ttfb is None:
                self.ttfb = hdr.new_histogram()
            hdr.merge(self.ttfb, other.ttfb)


@dataclass
class IntervalSnapshot:
    """One interval of a run, the unit every sink (display, store, metrics) consumes."""

    index: int
    start_s: float  # seconds since the run started
    end_s: float
    endpoints: dict[str, EndpointInterval]
    overall: EndpointInterval
    iterations: int = 0
    dropped_iterations: int = 0
    lag: HdrHistogram = field(default_factory=hdr.new_histogram)
    cpu_percent: float = 0.0  # the generator's own CPU, % of one core
    users: int = 0
    inflight: int = 0
    target_rate: float | None = None
    saturated: bool = False  # the generator, not the target, limited this interval
    #: How late the engine's stall monitor fired (µs): the event loop was blocked that long.
    stall: HdrHistogram = field(default_factory=hdr.new_histogram)
    stalled: bool = False  # the loop stalled long enough to distort this interval's numbers
    stall_cause: str | None = None  # the likely cause, in words, when stalled
    #: Iterations that ended in an exception (on_start included), by task name.
    failed_iterations: dict[str, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class Totals:
    """The whole run so far: a merge of every interval."""

    endpoints: dict[str, EndpointInterval] = field(default_factory=dict)
    overall: EndpointInterval = field(default_factory=lambda: EndpointInterval("ALL", "total"))
    iterations: int = 0
    dropped_iterations: int = 0
    lag: HdrHistogram = field(default_factory=hdr.new_histogram)
    cpu_s: float = 0.0
    saturated_intervals: int = 0
    intervals: int = 0
    stall: HdrHistogram = field(default_factory=hdr.new_histogram)
    stalled_intervals: int = 0
    failed_iterations: dict[str, int] = field(default_factory=dict)

    def add(self, snap: IntervalSnapshot) -> None:
        for key, ep in snap.endpoints.items():
            tot = self.endpoints.get(key)
            if tot is None:
                tot = self.endpoints[key] = EndpointInterval(ep.method, ep.name)
            tot.merge(ep)
        # Service and ttfb were recorded into the endpoint totals directly; see overall_timings().
        self.overall.merge(snap.overall)
        self.iterations += snap.iterations
        self.dropped_iterations += snap.dropped_iterations
        hdr.merge(self.lag, snap.lag)
        hdr.merge(self.stall, snap.stall)
        for task, n in snap.failed_iterations.items():
            self.failed_iterations[task] = self.failed_iterations.get(task, 0) + n
        self.intervals += 1

    def overall_timings(self) -> tuple[HdrHistogram, HdrHistogram]:
        """Service time and time-to-first-byte histograms over all endpoints."""
        service, ttfb = hdr.new_histogram(), hdr.new_histogram()
        for ep in self.endpoints.values():
            if ep.service is not None:
                hdr.merge(service, ep.service)
            if ep.ttfb is not None:
                hdr.merge(ttfb, ep.ttfb)
        return service, ttfb


class Recorder:
    """Collects request rows and scheduler lag; turns them into interval snapshots.

    Endpoint names are bounded: the first ``max_names`` distinct (method, name)
    pairs get a row each; every later name is folded into the row named
    :data:`OTHER_NAME` of its method, counted exactly like any other, and
    :meth:`warnings` says how many names were folded. A unique path per request
    (an id in the URL without ``name=``) therefore costs one row, not one per id.
    """

    def __init__(self, max_names: int = DEFAULT_MAX_NAMES) -> None:
        if max_names < 1:
            raise ValueError("max_names must be at least 1")
        self.max_names = max_names
        self._by_method: dict[str, dict[str, Endpoint]] = {}
        self._named = 0  # endpoints with a row of their own (the __other__ rows not counted)
        self._folded: set[int] = set()  # hashes of the names folded into __other__, bounded
        self.folded_elsewhere = 0  # names other processes (workers, shards) folded
        self.lag_buf = array("q")  # scheduler lag of each open-model arrival, ns
        self.stall_buf = array("q")  # lateness of each stall-monitor tick, ns (engine)
        self.failed: dict[str, int] = {}  # task name -> failed iterations this interval
        self.iterations = 0  # iterations started this interval
        self.dropped = 0  # arrivals dropped this interval (no free slot under --max-inflight)
        self._index = 0
        self._t0_ns = time.perf_counter_ns()
        self._last_ns = self._t0_ns
        self._last_cpu = time.process_time()
        self.totals = Totals()

    def start(self, t0_ns: int) -> None:
        """Mark the run's start (interval times are offsets from it)."""
        self._t0_ns = self._last_ns = t0_ns
        self._last_cpu = time.process_time()

    def endpoint(self, method: str, name: str) -> Endpoint:
        """The endpoint for a method and request name (created on first use)."""
        names = self._by_method.get(method)
        if names is None:
            names = self._by_method[method] = {}
        ep = names.get(name)
        if ep is None:
            if self._named >= self.max_names and name != OTHER_NAME:
                return self._fold(names, method, name)
            ep = names[name] = Endpoint(method, name)
            if name != OTHER_NAME:
                self._named += 1
        return ep

    def _fold(self, names: dict[str, Endpoint], method: str, name: str) -> Endpoint:
        # Only names past the cap get here: the common path above is two dict lookups.
        if len(self._folded) < _FOLD_TRACK:
            self._folded.add(hash((method, name)))
        ep = names.get(OTHER_NAME)
        if ep is None:
            ep = names[OTHER_NAME] = Endpoint(method, OTHER_NAME)
        return ep

    def folded_names(self) -> int:
        """How many distinct names were folded into ``__other__`` (here and in other parts)."""
        return len(self._folded) + self.folded_elsewhere

    def warnings(self) -> list[str]:
        """What the recorder has to say about the run (read by the summary)."""
        n = self.folded_names()
        if not n:
            return []
        more = " or more" if len(self._folded) >= _FOLD_TRACK else ""
        return [
            f"{n:,}{more} distinct request names past the first {self.max_names} were folded into one "
            f"row named {OTHER_NAME!r} (--max-names): name requests whose URL holds an id, "
            'e.g. name="/api/items/[id]"'
        ]

    def fold_snapshot(self, snap: IntervalSnapshot) -> IntervalSnapshot:
        """Apply this recorder's name cap to a snapshot merged from other processes
        (each capped on its own, so together they may hold more names); in place."""
        eps: dict[str, EndpointInterval] = {}
        for ei in snap.endpoints.values():
            ep = self.endpoint(ei.method, ei.name)
            into = eps.get(ep.key)
            if into is None:
                if ep.name != ei.name:
                    ei.name = ep.name
                eps[ep.key] = ei
            else:
                into.merge(ei)
        snap.endpoints = eps
        return snap

    def fail_iteration(self, task: str) -> None:
        """Count an iteration of ``task`` that ended in an exception (off the hot path)."""
        self.failed[task] = self.failed.get(task, 0) + 1

    def endpoints(self) -> Iterable[Endpoint]:
        for names in self._by_method.values():
            yield from names.values()

    def snapshot(self, now_ns: int | None = None) -> IntervalSnapshot:
        """Close the current interval: fold its rows into histograms and counters."""
        if now_ns is None:
            now_ns = time.perf_counter_ns()
        cpu = time.process_time()
        wall = (now_ns - self._last_ns) / 1e9
        overall = EndpointInterval("ALL", "total")
        eps: dict[str, EndpointInterval] = {}
        for ep in self.endpoints():
            buf, ep.buf = ep.buf, array("q")
            check_errors, ep.check_errors = ep.check_errors, 0
            late = ep.late_errors
            if late:
                ep.late_errors = {}
            if not buf and not check_errors and not late:
                continue
            tot = self.totals.endpoints.get(ep.key)
            if tot is None:
                tot = self.totals.endpoints[ep.key] = EndpointInterval(
                    ep.method, ep.name, service=hdr.new_histogram(), ttfb=hdr.new_histogram()
                )
            ei = _fold(ep, buf, check_errors, tot)
            for kind, n in late.items():
                ei.errors += n
                ei.errors_by_kind[kind] = ei.errors_by_kind.get(kind, 0) + n
            eps[ep.key] = ei
            overall.merge(ei)
        lag = hdr.new_histogram()
        lag_buf, self.lag_buf = self.lag_buf, array("q")
        if lag_buf:
            hdr.record_ns(lag, lag_buf)
        stall = hdr.new_histogram()
        stall_buf, self.stall_buf = self.stall_buf, array("q")
        if stall_buf:
            hdr.record_ns(stall, stall_buf)
        failed, self.failed = self.failed, {}
        snap = IntervalSnapshot(
            index=self._index,
            start_s=(self._last_ns - self._t0_ns) / 1e9,
            end_s=(now_ns - self._t0_ns) / 1e9,
            endpoints=eps,
            overall=overall,
            iterations=self.iterations,
            dropped_iterations=self.dropped,
            lag=lag,
            stall=stall,
            failed_iterations=failed,
            cpu_percent=100.0 * (cpu - self._last_cpu) / wall if wall > 0 else 0.0,
        )
        self.iterations = 0
        self.dropped = 0
        self._index += 1
        self._last_ns = now_ns
        self.totals.cpu_s += cpu - self._last_cpu
        self._last_cpu = cpu
        self.totals.add(snap)
        return snap


def _fold(ep: Endpoint, buf: array, check_errors: int, tot: EndpointInterval) -> EndpointInterval:
    """One endpoint's rows of an interval; service and ttfb go straight into the run totals."""
    ei = EndpointInterval(ep.method, ep.name)
    if buf:
        rows = np.frombuffer(buf, dtype=np.int64).reshape(-1, ROW)
        codes = rows[:, COL_CODE]
        responded = codes > 0
        # Latency covers every request that went out, whatever became of it: a
        # stalled target's waits (timeouts, cut-offs, stalled connects) must show.
        # Only a request that could not be built was never sent, and has none.
        timed = codes != ERR_INVALID_REQUEST
        done = rows[:, COL_DONE]
        hdr.record_ns(ei.latency, (done - rows[:, COL_START])[timed])
        assert tot.service is not None and tot.ttfb is not None
        hdr.record_ns(tot.service, (done - rows[:, COL_SENT])[timed])
        hdr.record_ns(tot.ttfb, (rows[:, COL_FIRST_BYTE] - rows[:, COL_SENT])[responded])
        values, counts = np.unique(codes, return_counts=True)
        errors = 0
        for code, n in zip(values.tolist(), counts.tolist()):
            if code > EXPECTED_OFFSET:
                code -= EXPECTED_OFFSET
                ei.status_codes[code] = ei.status_codes.get(code, 0) + n
            elif code > 0:
                ei.status_codes[code] = ei.status_codes.get(code, 0) + n
                if code >= 400:
                    kind = "http_5xx" if code >= 500 else "http_4xx"
                    ei.errors_by_kind[kind] = ei.errors_by_kind.get(kind, 0) + n
                    errors += n
            else:
                ei.errors_by_kind[ERROR_CODES.get(code, "other")] = n
                errors += n
        ei.requests = len(rows)
        ei.errors = errors
        ei.bytes_sent = int(rows[:, COL_BYTES_OUT].sum())
        ei.bytes_received = int(rows[:, COL_BYTES_IN].sum())
    if check_errors:
        ei.errors += check_errors
        ei.errors_by_kind["check"] = check_errors
    return ei
