"""The job service on both databases: handlers run to an outcome, errors map to retries
or readable failures, cancels stop a handler, a stopping worker hands its job back, and
callers see only the jobs of the collections they may see.

Handlers here are test kinds registered on a JobService the test builds: ragd ships no
job kind for testing.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ragd.auth import ANONYMOUS, Principal
from ragd.config import load_settings
from ragd.domain import Collection, JobInfo
from ragd.embedding import LocalEmbedder
from ragd.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ParseError,
    TransientError,
    Unavailable,
)
from ragd.services.collections import CollectionService
from ragd.services.jobs import JobCancelled, JobContext, JobService
from ragd.store import open_store
from ragd.store.base import Store

KIND = "test.steps"
OWNER = "host:1:test"


class Steps:
    """A handler that works through ``params["steps"]`` steps, reporting each, and
    runs ``on_step`` (a test's hook) before each one."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.cleaned_up = False
        self.on_step: Any = None

    def __call__(self, job: JobInfo, ctx: JobContext) -> dict[str, Any]:
        steps = int(job.params["steps"])
        try:
            for i in range(job.progress_done, steps):
                if self.on_step is not None:
                    self.on_step(i, job)
                self.seen.append(i)
                ctx.progress(i + 1, steps)
        except JobCancelled:
            self.cleaned_up = True
            raise
        return {"steps": steps, "resumed_from": job.progress_done}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(load_settings(database_url=database_url))
    opened.migrate()
    yield opened
    opened.close()


def make_service(
    store: Store, embedder: LocalEmbedder, tmp_path: Path, **settings: Any
) -> JobService:
    configured = load_settings(database_url="sqlite://", data_dir=tmp_path, **settings)
    return JobService(
        store,
        CollectionService(store, embedder),
        configured,
        configured.limits(),
        progress_interval_s=0,
    )


@pytest.fixture
def steps() -> Steps:
    return Steps()


@pytest.fixture
def jobs(store: Store, embedder: LocalEmbedder, tmp_path: Path, steps: Steps) -> JobService:
    service = make_service(store, embedder, tmp_path, worker_retry_base_s=0)
    service.register(KIND, steps)
    return service


@pytest.fixture
def collection(jobs: JobService) -> Collection:
    return jobs.collections.create("jobs-col")


def submit(jobs: JobService, collection: Collection | None, **params: Any) -> JobInfo:
    return jobs.submit(
        kind=KIND,
        collection_id=None if collection is None else collection.id,
        params={"steps": 3, **params},
        actor="local",
    )


def finished_runs(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "ragd_jobs_finished_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


def test_job_runs_to_success(jobs: JobService, steps: Steps, collection: Collection) -> None:
    before = finished_runs(KIND, "succeeded")
    job = submit(jobs, collection, steps=4)
    assert jobs.run_once(OWNER) is True
    done = jobs.get(job.id)
    assert done.status == "succeeded" and done.result == {"steps": 4, "resumed_from": 0}
    assert (done.progress_done, done.progress_total) == (4, 4)
    assert steps.seen == [0, 1, 2, 3]
    assert done.rate(dt.datetime.now(dt.UTC)) is not None and done.eta(done.updated_at) is None
    assert finished_runs(KIND, "succeeded") == before + 1
    assert jobs.run_once(OWNER) is False


def test_collection_given_by_name_is_stored_by_id(jobs: JobService, collection: Collection) -> None:
    job = jobs.submit(kind=KIND, collection_id=collection.name, params={"steps": 1}, actor="p")
    assert job.collection_id == collection.id


def test_submission_is_checked(jobs: JobService, collection: Collection) -> None:
    with pytest.raises(InvalidInput, match="unknown job kind"):
        jobs.submit(kind="nope", collection_id=None, params={}, actor="local")
    with pytest.raises(NotFound):
        jobs.submit(kind=KIND, collection_id="col_missing", params={}, actor="local")
    with pytest.raises(InvalidInput, match="JSON"):
        jobs.submit(kind=KIND, collection_id=None, params={"x": object()}, actor="local")
    with pytest.raises(InvalidInput, match="bytes"):
        jobs.submit(kind=KIND, collection_id=None, params={"x": "y" * 70_000}, actor="local")
    with pytest.raises(InvalidInput, match="dedup_key"):
        jobs.submit(kind=KIND, collection_id=None, params={}, actor="local", dedup_key="")
    with pytest.raises(InvalidInput, match="time zone"):
        jobs.submit(
            kind=KIND, collection_id=None, params={}, actor="l", run_at=dt.datetime(2030, 1, 1)
        )
    with pytest.raises(ValueError):
        jobs.register(KIND, lambda job, ctx: {})
    with pytest.raises(ValueError):
        jobs.register("Bad Kind", lambda job, ctx: {})


def test_dedup_key_coalesces_through_the_service(jobs: JobService, collection: Collection) -> None:
    first = jobs.submit(
        kind=KIND, collection_id=collection.id, params={"steps": 1}, actor="a", dedup_key="k"
    )
    second = jobs.submit(
        kind=KIND, collection_id=collection.id, params={"steps": 9}, actor="b", dedup_key="k"
    )
    assert second.id == first.id and second.params == {"steps": 1}


def test_scheduled_job_waits_for_its_time(jobs: JobService, collection: Collection) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    job = jobs.submit(
        kind=KIND, collection_id=collection.id, params={"steps": 1}, actor="a", run_at=later
    )
    assert job.next_attempt_at == later
    assert jobs.run_once(OWNER) is False


def test_transient_errors_retry_then_fail(
    jobs: JobService, steps: Steps, collection: Collection
) -> None:
    def flaky(i: int, job: JobInfo) -> None:
        raise TransientError(f"upstream timed out on attempt {job.attempts}")

    steps.on_step = flaky
    job = submit(jobs, collection)
    for attempt in (1, 2):
        assert jobs.run_once(OWNER)
        retried = jobs.get(job.id)
        assert retried.status == "queued" and retried.attempts == attempt
        assert retried.error == f"upstream timed out on attempt {attempt}"
    assert jobs.run_once(OWNER)
    failed = jobs.get(job.id)
    assert failed.status == "failed" and failed.attempts == 3
    assert failed.error == "upstream timed out on attempt 3"
    assert jobs.run_once(OWNER) is False


def test_retry_waits_with_backoff(
    store: Store, embedder: LocalEmbedder, tmp_path: Path, collection: Collection
) -> None:
    slow = make_service(store, embedder, tmp_path, worker_retry_base_s=100)

    def unavailable(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
        raise Unavailable("the embedder is down")

    slow.register("test.down", unavailable)
    job = slow.submit(kind="test.down", collection_id=collection.id, params={}, actor="a")
    before = dt.datetime.now(dt.UTC)
    assert slow.run_once(OWNER)
    queued = slow.get(job.id)
    assert queued.status == "queued" and queued.next_attempt_at is not None
    # Full jitter: between half and one and a half times the base.
    assert queued.next_attempt_at >= before + dt.timedelta(seconds=50)
    assert slow.run_once(OWNER) is False


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ParseError("the archive is corrupt"), "the archive is corrupt"),
        (ZeroDivisionError("division by zero"), "internal error while running the job"),
    ],
)
def test_other_errors_fail_at_once_without_a_traceback(
    jobs: JobService, steps: Steps, collection: Collection, error: Exception, message: str
) -> None:
    def broken(i: int, job: JobInfo) -> None:
        raise error

    steps.on_step = broken
    job = submit(jobs, collection)
    assert jobs.run_once(OWNER)
    failed = jobs.get(job.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and failed.error.startswith(message)
    assert "Traceback" not in failed.error and "division by zero" not in failed.error


def test_result_that_is_not_json_fails_the_job(jobs: JobService, collection: Collection) -> None:
    jobs.register("test.badresult", lambda job, ctx: {"when": object()})
    job = jobs.submit(kind="test.badresult", collection_id=collection.id, params={}, actor="a")
    assert jobs.run_once(OWNER)
    assert jobs.get(job.id).status == "failed"


def test_cancel_queued_job(jobs: JobService, steps: Steps, collection: Collection) -> None:
    job = submit(jobs, collection)
    assert jobs.cancel(job.id).status == "cancelled"
    assert jobs.run_once(OWNER) is False
    assert steps.seen == []


def test_cancel_running_job_stops_its_handler(
    jobs: JobService, steps: Steps, collection: Collection
) -> None:
    before = finished_runs(KIND, "cancelled")

    def cancel_midway(i: int, job: JobInfo) -> None:
        if i == 2:
            jobs.cancel(job.id)  # as another client would, while the handler works

    steps.on_step = cancel_midway
    job = submit(jobs, collection, steps=10)
    assert jobs.run_once(OWNER)
    cancelled = jobs.get(job.id)
    assert cancelled.status == "cancelled" and cancelled.progress_done == 3
    assert steps.seen == [0, 1, 2] and steps.cleaned_up
    assert finished_runs(KIND, "cancelled") == before + 1


def test_stopping_worker_hands_the_job_back(
    jobs: JobService, steps: Steps, collection: Collection
) -> None:
    stop = threading.Event()

    def stop_midway(i: int, job: JobInfo) -> None:
        if i == 1:
            stop.set()  # SIGTERM arrives while the handler works

    steps.on_step = stop_midway
    job = submit(jobs, collection, steps=5)
    assert jobs.run_once(OWNER, stop=stop)
    released = jobs.get(job.id)
    assert released.status == "queued" and released.attempts == 0
    assert released.lease_owner is None and released.progress_done == 1
    steps.on_step = None
    assert jobs.run_once("host:2:next")
    resumed = jobs.get(job.id)
    assert resumed.status == "succeeded" and resumed.result == {"steps": 5, "resumed_from": 1}
    assert steps.seen == [0, 1, 1, 2, 3, 4]


def test_runner_thread_runs_jobs_until_stopped(
    jobs: JobService, steps: Steps, collection: Collection
) -> None:
    finished = threading.Event()

    def last_step(i: int, job: JobInfo) -> None:
        if i == 2:
            finished.set()

    steps.on_step = last_step
    job = submit(jobs, collection)
    stop = threading.Event()
    runner = threading.Thread(target=jobs.run, args=(stop,))
    runner.start()
    try:
        assert finished.wait(60)
    finally:
        stop.set()
        runner.join(60)
    assert not runner.is_alive()
    assert jobs.get(job.id).status == "succeeded"


def test_callers_see_jobs_of_their_collections_only(
    jobs: JobService, collection: Collection
) -> None:
    other = jobs.collections.create("other-col")
    mine, theirs, unscoped = submit(jobs, collection), submit(jobs, other), submit(jobs, None)
    limited = Principal("k1", "p1", "write", frozenset({collection.id}))
    reader = Principal("k2", "p2", "read")
    limited_admin = Principal("k3", "p3", "admin", frozenset({collection.id}))

    assert jobs.get(mine.id, caller=limited).id == mine.id
    for job_id in (theirs.id, unscoped.id):
        with pytest.raises(NotFound):
            jobs.get(job_id, caller=limited)
    with pytest.raises(NotFound):
        jobs.get(unscoped.id, caller=reader)
    with pytest.raises(NotFound):
        jobs.get(unscoped.id, caller=limited_admin)
    assert jobs.get(unscoped.id, caller=ANONYMOUS).id == unscoped.id

    def ids(caller: Principal, **filters: Any) -> set[str]:
        return {job.id for job in jobs.list(caller=caller, **filters).items}

    assert ids(ANONYMOUS) == {mine.id, theirs.id, unscoped.id}
    assert ids(reader) == {mine.id, theirs.id}
    assert ids(limited) == {mine.id}
    assert ids(limited, collection_id=collection.id) == {mine.id}
    assert ids(ANONYMOUS, collection_id=other.id) == {theirs.id}
    with pytest.raises(NotFound):
        jobs.list(caller=limited, collection_id=other.id)
    with pytest.raises(InvalidInput):
        jobs.list(caller=ANONYMOUS, limit=0)

    with pytest.raises(Forbidden):
        jobs.cancel(mine.id, caller=reader)
    with pytest.raises(NotFound):
        jobs.cancel(theirs.id, caller=limited)
    assert jobs.cancel(mine.id, caller=limited).status == "cancelled"


def test_rate_and_eta_from_progress_and_timestamps(jobs: JobService) -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    job = JobInfo(
        id="job_x",
        kind=KIND,
        status="running",
        collection_id=None,
        params={},
        result=None,
        progress_done=30,
        progress_total=90,
        error=None,
        attempts=1,
        max_attempts=3,
        lease_owner="w",
        lease_expires_at=None,
        next_attempt_at=None,
        cancel_requested=False,
        dedup_key=None,
        created_by="local",
        created_at=start,
        started_at=start,
        finished_at=None,
        updated_at=start,
    )
    now = start + dt.timedelta(seconds=60)
    assert job.rate(now) == 0.5 and job.eta(now) == 120.0
    assert job.rate(start) is None  # no time has passed
