"""The demo target's content-generation job queue.

Accepting a request and doing the work later is what makes a real platform's
latency lie: the HTTP answer is fast while a backlog grows behind it. The queue
exposes that backlog (length and age of the oldest queued job) as Prometheus
gauges so load tests can watch it build up.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from loadgen.demo.config import CONTENT_TYPES, DemoConfig

__all__ = ["FAIL_MARKER", "Job", "JobQueue"]

#: A prompt starting with this makes its job fail, so failure paths can be load-tested.
FAIL_MARKER = "!fail"

#: Finished jobs beyond this many are forgotten (oldest first) to bound memory in long runs.
DEFAULT_MAX_RETAINED = 100_000

_PROCESSING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


class JobFailed(Exception):
    """Raised inside a worker to mark a job failed (the demo's simulated failure)."""


@dataclass(slots=True)
class Job:
    """One content-generation request and its progress (times are time.monotonic())."""

    job_id: str
    type: str
    prompt: str
    created_at: float
    status: str = "queued"  # queued -> processing -> done | failed
    result: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def to_json(self, now: float) -> dict[str, object]:
        """The public JSON view; still-running phases are measured up to ``now``."""
        started = self.started_at
        queued_ms = ((started if started is not None else now) - self.created_at) * 1000.0
        if started is None:
            processing_ms = 0.0
        else:
            end = self.finished_at if self.finished_at is not None else now
            processing_ms = (end - started) * 1000.0
        return {
            "job_id": self.job_id,
            "type": self.type,
            "status": self.status,
            "result": self.result,
            "queued_ms": round(queued_ms, 3),
            "processing_ms": round(processing_ms, 3),
        }


class _JobMetrics:
    """The queue's Prometheus series, registered on the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "demo_jobs_published_total", "Content jobs accepted onto the queue.", registry=registry
        )
        self.processed = Counter(
            "demo_jobs_processed_total",
            "Content jobs finished successfully.",
            ["type"],
            registry=registry,
        )
        self.failed = Counter("demo_jobs_failed_total", "Content jobs that failed.", registry=registry)
        self.processing = Histogram(
            "demo_job_processing_seconds",
            "Time a worker spent on a content job.",
            ["type"],
            buckets=_PROCESSING_BUCKETS,
            registry=registry,
        )
        self.queue_length = Gauge(
            "demo_queue_length", "Content jobs waiting for a worker.", registry=registry
        )
        self.backlog_age = Gauge(
            "demo_queue_backlog_age_seconds",
            "Age of the oldest content job still waiting for a worker (0 when empty).",
            registry=registry,
        )
        for content_type in CONTENT_TYPES:  # export zeros so dashboards see every type at once
            self.processed.labels(content_type)
            self.processing.labels(content_type)


class JobQueue:
    """An asyncio FIFO of jobs drained by ``config.workers`` background tasks."""

    def __init__(
        self,
        config: DemoConfig,
        registry: CollectorRegistry,
        max_retained: int = DEFAULT_MAX_RETAINED,
    ) -> None:
        self._config = config
        self._max_retained = max_retained
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        # Mirrors the queue's order so the oldest waiting job can be read for the backlog age.
        self._waiting: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._metrics = _JobMetrics(registry)
        self._metrics.queue_length.set_function(self.__len__)
        self._metrics.backlog_age.set_function(self.backlog_age_s)

    def __len__(self) -> int:
        """Jobs waiting for a worker (not counting the ones being processed)."""
        return len(self._waiting)

    def backlog_age_s(self) -> float:
        """Seconds the oldest waiting job has been queued, 0.0 when none waits."""
        if not self._waiting:
            return 0.0
        return time.monotonic() - self._waiting[0].created_at

    def get(self, job_id: str) -> Job | None:
        """The job with ``job_id``, or None if unknown or already forgotten."""
        return self._jobs.get(job_id)

    def submit(self, content_type: str, prompt: str) -> Job:
        """Queue a new job; ``content_type`` must be one of CONTENT_TYPES."""
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"unknown content type {content_type!r}")
        job = Job(
            job_id=secrets.token_hex(8),
            type=content_type,
            prompt=prompt,
            created_at=time.monotonic(),
        )
        self._jobs[job.job_id] = job
        self._forget_old()
        self._waiting.append(job)
        self._queue.put_nowait(job)
        self._metrics.published.inc()
        return job

    def start(self) -> None:
        """Start the worker tasks on the running loop."""
        if self._workers:
            return
        self._workers = [
            asyncio.create_task(self._work(), name=f"demo-job-worker-{i}")
            for i in range(self._config.workers)
        ]

    async def stop(self) -> None:
        """Cancel the workers and wait for them; queued jobs are abandoned."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._waiting.popleft()  # FIFO: the job just taken is the oldest waiting one
            try:
                await self._process(job)
            finally:
                self._queue.task_done()

    async def _process(self, job: Job) -> None:
        job.status = "processing"
        job.started_at = time.monotonic()
        try:
            await asyncio.sleep(self._config.processing_time(job.type))
            if job.prompt.startswith(FAIL_MARKER):
                raise JobFailed(job.prompt)
            job.result = f"[{job.type}] generated content for: {job.prompt[:200]}"
            job.status = "done"
            self._metrics.processed.labels(job.type).inc()
        except asyncio.CancelledError:
            raise
        except Exception:  # any failure in a job is the job's, never the worker's
            job.status = "failed"
            self._metrics.failed.inc()
        finally:
            job.finished_at = time.monotonic()
            self._metrics.processing.labels(job.type).observe(job.finished_at - job.started_at)

    def _forget_old(self) -> None:
        """Drop the oldest finished jobs once over the retention limit (stops at a live one)."""
        while len(self._jobs) > self._max_retained:
            oldest = next(iter(self._jobs.values()))
            if oldest.status not in ("done", "failed"):
                return
            del self._jobs[oldest.job_id]
