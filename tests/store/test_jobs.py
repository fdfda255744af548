"""The document row as a durable job: claiming, leases, completion, failure, release."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ragd.domain import JobCompletion
from ragd.store.base import LeaseLost
from tests.store.conftest import AnyStore, open_test_store

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory

DIM = 8


def row(store: AnyStore, document_id: str) -> dict[str, Any]:
    """The raw documents row, including the job columns records do not carry."""
    with store.engine.connect() as conn:
        found = (
            conn.execute(text("SELECT * FROM documents WHERE id = :id"), {"id": document_id})
            .mappings()
            .one()
        )
    return dict(found)


def parse_time(value: Any) -> dt.datetime:
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


def requeue(store: AnyStore, document_id: str) -> None:
    """Send a ready document back to the queue, as a reprocess would."""
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE documents SET status = 'queued' WHERE id = :id"), {"id": document_id}
        )


def basis(i: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[i] = 1.0
    return vector


# -- claiming -------------------------------------------------------------------------


def test_claim_respects_limit_and_order(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    docs = [factory.add(col.id, f"job {i}") for i in range(5)]
    first = store.claim_jobs(owner="w1", limit=2, lease_s=60)
    assert [j.document_id for j in first] == [d.id for d in docs[:2]]
    job = first[0]
    assert job.lease_owner == "w1" and job.attempts == 1
    assert job.content == b"job 0" and job.collection_id == col.id
    assert job.embedding_model == col.embedding_model and job.source_type == "text"
    stored = row(store, job.document_id)
    assert stored["status"] == "processing" and stored["lease_owner"] == "w1"
    assert parse_time(stored["lease_expires_at"]) > dt.datetime.now(dt.UTC)
    rest = store.claim_jobs(owner="w2", limit=10, lease_s=60)
    assert [j.document_id for j in rest] == [d.id for d in docs[2:]]
    assert store.claim_jobs(owner="w3", limit=10, lease_s=60) == []
    assert store.get_document(docs[0].id).status == "processing"


def test_claim_skips_ready_and_failed(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    factory.ready_doc(col.id, ["done"])
    failed = factory.add(col.id, "broken")
    job = factory.claim_one(failed.id)
    store.fail_job(document_id=failed.id, owner=job.lease_owner, error="bad", retry_at=None)
    assert store.claim_jobs(owner="w", limit=10, lease_s=60) == []


def _claim_loop(store: AnyStore, owner: str, out: list[str], start: threading.Barrier) -> None:
    start.wait()
    while True:
        jobs = store.claim_jobs(owner=owner, limit=3, lease_s=600)
        if not jobs:
            return
        out.extend(job.document_id for job in jobs)


@pytest.mark.parametrize("separate_stores", [True, False])
def test_concurrent_claims_never_overlap(
    db_url: str, store: AnyStore, factory: StoreFactory, separate_stores: bool
) -> None:
    col = factory.collection()
    doc_ids = {factory.add(col.id, f"concurrent {i}").id for i in range(60)}
    stores = [store, open_test_store(db_url) if separate_stores else store]
    claimed: list[list[str]] = [[], []]
    start = threading.Barrier(2)
    threads = [
        threading.Thread(target=_claim_loop, args=(s, f"owner-{i}", claimed[i], start))
        for i, s in enumerate(stores)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    finally:
        if separate_stores:
            stores[1].close()
    every = claimed[0] + claimed[1]
    assert Counter(every).most_common(1)[0][1] == 1
    assert set(every) == doc_ids
    for i, ids in enumerate(claimed):
        for document_id in ids:
            assert row(store, document_id)["lease_owner"] == f"owner-{i}"
            assert row(store, document_id)["attempts"] == 1


def test_expired_lease_is_reclaimed(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "slow worker")
    # A lease long enough that a loaded machine does not outlive it by accident.
    [first] = store.claim_jobs(owner="crashed", limit=5, lease_s=2.0)
    assert store.claim_jobs(owner="rescuer", limit=5, lease_s=60) == []
    time.sleep(2.2)
    [second] = store.claim_jobs(owner="rescuer", limit=5, lease_s=60)
    assert second.document_id == doc.id == first.document_id
    assert (first.attempts, second.attempts) == (1, 2)
    assert row(store, doc.id)["lease_owner"] == "rescuer"
    assert store.claim_jobs(owner="third", limit=5, lease_s=60) == []


def test_extend_leases_keeps_the_job(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "long job")
    store.claim_jobs(owner="w1", limit=1, lease_s=0.05)
    store.extend_leases(owner="w1", document_ids=[doc.id], lease_s=60)
    store.extend_leases(owner="w1", document_ids=[], lease_s=60)
    time.sleep(0.15)
    assert store.claim_jobs(owner="w2", limit=1, lease_s=60) == []


def test_extend_leases_by_another_owner_does_nothing(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "long job")
    store.claim_jobs(owner="w1", limit=1, lease_s=0.05)
    store.extend_leases(owner="intruder", document_ids=[doc.id], lease_s=60)
    time.sleep(0.15)
    [job] = store.claim_jobs(owner="w2", limit=1, lease_s=60)
    assert job.document_id == doc.id


# -- completion -----------------------------------------------------------------------


def test_complete_job_marks_ready(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "body", content_hash=None)
    job = factory.claim_one(doc.id)
    completion = factory.completion(job, ["alpha part", "beta part"], title="Parsed title")
    done = store.complete_job(completion)
    assert done.status == "ready" and done.error is None
    assert done.chunk_count == 2 and done.ready_at is not None
    assert done.title == "Parsed title" and done.content_hash == completion.content_hash
    stored = row(store, doc.id)
    assert stored["lease_owner"] is None and stored["lease_expires_at"] is None
    assert [c.text for c in store.list_chunks(doc.id)] == ["alpha part", "beta part"]
    with pytest.raises(LeaseLost):
        store.complete_job(completion)


def test_complete_keeps_submitted_title(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "body", title="User title")
    job = factory.claim_one(doc.id)
    done = store.complete_job(factory.completion(job, ["x"], title="Parsed"))
    assert done.title == "User title"
    hits = store.keyword_search(["user"], collection_ids=[col.id], filters={}, limit=5)
    assert len(hits) == 1


def test_stale_owner_cannot_complete_after_takeover(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "contested")
    [stale] = store.claim_jobs(owner="stale", limit=1, lease_s=0.05)
    time.sleep(0.15)
    [fresh] = store.claim_jobs(owner="fresh", limit=1, lease_s=60)
    # The stale worker finishes while the new owner still works: refused.
    with pytest.raises(LeaseLost):
        store.complete_job(factory.completion(stale, ["stale text"]))
    store.fail_job(document_id=doc.id, owner="stale", error="stale failure", retry_at=None)
    assert row(store, doc.id)["status"] == "processing"
    assert row(store, doc.id)["lease_owner"] == "fresh"
    done = store.complete_job(factory.completion(fresh, ["fresh text"]))
    assert done.status == "ready"
    # And once the new owner is done, the stale one is refused again.
    with pytest.raises(LeaseLost):
        store.complete_job(factory.completion(stale, ["stale text", "more stale"]))
    store.fail_job(document_id=doc.id, owner="stale", error="late failure", retry_at=None)
    after = store.get_document(doc.id)
    assert after.status == "ready" and after.error is None and after.chunk_count == 1
    assert [c.text for c in store.list_chunks(doc.id)] == ["fresh text"]
    assert store.keyword_search(["stale"], collection_ids=[col.id], filters={}, limit=5) == []


def test_complete_job_by_unknown_document(store: AnyStore, factory: StoreFactory) -> None:
    completion = JobCompletion(
        document_id="doc_missing",
        lease_owner="w",
        title=None,
        mime_type="text/plain",
        content_hash="0" * 64,
        chunks=[],
    )
    with pytest.raises(LeaseLost):
        store.complete_job(completion)


def test_recompleting_swaps_chunks(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.ready_doc(
        col.id,
        ["old first", "old second", "old third"],
        vectors=[basis(0), basis(1), basis(2)],
    )
    old_ids = {c.id for c in store.list_chunks(doc.id)}
    assert len(store.vector_search(basis(0), collection_ids=[col.id], filters={}, limit=5)) == 3

    requeue(store, doc.id)
    job = factory.claim_one(doc.id)
    done = store.complete_job(
        factory.completion(job, ["new first", "new second"], vectors=[basis(3), basis(4)])
    )
    listed = store.list_chunks(doc.id)
    assert done.chunk_count == 2 and [c.ordinal for c in listed] == [0, 1]
    assert [c.text for c in listed] == ["new first", "new second"]
    assert not old_ids & {c.id for c in listed}
    assert factory.count("chunks") == 2
    assert factory.fts_rowids() == factory.chunk_rowids()
    assert store.keyword_search(["old"], collection_ids=[col.id], filters={}, limit=5) == []
    assert len(store.keyword_search(["new"], collection_ids=[col.id], filters={}, limit=5)) == 2
    assert store.get_chunks(sorted(old_ids)) == {}
    assert store.get_collection(col.id).chunk_count == 2
    for query in (basis(0), basis(3), basis(4)):
        hits = store.vector_search(query, collection_ids=[col.id], filters={}, limit=5)
        expected = factory.brute_force(query, [col.id], 5)
        assert [h.chunk_id for h in hits] == [cid for cid, _ in expected]
        assert [h.score for h in hits] == pytest.approx([score for _, score in expected])
    top = store.vector_search(basis(4), collection_ids=[col.id], filters={}, limit=1)[0]
    assert store.get_chunks([top.chunk_id])[top.chunk_id].text == "new second"

    # Again, with the same number of chunks: still replaced, never duplicated.
    requeue(store, doc.id)
    job = factory.claim_one(doc.id)
    store.complete_job(factory.completion(job, ["newer a", "newer b"]))
    assert [c.text for c in store.list_chunks(doc.id)] == ["newer a", "newer b"]
    assert factory.count("chunks") == 2 and factory.fts_rowids() == factory.chunk_rowids()


def test_failed_swap_leaves_old_chunks(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.ready_doc(col.id, ["kept one", "kept two"])
    before = store.list_chunks(doc.id)
    requeue(store, doc.id)
    job = factory.claim_one(doc.id)
    broken = factory.completion(job, ["dup a", "dup b"])
    bad = JobCompletion(
        document_id=broken.document_id,
        lease_owner=broken.lease_owner,
        title=None,
        mime_type="text/plain",
        content_hash=broken.content_hash,
        chunks=[broken.chunks[0], broken.chunks[0]],  # the same ordinal twice
    )
    with pytest.raises(IntegrityError):
        store.complete_job(bad)
    assert store.list_chunks(doc.id) == before
    assert factory.fts_rowids() == factory.chunk_rowids()
    assert row(store, doc.id)["status"] == "processing"
    assert store.keyword_search(["dup"], collection_ids=[col.id], filters={}, limit=5) == []
    # The worker still holds the lease and can finish properly.
    assert store.complete_job(factory.completion(job, ["fixed"])).chunk_count == 1


def test_complete_with_no_chunks(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "x")
    job = factory.claim_one(doc.id)
    done = store.complete_job(factory.completion(job, []))
    assert done.status == "ready" and done.chunk_count == 0
    assert store.list_chunks(doc.id) == []


# -- duplicates found at completion ---------------------------------------------------


def test_duplicate_content_found_at_completion(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    first = factory.add(col.id, "%PDF one", content_hash=None, source_hash="1" * 64)
    second = factory.add(col.id, "%PDF two", content_hash=None, source_hash="2" * 64)
    jobs = {j.document_id: j for j in store.claim_jobs(owner="w", limit=5, lease_s=60)}
    same = "f" * 64
    done = store.complete_job(factory.completion(jobs[first.id], ["same"], content_hash=same))
    dup = store.complete_job(factory.completion(jobs[second.id], ["same"], content_hash=same))
    assert done.status == "ready"
    assert dup.status == "failed" and dup.error is not None and first.id in dup.error
    assert dup.chunk_count == 0 and store.list_chunks(second.id) == []
    assert row(store, second.id)["lease_owner"] is None
    assert store.get_collection(col.id).chunk_count == 1
    # A later identical upload is deduplicated against the live one.
    again, created = store.add_document(factory.new_doc(col.id, "x", content_hash=same))
    assert not created and again.id == first.id


def test_duplicate_found_when_the_newer_document_finishes_first(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    older = factory.add(col.id, "%PDF one", content_hash=None, source_hash="1" * 64)
    newer = factory.add(col.id, "%PDF two", content_hash=None, source_hash="2" * 64)
    jobs = {j.document_id: j for j in store.claim_jobs(owner="w", limit=5, lease_s=60)}
    same = "e" * 64
    first_done = store.complete_job(factory.completion(jobs[newer.id], ["same"], content_hash=same))
    second_done = store.complete_job(
        factory.completion(jobs[older.id], ["same"], content_hash=same)
    )
    assert first_done.status == "ready"
    assert second_done.status == "failed"
    assert second_done.error is not None and newer.id in second_done.error
    statuses = Counter(d.status for d in store.get_documents([older.id, newer.id]))
    assert statuses == Counter({"ready": 1, "failed": 1})
    assert store.get_collection(col.id).chunk_count == 1


def test_duplicate_of_a_queued_document_with_known_hash(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    known = factory.add(col.id, "known text")  # content hash known at submission
    assert known.content_hash is not None
    pdf = factory.add(col.id, "%PDF", content_hash=None, source_hash="9" * 64)
    [job] = [j for j in store.claim_jobs(owner="w", limit=5, lease_s=60) if j.document_id == pdf.id]
    result = store.complete_job(
        factory.completion(job, ["known text"], content_hash=known.content_hash)
    )
    assert result.status == "failed" and result.error is not None and known.id in result.error


def test_same_hash_is_not_a_duplicate_elsewhere_or_of_failed(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    other = factory.collection()
    same = "d" * 64
    elsewhere = factory.add(other.id, "%PDF", content_hash=None, source_hash="1" * 64)
    failed = factory.add(col.id, "%PDF", content_hash=None, source_hash="1" * 64)
    jobs = {j.document_id: j for j in store.claim_jobs(owner="w", limit=5, lease_s=60)}
    assert store.complete_job(
        factory.completion(jobs[elsewhere.id], ["t"], content_hash=same)
    ).status == ("ready")
    store.fail_job(document_id=failed.id, owner="w", error="gave up", retry_at=None)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE documents SET content_hash = :h WHERE id = :id"),
            {"h": same, "id": failed.id},
        )
    fresh = factory.add(col.id, "%PDF again", content_hash=None, source_hash="3" * 64)
    job = factory.claim_one(fresh.id)
    assert store.complete_job(factory.completion(job, ["t"], content_hash=same)).status == "ready"


# -- failing and releasing ------------------------------------------------------------


def test_fail_job_with_retry_requeues_for_later(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "flaky")
    [job] = store.claim_jobs(owner="w", limit=1, lease_s=60)
    retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.4)
    store.fail_job(document_id=doc.id, owner="w", error="timed out", retry_at=retry_at)
    stored = row(store, doc.id)
    assert stored["status"] == "queued" and stored["error"] == "timed out"
    assert stored["lease_owner"] is None and stored["lease_expires_at"] is None
    assert parse_time(stored["next_attempt_at"]) > dt.datetime.now(dt.UTC)
    assert store.claim_jobs(owner="w2", limit=5, lease_s=60) == []
    time.sleep(0.5)
    [again] = store.claim_jobs(owner="w2", limit=5, lease_s=60)
    assert again.document_id == doc.id and again.attempts == job.attempts + 1
    done = store.complete_job(factory.completion(again, ["finally"]))
    assert done.status == "ready" and done.error is None
    assert row(store, doc.id)["next_attempt_at"] is None


def test_fail_job_without_retry_is_final(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "corrupt")
    store.claim_jobs(owner="w", limit=1, lease_s=60)
    long_error = "PDF could not be read: " + "x" * 5000
    store.fail_job(document_id=doc.id, owner="w", error=long_error, retry_at=None)
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and failed.error.startswith("PDF could not be read")
    assert len(failed.error) == 2000
    assert row(store, doc.id)["lease_owner"] is None
    time.sleep(0.01)
    assert store.claim_jobs(owner="w", limit=5, lease_s=60) == []


def test_release_jobs_returns_work_without_charging(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    docs = [factory.add(col.id, f"job {i}") for i in range(3)]
    ready = factory.ready_doc(col.id, ["done"])
    claimed = store.claim_jobs(owner="leaving", limit=10, lease_s=600)
    assert len(claimed) == 3
    assert store.release_jobs(owner="someone-else") == 0
    assert store.release_jobs(owner="leaving") == 3
    for doc in docs:
        stored = row(store, doc.id)
        assert stored["status"] == "queued" and stored["attempts"] == 0
        assert stored["lease_owner"] is None and stored["lease_expires_at"] is None
    assert store.get_document(ready.id).status == "ready"
    assert store.release_jobs(owner="leaving") == 0
    again = store.claim_jobs(owner="next", limit=10, lease_s=600)
    assert {j.document_id for j in again} == {d.id for d in docs}
    assert all(j.attempts == 1 for j in again)


def test_status_counts(store: AnyStore, factory: StoreFactory) -> None:
    assert store.status_counts() == {}
    col = factory.collection()
    other = factory.collection()
    factory.ready_doc(col.id, ["r1"])
    factory.ready_doc(other.id, ["r2"])
    failing = factory.add(col.id, "f")
    store.claim_jobs(owner="w", limit=10, lease_s=60)
    store.fail_job(document_id=failing.id, owner="w", error="e", retry_at=None)
    processing = factory.add(col.id, "p")
    store.claim_jobs(owner="w", limit=10, lease_s=60)
    for i in range(3):
        factory.add(other.id, f"q{i}")
    assert store.status_counts() == {"ready": 2, "failed": 1, "processing": 1, "queued": 3}
    store.delete_collection(other.id)
    assert store.status_counts() == {"ready": 1, "failed": 1, "processing": 1}
    assert store.get_document(processing.id).status == "processing"
