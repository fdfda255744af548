"""How long the longest-waiting document has waited for a worker: the store's answer
behind ``ragd_ingest_oldest_queued_age_seconds`` (the queue-stalled alert)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from tests.store.conftest import AnyStore

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory


def test_no_queued_document_has_no_age(store: AnyStore, factory: StoreFactory) -> None:
    assert store.oldest_queued_at() is None
    col = factory.collection()
    factory.ready_doc(col.id, ["done already"])
    assert store.oldest_queued_at() is None


def test_the_oldest_queued_document_counts(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    first = factory.add(col.id, "first")
    second = factory.add(col.id, "second")
    oldest = store.oldest_queued_at()
    assert oldest == first.created_at
    assert oldest is not None and oldest.tzinfo is not None

    # Claimed is no longer waiting: the next one is the oldest.
    job = factory.claim_one(first.id)
    assert job.document_id == first.id
    assert store.oldest_queued_at() == second.created_at


def test_a_document_in_retry_backoff_waits_from_its_retry_time(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "flaky")
    job = factory.claim_one(doc.id)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    store.fail_job(document_id=doc.id, owner=job.lease_owner, error="timeout", retry_at=later)
    assert store.oldest_queued_at() is None  # backing off on purpose, not waiting

    doc2 = factory.add(col.id, "also flaky")
    job2 = factory.claim_one(doc2.id)
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    store.fail_job(document_id=doc2.id, owner=job2.lease_owner, error="timeout", retry_at=due)
    waited_since = store.oldest_queued_at()
    assert waited_since is not None
    assert abs((waited_since - due).total_seconds()) < 1  # stored to the database's precision
