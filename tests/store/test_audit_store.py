"""The audit chain in the store: every change appends its event in its own transaction,
seq is gap-free, checkpoints are signed every N events, and prune keeps it verifiable.
Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ragd.audit import GENESIS_HASH, AuditContext, AuditEvent, AuditFilters, acting_as, hash_of
from ragd.config import load_settings
from ragd.domain import NewApiKey, NewChatMessage
from ragd.errors import Conflict, InvalidInput, NotFound
from ragd.services.audit_verify import verify_chain
from ragd.signing import load_or_create_signer
from ragd.store import open_store
from ragd.store.tables import metadata_obj
from tests.store.conftest import AnyStore, StoreFactory


@pytest.fixture
def signed(db_url: str, tmp_path: Path) -> Iterator[AnyStore]:
    """A store that signs a checkpoint every 3 events with a key in ``tmp_path``."""
    opened = open_store(
        load_settings(database_url=db_url, data_dir=tmp_path, audit_checkpoint_every=3)
    )
    opened.migrate()
    yield opened  # type: ignore[misc]
    opened.close()


def events(store: AnyStore) -> list[AuditEvent]:
    return store.read_audit(lambda reader: list(reader.events()))


def actions(store: AnyStore) -> list[str]:
    return [e.action for e in events(store)]


def test_migration_matches_the_audit_tables(store: AnyStore) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata_obj)
    assert [d for d in differences if "audit_" in repr(d)] == []


def test_every_change_appends_its_event_in_order(store: AnyStore, factory: StoreFactory) -> None:
    collection = factory.collection("notes")
    store.update_collection(collection.id, name="notes2", description="new")
    document = factory.add(collection.id, "some text")
    job = factory.claim_one(document.id)
    store.complete_job(factory.completion(job, ["some text"]))
    failing = factory.add(collection.id, "other text")
    owner = factory.owner()
    store.claim_jobs(owner=owner, limit=1, lease_s=60)
    store.fail_job(document_id=failing.id, owner=owner, error="cannot parse", retry_at=None)
    key = store.add_key(NewApiKey("ci", "abcd1234", "f" * 64, "read", None))
    store.revoke_key(key.id)
    store.revoke_key(key.id)  # already revoked: no change, no event
    session = store.add_chat_session(
        key_id=None, title=None, system_prompt=None, collection_ids=None
    )
    store.add_chat_messages(session.id, [NewChatMessage("user", "q", [])])
    store.delete_chat_session(session.id)
    store.delete_document(document.id)
    store.delete_collection(collection.id)

    found = events(store)
    assert [e.action for e in found] == [
        "collection.create",
        "collection.update",
        "document.create",
        "ingestion.finish",
        "document.create",
        "ingestion.fail",
        "key.create",
        "key.revoke",
        "chat_session.delete",
        "document.delete",
        "collection.delete",
    ]
    assert [e.seq for e in found] == list(range(1, 12))
    assert found[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(found):
        assert after.prev_hash == before.hash
    assert all(hash_of(e) == e.hash for e in found)
    assert found[2].target == (document.id, collection.id)
    assert found[3].detail == {"chunks": 1, "content_hash": found[3].detail["content_hash"]}
    assert found[6].detail == {
        "prefix": "abcd1234",
        "name": "ci",
        "scope": "read",
        "collections": None,
    }
    assert "f" * 64 not in repr(found[6])  # never the key's hash
    assert found[10].detail == {"documents": 1, "chunks": 0}
    assert all("some text" not in repr(e) for e in found)  # never document text
    assert all(e.actor == "local" and e.request_id is None for e in found)
    assert store.read_audit(lambda reader: reader.head()) == (11, found[-1].hash)


def test_a_refused_change_leaves_no_event(store: AnyStore, factory: StoreFactory) -> None:
    factory.collection("taken")
    with pytest.raises(Conflict):
        factory.collection("taken")
    with pytest.raises(NotFound):
        store.delete_collection("col_missing")
    with pytest.raises(NotFound):
        store.update_collection("col_missing", name="x", description=None)
    assert actions(store) == ["collection.create"]


def test_a_duplicate_upload_and_a_retry_write_no_event(
    store: AnyStore, factory: StoreFactory
) -> None:
    collection = factory.collection()
    document = factory.add(collection.id, "same")
    _, created = store.add_document(factory.new_doc(collection.id, "same"))
    assert not created
    owner = factory.owner()
    store.claim_jobs(owner=owner, limit=1, lease_s=60)
    retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    store.fail_job(document_id=document.id, owner=owner, error="busy", retry_at=retry_at)
    assert actions(store) == ["collection.create", "document.create"]


def test_bootstrap_upsert_writes_only_when_something_changed(store: AnyStore) -> None:
    key = NewApiKey("bootstrap", "boot1234", "a" * 64, "admin", None)
    store.upsert_key(key)
    store.upsert_key(key)  # every start: nothing changes
    store.upsert_key(NewApiKey("bootstrap", "boot1234", "b" * 64, "admin", None))
    found = events(store)
    assert [e.action for e in found] == ["key.create", "key.update"]
    assert found[1].detail == {"prefix": "boot1234", "fields": ["key_hash"]}


def test_the_context_names_actor_request_and_client(store: AnyStore) -> None:
    with acting_as(AuditContext(actor="abcd1234", request_id="req-1", client="10.0.0.2")):
        store.create_collection(name="c", description="", embedding_model="m", embedding_dim=8)
    [event] = events(store)
    assert (event.actor, event.request_id, event.client) == ("abcd1234", "req-1", "10.0.0.2")


def test_list_filters_and_pages_newest_first(store: AnyStore, factory: StoreFactory) -> None:
    first = factory.collection("a")
    second = factory.collection("b")
    store.update_collection(first.id, name=None, description="d")
    everything = AuditFilters()
    page = store.list_audit_events(everything, limit=2, cursor=None)
    assert [e.seq for e in page.items] == [3, 2] and page.next_cursor == "2"
    rest = store.list_audit_events(everything, limit=2, cursor=page.next_cursor)
    assert [e.seq for e in rest.items] == [1] and rest.next_cursor is None

    by_target = store.list_audit_events(AuditFilters(target=first.id), limit=10, cursor=None)
    assert [e.seq for e in by_target.items] == [3, 1]
    # An id is matched whole: a prefix of it, or LIKE wildcards, match nothing.
    for partial in (first.id[:-1], "col_%", "%", "_"):
        assert (
            store.list_audit_events(AuditFilters(target=partial), limit=10, cursor=None).items == []
        )
    by_action = store.list_audit_events(
        AuditFilters(action="collection.create"), limit=10, cursor=None
    )
    assert [e.target for e in by_action.items] == [(second.id,), (first.id,)]
    assert store.list_audit_events(AuditFilters(actor="someone"), limit=10, cursor=None).items == []
    at = events(store)[1].at
    window = AuditFilters(since=at, until=at + dt.timedelta(microseconds=1))
    assert [e.seq for e in store.list_audit_events(window, limit=10, cursor=None).items] == [2]
    with pytest.raises(InvalidInput):
        store.list_audit_events(everything, limit=2, cursor="abc")


def test_checkpoints_every_n_events_verify(signed: AnyStore, tmp_path: Path) -> None:
    for n in range(7):
        signed.create_collection(name=f"c{n}", description="", embedding_model="m", embedding_dim=8)
    checkpoints = signed.read_audit(lambda reader: list(reader.checkpoints()))
    assert [c.seq for c in checkpoints] == [3, 6]
    assert signed.checkpoint_audit() is not None  # shutdown: the head, 7
    assert signed.checkpoint_audit() is None  # nothing new to sign
    signer = load_or_create_signer(None, tmp_path)
    verdict = signed.read_audit(lambda reader: verify_chain(reader, signer))
    assert verdict.ok, verdict
    assert (verdict.checked, verdict.checkpoints, verdict.last_seq) == (7, 3, 7)


def test_prune_keeps_the_chain_verifiable(signed: AnyStore, tmp_path: Path) -> None:
    for n in range(8):
        signed.create_collection(name=f"c{n}", description="", embedding_model="m", embedding_dim=8)
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert signed.prune_audit(long_ago).anchor_seq is None  # no checkpoint that old
    pruned = signed.prune_audit(dt.datetime.now(dt.UTC))
    assert (pruned.anchor_seq, pruned.deleted) == (6, 6)
    remaining = events(signed)
    assert [e.seq for e in remaining] == [7, 8, 9]
    assert remaining[-1].action == "audit.prune"
    assert remaining[-1].detail["anchor_seq"] == 6
    signer = load_or_create_signer(None, tmp_path)
    verdict = signed.read_audit(lambda reader: verify_chain(reader, signer))
    assert verdict.ok, verdict
    assert [c.seq for c in signed.read_audit(lambda r: list(r.checkpoints()))] == [6, 9]
