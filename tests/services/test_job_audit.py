"""Background jobs in the audit log, on both databases: every change of a job's state
leaves its ``f"{kind}.{step}"`` event, in order, naming the job and its collection, with
counts and error classes but never a message or a parameter; and the chain verifies.

Handlers are test kinds registered on a JobService the test builds, run by the real
runner (``run_once``) against a real store that signs a checkpoint every 3 events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragd.audit import AuditContext, AuditEvent, acting_as, canonical_json, result_counts
from ragd.config import load_settings
from ragd.domain import Collection, JobInfo, NewJob
from ragd.embedding import LocalEmbedder
from ragd.errors import ParseError, TransientError
from ragd.services.audit_verify import verify_chain
from ragd.services.collections import CollectionService
from ragd.services.jobs import JobContext, JobService
from ragd.signing import load_or_create_signer
from ragd.store import open_store
from ragd.store.base import Store

KIND = "test.audited"
OWNER = "host:1:test"
SECRET = "the quarterly numbers are bad"  # a message or parameter no event may carry


class Handler:
    """Works through ``params["steps"]`` steps; ``fail_with`` raises before the first
    step on the attempts it lists; ``on_step`` is a test's hook."""

    def __init__(self) -> None:
        self.fail_with: dict[int, Exception] = {}
        self.on_step: Any = None

    def __call__(self, job: JobInfo, ctx: JobContext) -> dict[str, Any]:
        if job.attempts in self.fail_with:
            raise self.fail_with[job.attempts]
        steps = int(job.params["steps"])
        for i in range(job.progress_done, steps):
            if self.on_step is not None:
                self.on_step(i, job)
            ctx.progress(i + 1, steps)
        return {"steps": steps, "ratio": 0.5, "note": SECRET, "complete": True}


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    settings = load_settings(database_url=database_url, data_dir=tmp_path, audit_checkpoint_every=3)
    opened = open_store(settings)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def jobs(store: Store, embedder: LocalEmbedder, tmp_path: Path, handler: Handler) -> JobService:
    settings = load_settings(database_url="sqlite://", data_dir=tmp_path, worker_retry_base_s=0)
    service = JobService(
        store,
        CollectionService(store, embedder),
        settings,
        settings.limits(),
        progress_interval_s=0,
    )
    service.register(KIND, handler)
    return service


@pytest.fixture
def collection(jobs: JobService) -> Collection:
    return jobs.collections.create("audited")


def submit(jobs: JobService, collection: Collection | None, steps: int = 3) -> JobInfo:
    return jobs.submit(
        kind=KIND,
        collection_id=None if collection is None else collection.id,
        params={"steps": steps, "title": SECRET},
        actor="local",
    )


def job_events(store: Store) -> list[AuditEvent]:
    found = store.read_audit(lambda reader: list(reader.events()))
    return [e for e in found if e.action.startswith(KIND + ".")]


def steps_of(store: Store) -> list[str]:
    return [e.action.removeprefix(KIND + ".") for e in job_events(store)]


def assert_verifies(store: Store, tmp_path: Path) -> None:
    signer = load_or_create_signer(None, tmp_path)
    verdict = store.read_audit(lambda reader: verify_chain(reader, signer))
    assert verdict.ok, verdict
    assert verdict.checkpoints >= 1


def assert_no_secret(store: Store) -> None:
    for event in store.read_audit(lambda reader: list(reader.events())):
        assert SECRET not in canonical_json(event.detail).decode()


def test_a_job_that_succeeds(
    store: Store, jobs: JobService, collection: Collection, tmp_path: Path
) -> None:
    with acting_as(AuditContext(actor="abcd1234", request_id="req-1", client="10.0.0.7")):
        job = submit(jobs, collection)
    assert jobs.run_once(OWNER)

    submitted, started, finished = job_events(store)
    assert [submitted.action, started.action, finished.action] == [
        "test.audited.submit",
        "test.audited.start",
        "test.audited.finish",
    ]
    assert {e.target for e in (submitted, started, finished)} == {(job.id, collection.id)}
    assert (submitted.actor, submitted.request_id, submitted.client) == (
        "abcd1234",
        "req-1",
        "10.0.0.7",
    )
    assert (started.actor, finished.actor) == ("local", "local")  # the runner
    assert submitted.detail == {"max_attempts": job.max_attempts}
    assert started.detail == {"attempt": 1}
    # Counts of the result only: no float, no text.
    assert finished.detail == {"attempt": 1, "result": {"complete": True, "steps": 3}}
    assert_no_secret(store)
    assert_verifies(store, tmp_path)


def test_a_retried_then_failed_job_records_error_classes_not_messages(
    store: Store, jobs: JobService, handler: Handler, collection: Collection, tmp_path: Path
) -> None:
    handler.fail_with = {1: TransientError(SECRET), 2: ParseError(SECRET)}
    job = submit(jobs, collection)
    assert jobs.run_once(OWNER) and jobs.run_once(OWNER)
    assert jobs.get(job.id).status == "failed"

    assert steps_of(store) == ["submit", "start", "requeue", "start", "fail"]
    requeue, fail = job_events(store)[2], job_events(store)[4]
    assert requeue.detail == {"attempt": 1, "error_type": "TransientError", "reason": "retry"}
    assert fail.detail == {"attempt": 2, "error_type": "ParseError"}
    assert_no_secret(store)
    assert_verifies(store, tmp_path)


def test_an_unexpected_error_is_recorded_by_its_class(
    store: Store, jobs: JobService, handler: Handler, collection: Collection
) -> None:
    handler.fail_with = {1: KeyError(SECRET)}
    submit(jobs, collection)
    assert jobs.run_once(OWNER)
    assert job_events(store)[-1].detail == {"attempt": 1, "error_type": "KeyError"}
    assert_no_secret(store)


def test_cancels_queued_and_running(
    store: Store, jobs: JobService, handler: Handler, collection: Collection, tmp_path: Path
) -> None:
    queued = submit(jobs, collection)
    jobs.cancel(queued.id)
    jobs.cancel(queued.id)  # already cancelled: nothing changes, nothing recorded
    assert steps_of(store) == ["submit", "cancel"]
    assert job_events(store)[-1].detail == {}

    def cancel_midway(i: int, job: JobInfo) -> None:
        if i == 1:
            with acting_as(AuditContext(actor="abcd1234")):
                jobs.cancel(job.id)
                jobs.cancel(job.id)  # asked already: one request recorded

    handler.on_step = cancel_midway
    running = submit(jobs, collection, steps=5)
    assert jobs.run_once(OWNER)
    assert jobs.get(running.id).status == "cancelled"
    later = [e for e in job_events(store) if e.target[0] == running.id]
    assert [e.action.rsplit(".", 1)[1] for e in later] == [
        "submit",
        "start",
        "cancel_request",
        "cancel",
    ]
    assert (later[2].actor, later[3].actor) == ("abcd1234", "local")
    assert later[2].detail == {"attempt": 1}
    assert later[3].detail == {"attempt": 1}
    assert_verifies(store, tmp_path)


def test_a_stopping_worker_requeues_with_the_attempt_refunded(
    store: Store, jobs: JobService, handler: Handler, collection: Collection, tmp_path: Path
) -> None:
    stop = threading.Event()
    handler.on_step = lambda i, job: stop.set() if i == 1 else None
    submit(jobs, collection, steps=4)
    assert jobs.run_once(OWNER, stop=stop)
    handler.on_step = None
    assert jobs.run_once("host:2:next")
    assert steps_of(store) == ["submit", "start", "requeue", "start", "finish"]
    requeue, restart = job_events(store)[2:4]
    assert requeue.detail == {"attempt": 1, "reason": "worker_stopped", "refunded": True}
    assert restart.detail == {"attempt": 1}  # the refunded attempt is charged again
    assert_verifies(store, tmp_path)


def test_dead_and_abandoned_workers(store: Store, collection: Collection, tmp_path: Path) -> None:
    """The store's own recoveries: a dead process's job requeued, a job whose worker
    kept vanishing failed, a cancel asked of a vanished worker's job ended."""

    def new(max_attempts: int = 3) -> JobInfo:
        return store.submit_job(
            NewJob(KIND, collection.id, {"steps": 1}, "local", max_attempts=max_attempts)
        )

    orphan = new()
    store.claim_background_job(owner="host-a:4242:abc", kinds=[KIND], lease_s=600)
    assert store.release_orphaned_background_jobs(host="host-a", is_alive=lambda pid: False) == 1
    store.cancel_job(orphan.id)  # queued again: cancelled at once

    gone = new(max_attempts=1)
    store.claim_background_job(owner="vanished", kinds=[KIND], lease_s=-1)
    asked = new()
    store.claim_background_job(owner="vanished", kinds=[KIND], lease_s=-1)
    store.cancel_job(asked.id)
    assert store.claim_background_job(owner="w", kinds=[KIND], lease_s=60) is None

    by_job: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for event in job_events(store):
        by_job.setdefault(event.target[0], []).append(
            (event.action.rsplit(".", 1)[1], event.detail)
        )
    assert by_job[orphan.id] == [
        ("submit", {"max_attempts": 3}),
        ("start", {"attempt": 1}),
        ("requeue", {"attempt": 1, "reason": "worker_died", "refunded": False}),
        ("cancel", {}),
    ]
    assert by_job[gone.id][-1] == ("fail", {"attempt": 1, "reason": "abandoned"})
    assert by_job[asked.id][-2:] == [
        ("cancel_request", {"attempt": 1}),
        ("cancel", {"attempt": 1, "reason": "abandoned"}),
    ]
    assert_verifies(store, tmp_path)


def test_deleting_a_collection_cancels_its_jobs_in_the_same_transaction(
    store: Store, jobs: JobService, collection: Collection, tmp_path: Path
) -> None:
    job = submit(jobs, collection)
    store.delete_collection(collection.id)
    found = store.read_audit(lambda reader: list(reader.events()))
    assert [e.action for e in found[-2:]] == ["collection.delete", "test.audited.cancel"]
    assert found[-1].target == (job.id, collection.id)
    assert found[-1].detail == {"reason": "collection_deleted"}
    assert found[-1].at == found[-2].at  # one append, one transaction
    assert_verifies(store, tmp_path)


def test_a_job_of_no_collection_names_the_job_only(store: Store, jobs: JobService) -> None:
    job = submit(jobs, None)
    assert jobs.run_once(OWNER)
    assert {e.target for e in job_events(store)} == {(job.id,)}


def test_a_deduplicated_submission_records_nothing(store: Store, jobs: JobService) -> None:
    for _ in range(2):
        jobs.submit(
            kind=KIND, collection_id=None, params={"steps": 1}, actor="local", dedup_key="k"
        )
    assert steps_of(store) == ["submit"]


def test_an_idle_poll_writes_nothing(store: Store, jobs: JobService) -> None:
    head = store.read_audit(lambda reader: reader.head())
    assert jobs.run_once(OWNER) is False
    assert store.read_audit(lambda reader: reader.head()) == head


@pytest.mark.parametrize("kind", ["ingestion", "collection.copy", "key", "audit.x"])
def test_kinds_may_not_take_ragds_own_action_names(jobs: JobService, kind: str) -> None:
    with pytest.raises(ValueError, match="audit events"):
        jobs.register(kind, Handler())


def test_result_counts_keep_integers_and_booleans_only() -> None:
    many = {f"n{i:02d}": i for i in range(40)}
    assert result_counts({"a": 1, "b": 2.5, "c": "x", "d": [1], "e": None, "f": False}) == {
        "a": 1,
        "f": False,
    }
    assert list(result_counts(many)) == [f"n{i:02d}" for i in range(16)]
    assert result_counts({"x" * 65: 1}) == {}
