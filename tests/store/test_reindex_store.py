"""A reindex's generation of chunks in the store: invisible to every search path while it
is built, switched in at once, dropped on cancel, guarded by the job's lease."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from ragd.domain import Collection, Document, JobCompletion, NewJob
from ragd.errors import NotFound
from ragd.store.base import LeaseLost
from tests.store.conftest import AnyStore, seeded_vector

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory

GEN = "gen_test"
OWNER = "reindexer"


def reindex_job(store: AnyStore, collection: Collection, owner: str = OWNER) -> str:
    job = store.submit_job(
        NewJob(
            kind="reindex",
            collection_id=collection.id,
            params={},
            created_by="local",
            max_attempts=3,
        )
    )
    claimed = store.claim_background_job(owner=owner, kinds=["reindex"], lease_s=600)
    assert claimed is not None and claimed.id == job.id
    return job.id


def new_chunks(
    factory: StoreFactory, document: Document, *texts: str, owner: str = OWNER
) -> JobCompletion:
    return JobCompletion(
        document_id=document.id,
        lease_owner=owner,
        title=None,
        mime_type="text/markdown",
        content_hash="unused",
        chunks=[factory.chunk(i, t) for i, t in enumerate(texts)],
    )


def keyword_ids(store: AnyStore, collection: Collection, word: str) -> set[str]:
    hits = store.keyword_search([word], collection_ids=[collection.id], filters={}, limit=100)
    return {hit.chunk_id for hit in hits}


def vector_ids(store: AnyStore, collection: Collection) -> set[str]:
    hits = store.vector_search(
        seeded_vector("query"), collection_ids=[collection.id], filters={}, limit=100
    )
    return {hit.chunk_id for hit in hits}


def chunk_ids(store: AnyStore, documents: list[Document]) -> set[str]:
    return {c.id for d in documents for c in store.list_chunks(d.id)}


@pytest.fixture
def collection(factory: StoreFactory) -> Collection:
    return factory.collection()


@pytest.fixture
def docs(factory: StoreFactory, collection: Collection) -> list[Document]:
    return [
        factory.ready_doc(collection.id, [f"alpha old {i} first", f"alpha old {i} second"])
        for i in range(3)
    ]


def test_generation_is_invisible_until_the_switch(
    store: AnyStore, factory: StoreFactory, collection: Collection, docs: list[Document]
) -> None:
    job_id = reindex_job(store, collection)
    old = chunk_ids(store, docs)
    assert len(old) == 6 and keyword_ids(store, collection, "alpha") == old
    scores = store.keyword_search(
        ["alpha", "first"], collection_ids=[collection.id], filters={}, limit=9
    )
    pending = store.reindex_pending(collection.id, generation=GEN, limit=10)
    assert [p.document_id for p in pending] == [d.id for d in docs]
    assert pending[0].content == b"alpha old 0 first\n\nalpha old 0 second"
    assert store.reindex_progress(collection.id, generation=GEN) == (0, 3)

    added = store.add_generation_chunks(
        GEN, [new_chunks(factory, docs[0], "alpha new zero")], job_id=job_id, owner=OWNER
    )
    assert added == 1
    assert store.reindex_progress(collection.id, generation=GEN) == (1, 3)
    assert [
        p.document_id for p in store.reindex_pending(collection.id, generation=GEN, limit=9)
    ] == [
        docs[1].id,
        docs[2].id,
    ]
    # Nothing of the generation shows: not in either leg, not in the document's chunks,
    # not even in the keyword scores (BM25 statistics that would count its chunks).
    assert (
        store.keyword_search(
            ["alpha", "first"], collection_ids=[collection.id], filters={}, limit=9
        )
        == scores
    )
    assert keyword_ids(store, collection, "alpha") == old
    assert keyword_ids(store, collection, "new") == set()
    assert vector_ids(store, collection) == old
    assert chunk_ids(store, docs) == old
    with store.engine.connect() as conn:
        generation_ids = {
            f"chk_{i}"
            for i in conn.execute(
                text("SELECT id FROM chunks WHERE collection_id = :g"), {"g": GEN}
            ).scalars()
        }
    assert len(generation_ids) == 1
    assert store.get_chunks(sorted(generation_ids)) == {}
    assert store.get_collection(collection.id).chunk_count == 6
    factory.fts_rowids()  # on PostgreSQL: the BM25 statistics still add up

    # Not all documents are in the generation: the switch refuses and changes nothing.
    left = store.switch_generation(
        collection.id,
        generation=GEN,
        job_id=job_id,
        owner=OWNER,
        embedding_model="model-2",
        embedding_dim=8,
        chunk_max_tokens=64,
    )
    assert left == 2 and keyword_ids(store, collection, "alpha") == old

    store.add_generation_chunks(
        GEN,
        [
            new_chunks(factory, docs[1], "alpha new one", "alpha new one more"),
            new_chunks(factory, docs[2], "alpha new two"),
        ],
        job_id=job_id,
        owner=OWNER,
    )
    assert (
        store.switch_generation(
            collection.id,
            generation=GEN,
            job_id=job_id,
            owner=OWNER,
            embedding_model="model-2",
            embedding_dim=8,
            chunk_max_tokens=64,
        )
        == 0
    )
    new = chunk_ids(store, docs)
    assert new.isdisjoint(old) and len(new) == 4
    assert keyword_ids(store, collection, "alpha") == new
    assert keyword_ids(store, collection, "old") == set()
    assert vector_ids(store, collection) == new
    assert [c.text for c in store.list_chunks(docs[1].id)] == [
        "alpha new one",
        "alpha new one more",
    ]
    assert [c.ordinal for c in store.list_chunks(docs[1].id)] == [0, 1]
    assert [store.get_document(d.id).chunk_count for d in docs] == [1, 2, 1]
    switched = store.get_collection(collection.id)
    assert (switched.embedding_model, switched.embedding_dim) == ("model-2", 8)
    assert switched.chunk_max_tokens == 64 and switched.chunk_count == 4
    assert store.reindex_progress(collection.id, generation=GEN) == (0, 3)
    factory.fts_rowids()  # the statistics followed the chunks that moved


def test_new_documents_must_join_before_the_switch(
    store: AnyStore, factory: StoreFactory, collection: Collection, docs: list[Document]
) -> None:
    job_id = reindex_job(store, collection)
    store.add_generation_chunks(
        GEN,
        [new_chunks(factory, d, f"alpha new {d.id}") for d in docs],
        job_id=job_id,
        owner=OWNER,
    )
    late = factory.ready_doc(collection.id, ["alpha late arrival"])  # ingested meanwhile
    switch = dict(
        generation=GEN,
        job_id=job_id,
        owner=OWNER,
        embedding_model="m",
        embedding_dim=8,
        chunk_max_tokens=None,
    )
    assert store.switch_generation(collection.id, **switch) == 1  # type: ignore[arg-type]
    [pending] = store.reindex_pending(collection.id, generation=GEN, limit=10)
    assert pending.document_id == late.id
    store.add_generation_chunks(
        GEN, [new_chunks(factory, late, "alpha late new")], job_id=job_id, owner=OWNER
    )
    assert store.switch_generation(collection.id, **switch) == 0  # type: ignore[arg-type]
    assert [c.text for c in store.list_chunks(late.id)] == ["alpha late new"]


def test_lease_guards_every_write(
    store: AnyStore, factory: StoreFactory, collection: Collection, docs: list[Document]
) -> None:
    job_id = reindex_job(store, collection)
    with pytest.raises(LeaseLost):
        store.add_generation_chunks(
            GEN, [new_chunks(factory, docs[0], "x")], job_id=job_id, owner="someone-else"
        )
    with pytest.raises(LeaseLost):
        store.switch_generation(
            collection.id,
            generation=GEN,
            job_id=job_id,
            owner="someone-else",
            embedding_model="m",
            embedding_dim=8,
            chunk_max_tokens=None,
        )
    assert store.reindex_progress(collection.id, generation=GEN) == (0, 3)


def test_deleted_documents_are_skipped_and_drop_clears(
    store: AnyStore, factory: StoreFactory, collection: Collection, docs: list[Document]
) -> None:
    job_id = reindex_job(store, collection)
    store.delete_document(docs[0].id)
    added = store.add_generation_chunks(
        GEN,
        [new_chunks(factory, d, f"alpha new {i}") for i, d in enumerate(docs)],
        job_id=job_id,
        owner=OWNER,
    )
    assert added == 2
    # Again (a retried batch): replaced, not doubled.
    store.add_generation_chunks(
        GEN, [new_chunks(factory, docs[1], "alpha new again")], job_id=job_id, owner=OWNER
    )
    assert factory.count("chunks") == 4 + 2
    assert store.drop_generation(GEN) == 2
    assert factory.count("chunks") == 4
    assert store.reindex_progress(collection.id, generation=GEN) == (0, 2)
    factory.fts_rowids()


def test_deleting_the_collection_takes_the_generation(
    store: AnyStore, factory: StoreFactory, collection: Collection, docs: list[Document]
) -> None:
    job_id = reindex_job(store, collection)
    store.add_generation_chunks(
        GEN, [new_chunks(factory, docs[0], "alpha new")], job_id=job_id, owner=OWNER
    )
    store.delete_collection(collection.id)
    assert factory.count("chunks") == 0
    assert factory.fts_rowids() == set()
    with pytest.raises((NotFound, LeaseLost)):
        store.switch_generation(
            collection.id,
            generation=GEN,
            job_id=job_id,
            owner=OWNER,
            embedding_model="m",
            embedding_dim=8,
            chunk_max_tokens=None,
        )


def test_searches_see_old_or_new_never_a_mix(
    store: AnyStore, factory: StoreFactory, collection: Collection
) -> None:
    docs = [
        factory.ready_doc(collection.id, [f"alpha old {i} a", f"alpha old {i} b"])
        for i in range(20)
    ]
    job_id = reindex_job(store, collection)
    old = chunk_ids(store, docs)
    store.add_generation_chunks(
        GEN,
        [new_chunks(factory, d, f"alpha new {i}") for i, d in enumerate(docs)],
        job_id=job_id,
        owner=OWNER,
    )
    seen: list[set[str]] = []
    switched = threading.Event()

    def search() -> None:
        while True:
            done = switched.is_set()
            seen.append(keyword_ids(store, collection, "alpha"))
            if done:
                return

    reader = threading.Thread(target=search)
    reader.start()
    try:
        store.switch_generation(
            collection.id,
            generation=GEN,
            job_id=job_id,
            owner=OWNER,
            embedding_model="m",
            embedding_dim=8,
            chunk_max_tokens=None,
        )
    finally:
        switched.set()
        reader.join(60)
    new = chunk_ids(store, docs)
    assert len(new) == 20 and seen[-1] == new
    for result in seen:
        assert result in (old, new)
