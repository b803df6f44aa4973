"""The job runner on its own: transitions, progress throttling, limits."""

from __future__ import annotations

import asyncio

import pytest

from firmware.api.jobs import (
    MAX_FINISHED_JOBS,
    PROGRESS_MIN_INTERVAL_S,
    Job,
    JobError,
    JobProgress,
    JobRunner,
    JobState,
)
from firmware.api.protocol import JsonValue

from .conftest import FakeClock


def _runner(clock: FakeClock, **kw: int) -> tuple[JobRunner, list[tuple[str, JsonValue]]]:
    events: list[tuple[str, JsonValue]] = []
    return JobRunner(lambda t, p: events.append((t, p)), clock=clock, **kw), events


async def test_progress_is_throttled_but_the_end_is_not() -> None:
    clock = FakeClock()
    runner, events = _runner(clock)

    async def chatty(progress: JobProgress) -> JsonValue:
        for i in range(100):
            if i % 10 == 0:
                clock.advance(PROGRESS_MIN_INTERVAL_S)
            progress.update(i / 100, f"step {i}")
        progress.update(1.0, "done")
        return i

    job_id = runner.start("test.chatty", chatty)
    job = await runner.wait(job_id)
    assert job.state is JobState.SUCCEEDED and job.result == 99
    topics = [t for t, _ in events]
    assert topics[0] == "jobs.started" and topics[-1] == "jobs.finished"
    assert topics.count("jobs.progress") == 11  # one per interval, plus the final 100 %


async def test_limits_and_history() -> None:
    clock = FakeClock()
    runner, _ = _runner(clock, max_running=2)
    gate = asyncio.Event()

    async def wait(progress: JobProgress) -> JsonValue:
        await gate.wait()
        return None

    runner.start("a", wait)
    runner.start("b", wait)
    with pytest.raises(JobError) as info:
        runner.start("c", wait)
    assert info.value.reason == "busy"
    gate.set()
    await runner.stop()
    for _ in range(MAX_FINISHED_JOBS + 10):
        await runner.wait(runner.start("quick", wait))
    assert len(runner.list()) <= MAX_FINISHED_JOBS + 1
    with pytest.raises(JobError):
        runner.get("job-1")  # trimmed


def test_job_transitions_are_a_table() -> None:
    job = Job("job-1", "k", "t", JobState.RUNNING, 0.0)
    job.transition(JobState.CANCELLED)
    with pytest.raises(RuntimeError, match="illegal transition"):
        job.transition(JobState.SUCCEEDED)


async def test_progress_rejects_nonsense() -> None:
    runner, _ = _runner(FakeClock())

    async def bad(progress: JobProgress) -> JsonValue:
        progress.update(float("nan"))
        return None

    job = await runner.wait(runner.start("bad", bad))
    assert job.state is JobState.FAILED and job.error == "internal error: ValueError"


async def test_cancel_before_the_first_step() -> None:
    runner, events = _runner(FakeClock())

    async def never(progress: JobProgress) -> JsonValue:
        raise AssertionError("must not run")

    job_id = runner.start("never", never)
    job = await runner.cancel(job_id)  # the task has not been scheduled yet
    assert job.state is JobState.CANCELLED
    assert [t for t, _ in events] == ["jobs.started", "jobs.finished"]
    assert runner.list() == [job] and not runner._tasks
