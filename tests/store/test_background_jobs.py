"""Background jobs in the store: submit, claim, progress, finish, fail, cancel, release.

A lease of ``lease_s=-1`` is one that has already expired: how a crashed worker's lease
looks to the next claimer, without waiting for a clock.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from ragd.domain import NewJob
from ragd.errors import InvalidInput, NotFound
from ragd.store.base import LeaseLost
from tests.store.conftest import AnyStore, open_test_store

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory

KIND = "test.kind"
EXPIRED = -1.0


def new_job(
    collection_id: str | None = None,
    *,
    kind: str = KIND,
    dedup_key: str | None = None,
    run_at: dt.datetime | None = None,
    max_attempts: int = 3,
    params: dict[str, object] | None = None,
) -> NewJob:
    return NewJob(
        kind=kind,
        collection_id=collection_id,
        params=params if params is not None else {"n": 1},
        created_by="local",
        max_attempts=max_attempts,
        dedup_key=dedup_key,
        run_at=run_at,
    )


def test_submit_claim_progress_finish(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    submitted = store.submit_job(new_job(col.id, params={"model": "m", "nested": {"a": [1]}}))
    assert submitted.status == "queued" and submitted.attempts == 0
    assert submitted.params == {"model": "m", "nested": {"a": [1]}}
    assert submitted.collection_id == col.id and submitted.created_by == "local"
    assert submitted.started_at is None and submitted.finished_at is None
    assert store.get_job(submitted.id) == submitted

    claimed = store.claim_background_job(owner="w1", kinds=[KIND], lease_s=60)
    assert claimed is not None and claimed.id == submitted.id
    assert claimed.status == "running" and claimed.lease_owner == "w1" and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.lease_expires_at is not None
    assert store.claim_background_job(owner="w2", kinds=[KIND], lease_s=60) is None

    assert store.update_job_progress(claimed.id, owner="w1", done=3, total=10, lease_s=60) is False
    assert (
        store.update_job_progress(claimed.id, owner="w1", done=5, total=None, lease_s=60) is False
    )
    progressed = store.get_job(claimed.id)
    assert (progressed.progress_done, progressed.progress_total) == (5, 10)

    finished = store.finish_job(claimed.id, owner="w1", result={"chunks": 42})
    assert finished.status == "succeeded" and finished.result == {"chunks": 42}
    assert finished.finished_at is not None and finished.lease_owner is None
    assert finished.error is None
    assert store.claim_background_job(owner="w3", kinds=[KIND], lease_s=60) is None


def test_claim_only_registered_kinds_and_due_jobs(store: AnyStore) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    scheduled = store.submit_job(new_job(run_at=later))
    other = store.submit_job(new_job(kind="other.kind"))
    assert store.claim_background_job(owner="w", kinds=[KIND], lease_s=60) is None
    assert store.claim_background_job(owner="w", kinds=[], lease_s=60) is None
    claimed = store.claim_background_job(owner="w", kinds=[KIND, "other.kind"], lease_s=60)
    assert claimed is not None and claimed.id == other.id
    assert store.get_job(scheduled.id).status == "queued"


def test_claim_oldest_due_first(store: AnyStore) -> None:
    ids = [store.submit_job(new_job()).id for _ in range(3)]
    order = []
    for _ in ids:
        claimed = store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
        assert claimed is not None
        order.append(claimed.id)
    assert order == ids


def test_unknown_job_is_not_found(store: AnyStore) -> None:
    with pytest.raises(NotFound):
        store.get_job("job_missing")
    with pytest.raises(NotFound):
        store.cancel_job("job_missing")


def test_dedup_key_coalesces_queued_jobs(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    first = store.submit_job(new_job(col.id, dedup_key="sync:a"))
    again = store.submit_job(new_job(col.id, dedup_key="sync:a", params={"n": 2}))
    assert again.id == first.id and again.params == {"n": 1}
    other = store.submit_job(new_job(col.id, dedup_key="sync:b"))
    assert other.id != first.id
    # Once it runs, the key is free again: a change during a sync needs a new sync.
    claimed = store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    assert claimed is not None and claimed.id == first.id
    after = store.submit_job(new_job(col.id, dedup_key="sync:a"))
    assert after.id != first.id and after.status == "queued"
    assert store.submit_job(new_job(col.id, dedup_key="sync:a")).id == after.id


def test_racing_submissions_of_one_key_make_one_job(db_url: str, store: AnyStore) -> None:
    stores = [open_test_store(db_url) for _ in range(4)]
    ids: list[str] = []
    start = threading.Barrier(len(stores))

    def submit(s: AnyStore) -> None:
        start.wait()
        for _ in range(5):
            ids.append(s.submit_job(new_job(dedup_key="burst")).id)

    threads = [threading.Thread(target=submit, args=(s,)) for s in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    finally:
        for s in stores:
            s.close()
    assert len(ids) == 20 and len(set(ids)) == 1
    page = store.list_jobs(limit=100)
    assert [job.id for job in page.items] == [ids[0]]


def _claim_all(store: AnyStore, owner: str, out: list[str], start: threading.Barrier) -> None:
    start.wait()
    while (job := store.claim_background_job(owner=owner, kinds=[KIND], lease_s=600)) is not None:
        out.append(job.id)


def test_concurrent_claimers_never_get_the_same_job(db_url: str, store: AnyStore) -> None:
    submitted = {store.submit_job(new_job()).id for _ in range(40)}
    stores = [store, open_test_store(db_url), open_test_store(db_url)]
    claimed: list[list[str]] = [[] for _ in stores]
    start = threading.Barrier(len(stores))
    threads = [
        threading.Thread(target=_claim_all, args=(s, f"owner-{i}", claimed[i], start))
        for i, s in enumerate(stores)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    finally:
        for s in stores[1:]:
            s.close()
    every = [job_id for ids in claimed for job_id in ids]
    assert Counter(every).most_common(1)[0][1] == 1
    assert set(every) == submitted
    for i, ids in enumerate(claimed):
        for job_id in ids:
            job = store.get_job(job_id)
            assert job.lease_owner == f"owner-{i}" and job.attempts == 1


def test_expired_lease_is_reclaimed_and_the_old_owner_locked_out(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    crashed = store.claim_background_job(owner="crashed", kinds=[KIND], lease_s=EXPIRED)
    assert crashed is not None
    rescued = store.claim_background_job(owner="rescuer", kinds=[KIND], lease_s=60)
    assert rescued is not None and rescued.id == job.id
    assert (crashed.attempts, rescued.attempts) == (1, 2)
    assert rescued.started_at == crashed.started_at  # the job started once, resumed later
    with pytest.raises(LeaseLost):
        store.update_job_progress(job.id, owner="crashed", done=1, total=2, lease_s=60)
    with pytest.raises(LeaseLost):
        store.finish_job(job.id, owner="crashed", result={})
    store.fail_background_job(job.id, owner="crashed", error="late", retry_at=None)
    assert store.get_job(job.id).status == "running"
    assert store.finish_job(job.id, owner="rescuer", result={"ok": True}).status == "succeeded"


def test_progress_extends_the_lease(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    store.claim_background_job(owner="w1", kinds=[KIND], lease_s=EXPIRED)
    store.update_job_progress(job.id, owner="w1", done=1, total=None, lease_s=60)
    assert store.claim_background_job(owner="w2", kinds=[KIND], lease_s=60) is None


def test_attempts_are_bounded_when_workers_keep_dying(store: AnyStore) -> None:
    job = store.submit_job(new_job(max_attempts=2))
    for owner in ("first", "second"):
        assert store.claim_background_job(owner=owner, kinds=[KIND], lease_s=EXPIRED) is not None
    assert store.claim_background_job(owner="third", kinds=[KIND], lease_s=60) is None
    failed = store.get_job(job.id)
    assert failed.status == "failed" and failed.attempts == 2
    assert failed.error is not None and "stopped 2 times" in failed.error
    assert failed.finished_at is not None and failed.lease_owner is None


def test_fail_with_retry_requeues_until_due(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    store.fail_background_job(job.id, owner="w", error="timeout " * 1000, retry_at=later)
    queued = store.get_job(job.id)
    assert queued.status == "queued" and queued.lease_owner is None
    assert queued.error is not None and len(queued.error) == 2000
    assert queued.next_attempt_at == later
    assert store.claim_background_job(owner="w", kinds=[KIND], lease_s=60) is None
    now = dt.datetime.now(dt.UTC)
    store.fail_background_job(job.id, owner="w", error="ignored: not leased", retry_at=now)
    assert store.get_job(job.id).next_attempt_at == later


def test_fail_without_retry_ends_failed(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    store.fail_background_job(job.id, owner="w", error="bad input", retry_at=None)
    failed = store.get_job(job.id)
    assert failed.status == "failed" and failed.error == "bad input"
    assert failed.finished_at is not None


def test_cancel_queued_job_at_once(store: AnyStore) -> None:
    job = store.submit_job(new_job(dedup_key="k"))
    cancelled = store.cancel_job(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert store.claim_background_job(owner="w", kinds=[KIND], lease_s=60) is None
    assert store.submit_job(new_job(dedup_key="k")).id != job.id  # the key is free again
    assert store.cancel_job(job.id) == cancelled  # cancelling again changes nothing


def test_cancel_running_job_by_request(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    asked = store.cancel_job(job.id)
    assert asked.status == "running" and asked.cancel_requested
    assert store.update_job_progress(job.id, owner="w", done=1, total=2, lease_s=60) is True
    ended = store.finish_cancelled_job(job.id, owner="w")
    assert ended.status == "cancelled" and ended.finished_at is not None
    with pytest.raises(LeaseLost):
        store.finish_cancelled_job(job.id, owner="w")


def test_cancel_asked_of_a_dead_worker_ends_cancelled(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    store.claim_background_job(owner="crashed", kinds=[KIND], lease_s=EXPIRED)
    store.cancel_job(job.id)
    assert store.claim_background_job(owner="w", kinds=[KIND], lease_s=60) is None
    assert store.get_job(job.id).status == "cancelled"


def test_cancel_finished_job_changes_nothing(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    done = store.finish_job(job.id, owner="w", result={"a": 1})
    assert store.cancel_job(job.id) == done


def test_release_hands_back_and_refunds(store: AnyStore) -> None:
    kept, asked = store.submit_job(new_job()), store.submit_job(new_job())
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    store.cancel_job(asked.id)
    assert store.release_background_jobs(owner="other") == 0
    assert store.release_background_jobs(owner="w") == 2
    requeued = store.get_job(kept.id)
    assert requeued.status == "queued" and requeued.attempts == 0
    assert requeued.lease_owner is None
    assert store.get_job(asked.id).status == "cancelled"
    again = store.claim_background_job(owner="w2", kinds=[KIND], lease_s=60)
    assert again is not None and again.id == kept.id and again.attempts == 1


def test_orphans_of_dead_processes_are_requeued(store: AnyStore) -> None:
    job = store.submit_job(new_job())
    store.claim_background_job(owner="host-a:4242:abc", kinds=[KIND], lease_s=600)
    alive = store.release_orphaned_background_jobs(host="host-a", is_alive=lambda pid: True)
    assert alive == 0
    assert store.release_orphaned_background_jobs(host="host-b", is_alive=lambda pid: False) == 0
    assert store.release_orphaned_background_jobs(host="host-a", is_alive=lambda pid: False) == 1
    orphan = store.get_job(job.id)
    assert orphan.status == "queued" and orphan.attempts == 1  # the crash stays charged


def test_list_jobs_filters_and_pages(store: AnyStore, factory: StoreFactory) -> None:
    a, b = factory.collection(), factory.collection()
    in_a = [store.submit_job(new_job(a.id)).id for _ in range(3)]
    in_b = store.submit_job(new_job(b.id, kind="other.kind")).id
    unscoped = store.submit_job(new_job(None)).id
    everything = store.list_jobs(limit=100).items
    assert [job.id for job in everything] == [unscoped, in_b, *reversed(in_a)]
    scoped = store.list_jobs(include_unscoped=False, limit=100).items
    assert {job.id for job in scoped} == {in_b, *in_a}
    only_a = store.list_jobs(collection_ids=[a.id], include_unscoped=False, limit=100).items
    assert {job.id for job in only_a} == set(in_a)
    a_and_none = store.list_jobs(collection_ids=[a.id], limit=100).items
    assert {job.id for job in a_and_none} == {unscoped, *in_a}
    assert store.list_jobs(collection_ids=[], include_unscoped=False, limit=100).items == []
    assert [job.id for job in store.list_jobs(kind="other.kind", limit=100).items] == [in_b]
    store.cancel_job(in_a[0])
    assert [j.id for j in store.list_jobs(status="cancelled", limit=100).items] == [in_a[0]]

    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_jobs(limit=2, cursor=cursor)
        seen.extend(job.id for job in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [job.id for job in everything]
    with pytest.raises(InvalidInput):
        store.list_jobs(limit=2, cursor="not-a-cursor")


def test_deleting_a_collection_cancels_its_jobs(store: AnyStore, factory: StoreFactory) -> None:
    col, other = factory.collection(), factory.collection()
    running = store.submit_job(new_job(col.id))
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    queued = store.submit_job(new_job(col.id))
    elsewhere = store.submit_job(new_job(other.id))
    store.delete_collection(col.id)
    assert store.get_job(queued.id).status == "cancelled"
    asked = store.get_job(running.id)
    assert asked.status == "running" and asked.cancel_requested
    assert store.get_job(elsewhere.id).status == "queued"


def test_active_job_counts(store: AnyStore) -> None:
    store.submit_job(new_job())
    store.submit_job(new_job())
    store.submit_job(new_job(kind="other.kind"))
    store.claim_background_job(owner="w", kinds=[KIND], lease_s=60)
    done = store.submit_job(new_job(kind="done.kind"))
    store.cancel_job(done.id)
    assert store.active_job_counts() == {
        (KIND, "queued"): 1,
        (KIND, "running"): 1,
        ("other.kind", "queued"): 1,
    }
