"""Long jobs (hardware tests, backups, updates) with progress events and cancellation.

A service starts a job from one of its API methods and returns the job id at once::

    async def run_linetest(progress: JobProgress) -> JsonValue:
        for step, port in enumerate(ports):
            progress.update(step / len(ports), f"testing port {port}")
            ...
        return {"ports": results}

    job_id = server.jobs.start("hwtest.line", run_linetest, title="Line test")

Clients follow it on the ``jobs`` topic (``jobs.started``, ``jobs.progress``,
``jobs.finished``) and may call ``jobs.cancel``.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from firmware.api.protocol import JsonValue

log = logging.getLogger(__name__)

MAX_RUNNING_JOBS: Final = 8  # the appliance has a handful of long tasks, never hundreds
MAX_FINISHED_JOBS: Final = 64  # finished jobs kept for jobs.get / jobs.list
# A job may report progress in a tight loop; subscribers get at most one progress event per
# interval (the latest), so a chatty job cannot flood the event stream.
PROGRESS_MIN_INTERVAL_S: Final = 0.1
MAX_MESSAGE_CHARS: Final = 200


class JobState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The only transitions a job makes; anything else is a bug in this module.
_TRANSITIONS: Final = {
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset[JobState](),
    JobState.FAILED: frozenset[JobState](),
    JobState.CANCELLED: frozenset[JobState](),
}


class JobError(Exception):
    """Refused job operation (unknown id, too many jobs, already finished)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "not_found", "busy", "finished"


class JobFailed(Exception):
    """Raise from a job to end it as failed with a message meant for the user."""


@dataclass
class Job:
    id: str
    kind: str
    title: str
    state: JobState
    started: float
    progress: float | None = None  # 0..1, None when unknown
    message: str = ""
    result: JsonValue = None
    error: str | None = None
    finished: float | None = None

    def transition(self, new: JobState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"job {self.id}: illegal transition {self.state} -> {new}")
        self.state = new

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "job": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": str(self.state),
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
        }


class JobProgress:
    """Handed to a running job: report how far it got."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self._runner = runner
        self._job = job
        self._last_sent = -math.inf

    @property
    def job_id(self) -> str:
        return self._job.id

    def update(self, fraction: float | None, message: str = "") -> None:
        if fraction is not None:
            if not math.isfinite(fraction):
                raise ValueError("progress must be a finite fraction")
            fraction = min(max(fraction, 0.0), 1.0)
        self._job.progress = fraction
        self._job.message = message[:MAX_MESSAGE_CHARS]
        now = self._runner.clock()
        if now - self._last_sent >= PROGRESS_MIN_INTERVAL_S or fraction == 1.0:
            self._last_sent = now
            self._runner.publish("jobs.progress", self._job.to_json())


JobFunc = Callable[[JobProgress], Awaitable[JsonValue]]


class JobRunner:
    def __init__(
        self,
        publish: Callable[[str, JsonValue], object],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_running: int = MAX_RUNNING_JOBS,
    ) -> None:
        self.publish = publish
        self.clock = clock
        self.max_running = max_running
        self._ids = itertools.count(1)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, kind: str, func: JobFunc, *, title: str = "") -> str:
        if len(self._tasks) >= self.max_running:
            raise JobError("busy", f"{len(self._tasks)} jobs already running")
        job = Job(f"job-{next(self._ids)}", kind, title or kind, JobState.RUNNING, self.clock())
        self._jobs[job.id] = job
        self._trim()
        task = asyncio.create_task(self._run(job, func), name=job.id)
        task.add_done_callback(lambda _: self._reap(job))
        self._tasks[job.id] = task
        self.publish("jobs.started", job.to_json())
        return job.id

    def _reap(self, job: Job) -> None:
        # A task cancelled before its first step never runs _run's cleanup: do it here,
        # or the job would count as running forever and subscribers never see its end.
        if self._tasks.pop(job.id, None) is None:
            return
        job.transition(JobState.CANCELLED)
        job.message = "cancelled"
        job.finished = self.clock()
        self.publish("jobs.finished", job.to_json())

    async def _run(self, job: Job, func: JobFunc) -> None:
        try:
            result = await func(JobProgress(self, job))
        except asyncio.CancelledError:
            job.transition(JobState.CANCELLED)
            job.message = "cancelled"
        except JobFailed as exc:
            job.transition(JobState.FAILED)
            job.error = str(exc)
        except Exception as exc:
            log.exception("job %s (%s) crashed", job.id, job.kind)
            job.transition(JobState.FAILED)
            job.error = f"internal error: {type(exc).__name__}"
        else:
            job.transition(JobState.SUCCEEDED)
            job.result = result
            job.progress = 1.0
        finally:
            job.finished = self.clock()
            self._tasks.pop(job.id, None)
        try:
            self.publish("jobs.finished", job.to_json())
        except Exception:
            # A result that is not JSON must not hide the job's end from subscribers.
            log.exception("job %s: result is not publishable", job.id)
            job.result = None
            self.publish("jobs.finished", job.to_json())

    def _trim(self) -> None:
        finished = [j for j in self._jobs.values() if j.state is not JobState.RUNNING]
        for job in finished[: max(0, len(finished) - MAX_FINISHED_JOBS)]:
            del self._jobs[job.id]

    def get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobError("not_found", f"no job {job_id!r}") from None

    def list(self) -> list[Job]:
        return list(self._jobs.values())

    async def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        task = self._tasks.get(job_id)
        if task is None:
            raise JobError("finished", f"job {job_id} already {job.state}")
        task.cancel()
        await asyncio.wait({task})
        return job

    async def wait(self, job_id: str) -> Job:
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait({task})
        return self.get(job_id)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
