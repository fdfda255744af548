"""Synced sources in the store, on both databases: the migration matches the tables,
item writes replace a document's chunks in place, the sync lease guards every write,
schedulers never claim the same due run, and webhook replays are recognised."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ragd.domain import NewSource, SourceItemWrite, SyncCounts, SyncOutcome
from ragd.errors import NotFound
from ragd.store.base import LeaseLost
from ragd.store.tables import metadata_obj, utcnow
from tests.store.conftest import AnyStore, StoreFactory, sha

OWNER = "host:1:abc"


def new_source(collection_id: str, *, interval_s: int | None = None) -> NewSource:
    return NewSource(
        collection_id=collection_id,
        type="urls",
        location=["https://example.com/a"],
        mapping={},
        schedule={"interval_s": interval_s} if interval_s else None,
        secret="s3cret",
        next_sync_at=None,
    )


def item(factory: StoreFactory, key: str, *texts: str, title: str = "T") -> SourceItemWrite:
    body = "\n\n".join(texts)
    return SourceItemWrite(
        key=key,
        title=title,
        source_type="url",
        mime_type="text/markdown",
        metadata={"k": key},
        content=body.encode(),
        content_hash=sha(body),
        item_hash=sha("raw:" + body),
        etag='"e1"',
        last_modified=None,
        chunks=[factory.chunk(i, t) for i, t in enumerate(texts)],
    )


def outcome(**counts: int) -> SyncOutcome:
    return SyncOutcome(
        status="ok",
        counts=SyncCounts(**counts),
        error=None,
        finished_at=utcnow(),
        next_sync_at=None,
        fetch_state={"etag": '"x"'},
    )


def test_migration_matches_the_source_tables(store: AnyStore) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata_obj)
    ours = [d for d in differences if "source" in repr(d) or "webhook" in repr(d)]
    assert ours == []


def test_source_crud_and_secret(store: AnyStore, factory: StoreFactory) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id, interval_s=60))
    assert source.secret == "s3cret" and source.last_status == "never"
    assert "s3cret" not in repr(source)
    assert source.interval_s == 60
    assert store.list_sources(collection.id) == [source]
    rotated = store.set_source_secret(source.id, "other")
    assert rotated.secret == "other"
    assert store.delete_source(source.id) == 0
    with pytest.raises(NotFound):
        store.get_source(source.id)
    with pytest.raises(NotFound):
        store.add_source(new_source("col_missing"))
    with pytest.raises(NotFound):
        store.list_sources("col_missing")


def test_items_are_added_replaced_in_place_and_deleted(
    store: AnyStore, factory: StoreFactory
) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id))
    assert store.begin_source_sync(source.id, owner=OWNER, lease_s=60) is not None

    doc_id = store.put_source_item(source.id, owner=OWNER, item=item(factory, "a", "one", "two"))
    document = store.get_document(doc_id)
    assert (document.status, document.chunk_count, document.source) == ("ready", 2, "a")
    old_chunks = {c.id for c in store.list_chunks(doc_id)}
    assert store.list_source_items(source.id)["a"].document_id == doc_id

    again = store.put_source_item(source.id, owner=OWNER, item=item(factory, "a", "three"))
    assert again == doc_id  # the same document, its chunks swapped
    new_chunks = store.list_chunks(doc_id)
    assert [c.text for c in new_chunks] == ["three"]
    assert not old_chunks & {c.id for c in new_chunks}
    assert factory.fts_rowids() == factory.chunk_rowids()

    other = store.put_source_item(source.id, owner=OWNER, item=item(factory, "b", "four"))
    assert store.delete_source_items(source.id, owner=OWNER, keys=["a", "missing"]) == 1
    with pytest.raises(NotFound):
        store.get_document(doc_id)
    assert set(store.list_source_items(source.id)) == {"b"}
    assert factory.fts_rowids() == factory.chunk_rowids()

    store.touch_source_item(source.id, "b", etag='"e2"', last_modified="yesterday")
    assert store.list_source_items(source.id)["b"].etag == '"e2"'

    assert store.delete_source(source.id) == 1
    with pytest.raises(NotFound):
        store.get_document(other)
    assert factory.count("source_items") == 0 and factory.count("chunks") == 0


def test_writes_need_the_sync_lease(store: AnyStore, factory: StoreFactory) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id))
    with pytest.raises(LeaseLost):
        store.put_source_item(source.id, owner=OWNER, item=item(factory, "a", "x"))
    assert store.begin_source_sync(source.id, owner=OWNER, lease_s=60) is not None
    with pytest.raises(LeaseLost):
        store.delete_source_items(source.id, owner="someone-else", keys=["a"])
    assert factory.count("documents") == 0


def test_a_second_sync_is_refused_and_asks_for_another_run(
    store: AnyStore, factory: StoreFactory
) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id, interval_s=3600))
    running = store.begin_source_sync(source.id, owner=OWNER, lease_s=60)
    assert running is not None and running.last_status == "running"
    assert store.begin_source_sync(source.id, owner="other", lease_s=60) is None
    assert store.extend_source_sync(source.id, owner=OWNER, lease_s=60)
    assert not store.extend_source_sync(source.id, owner="other", lease_s=60)

    done = store.finish_source_sync(source.id, owner=OWNER, outcome=outcome(added=2, failed=1))
    assert done.last_status == "ok" and done.last_counts == SyncCounts(added=2, failed=1)
    assert done.fetch_state == {"etag": '"x"'}
    # The refused trigger is not lost: the next run is due now.
    assert done.next_sync_at is not None and done.next_sync_at <= utcnow()
    # Without a trigger meanwhile, the outcome's next run stands.
    assert store.begin_source_sync(source.id, owner=OWNER, lease_s=60) is not None
    later = store.finish_source_sync(source.id, owner=OWNER, outcome=outcome())
    assert later.next_sync_at is None


def test_an_expired_lease_can_be_taken_over(store: AnyStore, factory: StoreFactory) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id))
    assert store.begin_source_sync(source.id, owner=OWNER, lease_s=0) is not None
    assert store.begin_source_sync(source.id, owner="next", lease_s=60) is not None
    # The first owner's late end records nothing.
    store.finish_source_sync(source.id, owner=OWNER, outcome=outcome(added=9))
    assert store.get_source(source.id).last_status == "running"


def test_due_sources_are_claimed_once_and_moved_on(store: AnyStore, factory: StoreFactory) -> None:
    collection = factory.collection()
    due = store.add_source(new_source(collection.id, interval_s=600))
    store.begin_source_sync(due.id, owner=OWNER, lease_s=60)
    store.finish_source_sync(
        due.id,
        owner=OWNER,
        outcome=SyncOutcome("ok", SyncCounts(), None, utcnow(), utcnow(), {}),
    )
    store.add_source(new_source(collection.id))  # no schedule, never due
    claimed = store.claim_due_sources(limit=10)
    assert [s.id for s in claimed] == [due.id]
    assert claimed[0].next_sync_at is not None
    assert claimed[0].next_sync_at > utcnow() + dt.timedelta(seconds=500)
    assert store.claim_due_sources(limit=10) == []


def test_webhook_deliveries_are_remembered_until_they_expire(
    store: AnyStore, factory: StoreFactory
) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id))
    soon = utcnow() + dt.timedelta(seconds=300)
    assert store.remember_webhook(source.id, "a" * 64, soon)
    assert not store.remember_webhook(source.id, "a" * 64, soon)
    assert store.remember_webhook(source.id, "b" * 64, soon)
    past = utcnow() - dt.timedelta(seconds=1)
    assert store.remember_webhook(source.id, "c" * 64, past)
    assert store.remember_webhook(source.id, "c" * 64, soon)  # the expired one was forgotten


def test_deleting_the_collection_deletes_its_sources(
    store: AnyStore, factory: StoreFactory
) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id))
    store.begin_source_sync(source.id, owner=OWNER, lease_s=60)
    store.put_source_item(source.id, owner=OWNER, item=item(factory, "a", "x"))
    store.delete_collection(collection.id)
    with pytest.raises(NotFound):
        store.get_source(source.id)
    assert factory.count("source_items") == 0


def test_source_changes_append_audit_events(store: AnyStore, factory: StoreFactory) -> None:
    collection = factory.collection()
    source = store.add_source(new_source(collection.id))
    store.set_source_secret(source.id, "rotated")
    store.begin_source_sync(source.id, owner=OWNER, lease_s=60)
    doc = store.put_source_item(source.id, owner=OWNER, item=item(factory, "a", "x"))
    store.put_source_item(source.id, owner=OWNER, item=item(factory, "a", "y"))
    store.delete_source_items(source.id, owner=OWNER, keys=["a"])
    store.finish_source_sync(source.id, owner=OWNER, outcome=outcome(added=1, deleted=1))
    store.remember_webhook(source.id, "d" * 64, utcnow())  # bookkeeping: no event
    store.delete_source(source.id)

    found = store.read_audit(lambda reader: list(reader.events()))
    ours = [e for e in found if e.action.startswith("source.")]
    assert [e.action for e in ours] == [
        "source.create",
        "source.rotate_secret",
        "source.item_add",
        "source.item_replace",
        "source.item_delete",
        "source.sync",
        "source.delete",
    ]
    assert ours[2].target == (doc, collection.id)
    assert ours[5].detail["added"] == 1 and ours[5].detail["status"] == "ok"
    assert all("rotated" not in str(e.detail) and "s3cret" not in str(e.detail) for e in ours)
