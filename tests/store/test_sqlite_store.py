"""SqliteStore over a real SQLite file: schema, collections, documents, search legs."""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ragd.domain import Filters, ScoredId, Vector
from ragd.errors import Conflict, InvalidInput, NotFound
from ragd.retrieval.terms import keyword_terms
from tests.store.conftest import AnyStore, open_test_store

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory

DIM = 8


def basis(i: int, dim: int = DIM) -> Vector:
    vector = np.zeros(dim, dtype=np.float32)
    vector[i] = 1.0
    return vector


def mix(weights: dict[int, float], dim: int = DIM) -> Vector:
    vector = np.zeros(dim, dtype=np.float32)
    for i, w in weights.items():
        vector[i] = w
    normalized: Vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    return normalized


def chunks_version(store: AnyStore, collection_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT chunks_version FROM collections WHERE id = :id"), {"id": collection_id}
            ).scalar_one()
        )


def ids(hits: list[ScoredId]) -> list[str]:
    return [hit.chunk_id for hit in hits]


def assert_matches_brute_force(
    factory: StoreFactory, query: Vector, collection_ids: list[str], limit: int
) -> list[ScoredId]:
    got = factory.store.vector_search(query, collection_ids=collection_ids, filters={}, limit=limit)
    expected = factory.brute_force(query, collection_ids, limit)
    assert [h.chunk_id for h in got] == [cid for cid, _ in expected]
    for hit, (_, score) in zip(got, expected, strict=True):
        assert hit.score == pytest.approx(score, abs=1e-5)
    return got


# -- schema ---------------------------------------------------------------------------


def test_migrate_is_idempotent_and_keeps_data(store: AnyStore, factory: StoreFactory) -> None:
    collection = factory.collection("kept")
    factory.ready_doc(collection.id, ["persisted text"])
    store.migrate()
    store.migrate()
    with store.engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        tables = set(inspect(conn).get_table_names())
    config = Config()
    config.set_main_option("script_location", str(resources.files("ragd.store") / "migrations"))
    assert versions == [ScriptDirectory.from_config(config).get_current_head()]
    keyword_index = "chunks_fts" if store.dialect == "sqlite" else "keyword_terms"
    assert {"collections", "documents", "document_sources", "chunks", keyword_index} <= tables
    assert "keys" in tables
    assert store.get_collection(collection.id).chunk_count == 1
    store.check()


def test_migrate_on_a_second_store_over_the_same_file(db_url: str, store: AnyStore) -> None:
    other = open_test_store(db_url)
    try:
        other.migrate()
        other.check()
        created = other.create_collection(
            name="shared", description="", embedding_model="m", embedding_dim=4
        )
        assert store.get_collection(created.id).name == "shared"
    finally:
        other.close()


# -- collections ----------------------------------------------------------------------


def test_collection_create_get_list(store: AnyStore) -> None:
    b = store.create_collection(
        name="beta", description="second", embedding_model="m1", embedding_dim=8
    )
    a = store.create_collection(name="alpha", description="", embedding_model="m2", embedding_dim=4)
    assert b.id.startswith("col_") and b.id != a.id
    assert (b.name, b.description, b.embedding_model, b.embedding_dim) == (
        "beta",
        "second",
        "m1",
        8,
    )
    assert b.created_at.tzinfo is not None
    assert (b.document_count, b.chunk_count) == (0, 0)
    assert store.get_collection(b.id) == b
    assert store.get_collection_by_name("alpha") == a
    assert [c.name for c in store.list_collections()] == ["alpha", "beta"]


def test_collection_duplicate_name_conflicts(store: AnyStore) -> None:
    store.create_collection(name="docs", description="", embedding_model="m", embedding_dim=4)
    with pytest.raises(Conflict):
        store.create_collection(name="docs", description="x", embedding_model="m", embedding_dim=4)
    assert len(store.list_collections()) == 1


def test_collection_update_and_rename_conflict(store: AnyStore) -> None:
    first = store.create_collection(
        name="one", description="", embedding_model="m", embedding_dim=4
    )
    store.create_collection(name="two", description="", embedding_model="m", embedding_dim=4)
    renamed = store.update_collection(first.id, name="uno", description=None)
    assert renamed.name == "uno" and renamed.description == ""
    assert renamed.updated_at >= first.updated_at
    described = store.update_collection(first.id, name=None, description="about")
    assert (described.name, described.description) == ("uno", "about")
    with pytest.raises(Conflict):
        store.update_collection(first.id, name="two", description="lost")
    unchanged = store.get_collection(first.id)
    assert (unchanged.name, unchanged.description) == ("uno", "about")
    # Renaming to its own name is not a conflict.
    assert store.update_collection(first.id, name="uno", description=None).name == "uno"


def test_collection_not_found(store: AnyStore) -> None:
    with pytest.raises(NotFound):
        store.get_collection("col_missing")
    with pytest.raises(NotFound):
        store.get_collection_by_name("missing")
    with pytest.raises(NotFound):
        store.update_collection("col_missing", name="x", description=None)
    with pytest.raises(NotFound):
        store.delete_collection("col_missing")
    with pytest.raises(NotFound):
        store.list_documents("col_missing", status=None, limit=10, cursor=None)


def test_collection_counts(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    other = factory.collection()
    factory.ready_doc(col.id, ["a one", "a two", "a three"])
    factory.ready_doc(col.id, ["b one"])
    factory.add(col.id, "still queued")
    factory.ready_doc(other.id, ["c one", "c two"])
    counted = store.get_collection(col.id)
    assert (counted.document_count, counted.chunk_count) == (3, 4)
    by_name = {c.name: c for c in store.list_collections()}
    assert (by_name[other.name].document_count, by_name[other.name].chunk_count) == (1, 2)


# -- documents ------------------------------------------------------------------------


def test_add_document_stores_fields(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    new = factory.new_doc(col.id, "body text", title="T", metadata={"k": "v", "n": 3})
    document, created = store.add_document(new)
    assert created
    assert document.id.startswith("doc_")
    assert (document.status, document.attempts, document.chunk_count) == ("queued", 0, 0)
    assert document.metadata == {"k": "v", "n": 3}
    assert document.title == "T" and document.content_hash == new.content_hash
    assert document.ready_at is None and document.error is None
    assert store.get_document(document.id) == document


def test_add_document_to_missing_collection(store: AnyStore, factory: StoreFactory) -> None:
    with pytest.raises(NotFound):
        store.add_document(factory.new_doc("col_missing", "x"))


def test_add_document_dedups_by_content_hash(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    first, created = store.add_document(factory.new_doc(col.id, "same text", title="first"))
    again, created_again = store.add_document(factory.new_doc(col.id, "same text", title="2nd"))
    assert created and not created_again
    assert again.id == first.id and again.title == "first"
    assert store.get_collection(col.id).document_count == 1


def test_add_document_dedups_by_source_hash(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    first, _ = store.add_document(
        factory.new_doc(col.id, "%PDF bytes", content_hash=None, source_hash="s" * 64)
    )
    again, created = store.add_document(
        factory.new_doc(col.id, "%PDF bytes", content_hash=None, source_hash="s" * 64)
    )
    assert not created and again.id == first.id
    different, created = store.add_document(
        factory.new_doc(col.id, "%PDF other", content_hash=None, source_hash="t" * 64)
    )
    assert created and different.id != first.id


def test_no_hashes_never_dedup(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    a, _ = store.add_document(factory.new_doc(col.id, "x", content_hash=None))
    b, created = store.add_document(factory.new_doc(col.id, "x", content_hash=None))
    assert created and a.id != b.id


def test_dedup_is_per_collection(store: AnyStore, factory: StoreFactory) -> None:
    one = factory.collection()
    two = factory.collection()
    a, _ = store.add_document(factory.new_doc(one.id, "shared", source_hash="h" * 64))
    b, created = store.add_document(factory.new_doc(two.id, "shared", source_hash="h" * 64))
    assert created and b.id != a.id and b.collection_id == two.id


def test_dedup_returns_ready_document(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    ready = factory.ready_doc(col.id, ["the content"])
    again, created = store.add_document(factory.new_doc(col.id, "the content"))
    assert not created and again.id == ready.id and again.status == "ready"


def test_failed_document_does_not_block_reupload(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    first = factory.add(col.id, "retry me", source_hash="r" * 64)
    job = factory.claim_one(first.id)
    store.fail_job(document_id=first.id, owner=job.lease_owner, error="boom", retry_at=None)
    assert store.get_document(first.id).status == "failed"
    second, created = store.add_document(factory.new_doc(col.id, "retry me", source_hash="r" * 64))
    assert created and second.id != first.id and second.status == "queued"
    # The new live document now blocks a third upload.
    third, created = store.add_document(factory.new_doc(col.id, "retry me"))
    assert not created and third.id == second.id


def test_get_document_and_get_documents(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    a = factory.add(col.id, "a")
    b = factory.add(col.id, "b")
    with pytest.raises(NotFound):
        store.get_document("doc_missing")
    found = store.get_documents([a.id, "doc_missing", b.id])
    assert {d.id for d in found} == {a.id, b.id}
    assert store.get_documents([]) == []


def test_list_documents_paginates_newest_first(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    other = factory.collection()
    created = [factory.add(col.id, f"document number {i}").id for i in range(25)]
    factory.add(other.id, "elsewhere")
    pages = []
    cursor: str | None = None
    while True:
        page = store.list_documents(col.id, status=None, limit=10, cursor=cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [len(p) for p in pages] == [10, 10, 5]
    seen = [d for p in pages for d in p]
    assert len({d.id for d in seen}) == 25
    assert {d.id for d in seen} == set(created)
    keys = [(d.created_at, d.id) for d in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[0].id == created[-1] and seen[-1].id == created[0]


def test_list_documents_exact_multiple_has_no_empty_page(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    for i in range(20):
        factory.add(col.id, f"doc {i}")
    first = store.list_documents(col.id, status=None, limit=10, cursor=None)
    second = store.list_documents(col.id, status=None, limit=10, cursor=first.next_cursor)
    assert len(second.items) == 10 and second.next_cursor is None


def test_list_documents_status_filter(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    ready = {factory.ready_doc(col.id, [f"ready {i}"]).id for i in range(12)}
    queued = {factory.add(col.id, f"queued {i}").id for i in range(3)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = store.list_documents(col.id, status="ready", limit=5, cursor=cursor)
        assert all(d.status == "ready" for d in page.items)
        seen.extend(d.id for d in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 12 and set(seen) == ready
    queued_page = store.list_documents(col.id, status="queued", limit=10, cursor=None)
    assert {d.id for d in queued_page.items} == queued and queued_page.next_cursor is None
    assert store.list_documents(col.id, status="failed", limit=10, cursor=None).items == []


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"a": 1}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00", "doc_x"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["yesterday", "doc_x"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00+00:00", 5]).encode()).decode(),
    ],
)
def test_list_documents_bad_cursor(store: AnyStore, factory: StoreFactory, cursor: str) -> None:
    col = factory.collection()
    factory.add(col.id, "x")
    with pytest.raises(InvalidInput):
        store.list_documents(col.id, status=None, limit=10, cursor=cursor)


def test_list_chunks_in_order_with_document_fields(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.ready_doc(
        col.id,
        ["zero", "one", "two"],
        heading_paths=[("A",), ("A", "B"), ()],
        title="Doc title",
        metadata={"team": "x"},
    )
    listed = store.list_chunks(doc.id)
    assert [c.ordinal for c in listed] == [0, 1, 2]
    assert [c.text for c in listed] == ["zero", "one", "two"]
    assert [c.heading_path for c in listed] == [("A",), ("A", "B"), ()]
    assert all(c.title == "Doc title" and c.metadata == {"team": "x"} for c in listed)
    assert all(c.document_id == doc.id and c.collection_id == col.id for c in listed)
    assert store.get_document(doc.id).chunk_count == 3
    with pytest.raises(NotFound):
        store.list_chunks("doc_missing")


def test_delete_document_removes_chunks_and_fts_rows(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    other = factory.collection()
    gone = factory.ready_doc(col.id, ["walrus tusks", "walrus habitat"])
    kept = factory.ready_doc(col.id, ["walrus diet"])
    elsewhere = factory.ready_doc(other.id, ["walrus elsewhere"])
    gone_ids = {int(c.id.removeprefix("chk_")) for c in store.list_chunks(gone.id)}
    assert gone_ids <= factory.fts_rowids()
    other_version = chunks_version(store, other.id)
    own_version = chunks_version(store, col.id)

    store.delete_document(gone.id)

    assert not gone_ids & factory.chunk_rowids()
    assert not gone_ids & factory.fts_rowids()
    assert factory.fts_rowids() == factory.chunk_rowids()
    assert factory.count("document_sources") == 2
    with pytest.raises(NotFound):
        store.get_document(gone.id)
    with pytest.raises(NotFound):
        store.delete_document(gone.id)
    assert chunks_version(store, other.id) == other_version
    assert chunks_version(store, col.id) > own_version
    hits = store.keyword_search(["walrus"], collection_ids=[col.id, other.id], filters={}, limit=10)
    kept_ids = {c.id for c in store.list_chunks(kept.id)} | {
        c.id for c in store.list_chunks(elsewhere.id)
    }
    assert set(ids(hits)) == kept_ids
    vector_hits = store.vector_search(
        basis(0), collection_ids=[col.id, other.id], filters={}, limit=10
    )
    assert set(ids(vector_hits)) == kept_ids
    assert store.get_collection(col.id).chunk_count == 1


def test_delete_queued_document(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.add(col.id, "queued")
    store.delete_document(doc.id)
    assert store.get_collection(col.id).document_count == 0
    assert factory.count("document_sources") == 0
    assert store.claim_jobs(owner="w", limit=10, lease_s=60) == []


def test_delete_collection_cascades(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    other = factory.collection()
    factory.ready_doc(col.id, ["otter one", "otter two"])
    factory.add(col.id, "queued otter")
    kept = factory.ready_doc(other.id, ["otter kept"])
    assert store.vector_search(basis(1), collection_ids=[col.id], filters={}, limit=5)

    store.delete_collection(col.id)

    with pytest.raises(NotFound):
        store.get_collection(col.id)
    with store.engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM documents WHERE collection_id = :c"), {"c": col.id}
        ).scalar_one()
        stray_chunks = conn.execute(
            text("SELECT count(*) FROM chunks WHERE collection_id = :c"), {"c": col.id}
        ).scalar_one()
    assert left == 0 and stray_chunks == 0
    assert factory.count("documents") == 1
    assert factory.count("document_sources") == 1
    kept_rowids = {int(c.id.removeprefix("chk_")) for c in store.list_chunks(kept.id)}
    assert factory.chunk_rowids() == kept_rowids
    assert factory.fts_rowids() == kept_rowids
    assert store.vector_search(basis(1), collection_ids=[col.id], filters={}, limit=5) == []
    assert store.keyword_search(["otter"], collection_ids=[col.id], filters={}, limit=5) == []
    assert len(store.keyword_search(["otter"], collection_ids=[other.id], filters={}, limit=5)) == 1
    with pytest.raises(NotFound):
        store.delete_collection(col.id)


# -- keyword leg ----------------------------------------------------------------------


def test_keyword_search_finds_body_title_and_heading(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    body = factory.ready_doc(col.id, ["the pelican flies low"])
    titled = factory.ready_doc(col.id, ["nothing relevant"], title="Flamingo handbook")
    headed = factory.ready_doc(
        col.id, ["still nothing relevant"], heading_paths=[("Guide", "Cormorant care")]
    )
    chunk_of = {d.id: store.list_chunks(d.id)[0].id for d in (body, titled, headed)}

    def search(term: str) -> list[str]:
        return ids(store.keyword_search([term], collection_ids=[col.id], filters={}, limit=10))

    assert search("pelican") == [chunk_of[body.id]]
    assert search("flamingo") == [chunk_of[titled.id]]
    assert search("cormorant") == [chunk_of[headed.id]]
    assert search("albatross") == []


def test_keyword_search_ranks_and_scores(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    factory.ready_doc(col.id, ["heron heron heron heron about herons"])
    factory.ready_doc(col.id, ["one heron among many other words in a long sentence here"])
    factory.ready_doc(col.id, ["no bird here"])
    hits = store.keyword_search(["heron"], collection_ids=[col.id], filters={}, limit=10)
    assert len(hits) == 2
    assert hits[0].score > hits[1].score
    assert store.get_chunks([hits[0].chunk_id])[hits[0].chunk_id].text.startswith("heron heron")


def test_keyword_search_any_term_matches(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    a = factory.ready_doc(col.id, ["kestrel sighting"])
    b = factory.ready_doc(col.id, ["osprey nesting"])
    factory.ready_doc(col.id, ["unrelated"])
    hits = store.keyword_search(
        ["kestrel", "osprey"], collection_ids=[col.id], filters={}, limit=10
    )
    assert set(ids(hits)) == {store.list_chunks(a.id)[0].id, store.list_chunks(b.id)[0].id}


def test_keyword_search_stems(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.ready_doc(col.id, ["the old bridge over the river"])
    plural = factory.ready_doc(col.id, ["many running rivers"])
    bridge_chunk = store.list_chunks(doc.id)[0].id
    assert ids(store.keyword_search(["bridges"], collection_ids=[col.id], filters={}, limit=5)) == [
        bridge_chunk
    ]
    assert ids(store.keyword_search(["run"], collection_ids=[col.id], filters={}, limit=5)) == [
        store.list_chunks(plural.id)[0].id
    ]
    # Diacritics are folded.
    cafe = factory.ready_doc(col.id, ["a café in town"])
    assert ids(store.keyword_search(["cafe"], collection_ids=[col.id], filters={}, limit=5)) == [
        store.list_chunks(cafe.id)[0].id
    ]


def test_keyword_search_scoped_to_collections(store: AnyStore, factory: StoreFactory) -> None:
    one = factory.collection()
    two = factory.collection()
    three = factory.collection()
    a = factory.ready_doc(one.id, ["puffin colony"])
    b = factory.ready_doc(two.id, ["puffin beak"])
    factory.ready_doc(three.id, ["puffin flight"])
    hits = store.keyword_search(["puffin"], collection_ids=[one.id, two.id], filters={}, limit=10)
    assert set(ids(hits)) == {store.list_chunks(a.id)[0].id, store.list_chunks(b.id)[0].id}
    assert store.keyword_search(["puffin"], collection_ids=[], filters={}, limit=10) == []
    assert store.keyword_search([], collection_ids=[one.id], filters={}, limit=10) == []
    assert store.keyword_search(["puffin"], collection_ids=["col_x"], filters={}, limit=10) == []


FTS_SYNTAX = [
    '"',
    '"puffin"',
    'puffin"',
    "pu*",
    "*",
    "NEAR(",
    "NEAR(puffin colony)",
    "OR",
    "AND",
    "NOT",
    "puffin OR",
    "-",
    "-puffin",
    ":",
    "body:puffin",
    "title : x",
    "(",
    ")",
    "(puffin",
    "^puffin",
    "{body title}: puffin",
    "'; DROP TABLE chunks; --",
    "",
    " ",
    "+",
    "puffin\nOR\ncolony",
]


@pytest.mark.parametrize("term", FTS_SYNTAX)
def test_keyword_search_terms_are_never_syntax(
    store: AnyStore, factory: StoreFactory, term: str
) -> None:
    col = factory.collection()
    doc = factory.ready_doc(col.id, ["puffin colony on the cliff"])
    before = factory.count("chunks")
    store.keyword_search([term], collection_ids=[col.id], filters={}, limit=5)
    hits = store.keyword_search([term, "cliff"], collection_ids=[col.id], filters={}, limit=5)
    # The real term still works next to the odd one; nothing was dropped or changed.
    assert ids(hits) == [store.list_chunks(doc.id)[0].id]
    assert factory.count("chunks") == before == 1
    assert factory.fts_rowids() == factory.chunk_rowids()


def test_keyword_search_with_query_text_through_terms(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    doc = factory.ready_doc(col.id, ["puffin colony on the cliff"])
    for query in [
        'puffin" OR "x',
        "NEAR(puffin, cliff)",
        "puffin'; DROP TABLE chunks; --",
        "title:puffin*",
        "(puffin) -cliff",
    ]:
        hits = store.keyword_search(
            keyword_terms(query), collection_ids=[col.id], filters={}, limit=5
        )
        assert ids(hits) == [store.list_chunks(doc.id)[0].id], query
    assert store.get_collection(col.id).chunk_count == 1


def test_keyword_search_never_returns_chunks_of_unready_documents(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    ready = factory.ready_doc(col.id, ["gannet dive"])
    processing = factory.add(col.id, "gannet processing")
    factory.claim_one(processing.id)
    queued = factory.add(col.id, "gannet queued")
    hits = store.keyword_search(["gannet"], collection_ids=[col.id], filters={}, limit=10)
    assert ids(hits) == [store.list_chunks(ready.id)[0].id]
    vector_hits = store.vector_search(basis(0), collection_ids=[col.id], filters={}, limit=10)
    assert ids(vector_hits) == [store.list_chunks(ready.id)[0].id]
    assert store.get_document(queued.id).status == "queued"


def test_keyword_and_get_chunks_hide_a_document_being_reprocessed(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    doc = factory.ready_doc(col.id, ["grebe chunk"])
    chunk_id = store.list_chunks(doc.id)[0].id
    # Simulate a document sent back for reprocessing while its old chunks exist.
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE documents SET status = 'queued' WHERE id = :id"), {"id": doc.id})
    assert store.keyword_search(["grebe"], collection_ids=[col.id], filters={}, limit=5) == []
    assert store.get_chunks([chunk_id]) == {}


# -- filters (both legs) --------------------------------------------------------------


def _filter_corpus(factory: StoreFactory, col_id: str) -> dict[str, str]:
    """Many strongly matching docs without the wanted metadata, and one weak match with it;
    returns chunk ids by label."""
    labels: dict[str, str] = {}
    for i in range(30):
        doc = factory.ready_doc(
            col_id,
            [f"lynx lynx lynx lynx {i}"],
            vectors=[mix({0: 1.0, 1: 0.01 * (i + 1)})],
            metadata={"team": "a", "year": 2023, "draft": False, "n": i},
        )
        labels[f"noise{i}"] = factory.store.list_chunks(doc.id)[0].id
    target = factory.ready_doc(
        col_id,
        ["one lynx sighting in a long description of many unrelated things around here"],
        vectors=[mix({0: 0.2, 5: 1.0})],
        metadata={
            "team": "b",
            "year": 2024,
            "draft": True,
            "owner": None,
            "a.b": "dot",
            "x y": "space",
            "q't": "quote",
            "$": "dollar",
            "[0]": "bracket",
            "city": "Zürich ☃",
            "score": 1.5,
        },
    )
    labels["target"] = factory.store.list_chunks(target.id)[0].id
    other = factory.ready_doc(
        col_id,
        ["lynx lynx lynx other"],
        vectors=[mix({0: 1.0, 2: 0.5})],
        metadata={"team": "b", "year": "2024", "draft": 1, "ab": "dot", "owner": "alice"},
    )
    labels["other"] = factory.store.list_chunks(other.id)[0].id
    return labels


FILTER_CASES: list[tuple[Filters, set[str]]] = [
    ({"team": "b"}, {"target", "other"}),
    ({"year": 2024}, {"target"}),
    ({"year": "2024"}, {"other"}),
    ({"draft": True}, {"target"}),
    ({"team": "b", "year": 2024}, {"target"}),
    ({"team": "b", "owner": None}, {"target"}),
    ({"team": "a", "n": 7}, {"noise7"}),
    ({"team": "b", "draft": False}, set()),
    ({"a.b": "dot"}, {"target"}),
    ({"x y": "space"}, {"target"}),
    ({"q't": "quote"}, {"target"}),
    ({"$": "dollar"}, {"target"}),
    ({"[0]": "bracket"}, {"target"}),
    ({"city": "Zürich ☃"}, {"target"}),
    ({"city": "Zurich ☃"}, set()),
    ({"score": 1.5}, {"target"}),
    ({'a"b': "dot"}, set()),
    ({"missing": "x"}, set()),
    ({"team": "c"}, set()),
]


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_filters_apply_inside_both_legs(
    store: AnyStore, factory: StoreFactory, filters: Filters, expected: set[str]
) -> None:
    col = factory.collection()
    labels = _filter_corpus(factory, col.id)
    by_id = {chunk_id: label for label, chunk_id in labels.items()}
    keyword = store.keyword_search(["lynx"], collection_ids=[col.id], filters=filters, limit=50)
    vector = store.vector_search(basis(0), collection_ids=[col.id], filters=filters, limit=50)
    assert {by_id[h.chunk_id] for h in keyword} == expected
    assert {by_id[h.chunk_id] for h in vector} == expected


def test_filtered_limit_one_still_finds_the_match(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    labels = _filter_corpus(factory, col.id)
    # Unfiltered, the target is far from the top of either leg.
    top = store.keyword_search(["lynx"], collection_ids=[col.id], filters={}, limit=10)
    assert labels["target"] not in ids(top)
    assert labels["target"] not in ids(
        store.vector_search(basis(0), collection_ids=[col.id], filters={}, limit=10)
    )
    wanted: Filters = {"team": "b", "year": 2024}
    keyword = store.keyword_search(["lynx"], collection_ids=[col.id], filters=wanted, limit=1)
    vector = store.vector_search(basis(0), collection_ids=[col.id], filters=wanted, limit=1)
    assert ids(keyword) == [labels["target"]]
    assert ids(vector) == [labels["target"]]


def test_filters_do_not_leak_sql(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    factory.ready_doc(col.id, ["kiwi"], metadata={"k": "v"})
    hostile: Filters = {"k') OR 1=1 --": "x", "k": "' OR '1'='1"}
    assert store.keyword_search(["kiwi"], collection_ids=[col.id], filters=hostile, limit=5) == []
    assert store.vector_search(basis(0), collection_ids=[col.id], filters=hostile, limit=5) == []
    assert factory.count("chunks") == 1


# -- vector leg -----------------------------------------------------------------------


def test_vector_search_exact_cosine_order(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    vectors = [
        mix({0: 1.0}),
        mix({0: 0.9, 1: 0.1}),
        mix({0: 0.5, 1: 0.5}),
        mix({1: 1.0}),
        mix({0: -1.0}),
        mix({0: 0.7, 2: 0.7, 3: 0.1}),
    ]
    doc = factory.ready_doc(col.id, [f"v{i}" for i in range(6)], vectors=vectors)
    chunk_ids = [c.id for c in store.list_chunks(doc.id)]
    query = mix({0: 1.0, 2: 0.2})
    hits = store.vector_search(query, collection_ids=[col.id], filters={}, limit=6)
    expected = sorted(
        ((cid, float(np.dot(v, query))) for cid, v in zip(chunk_ids, vectors, strict=True)),
        key=lambda pair: -pair[1],
    )
    assert ids(hits) == [cid for cid, _ in expected]
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-6)
    assert hits[-1].chunk_id == chunk_ids[4]
    assert ids(store.vector_search(query, collection_ids=[col.id], filters={}, limit=2)) == [
        cid for cid, _ in expected[:2]
    ]
    assert store.vector_search(query, collection_ids=[col.id], filters={}, limit=0) == []
    assert store.vector_search(query, collection_ids=["col_missing"], filters={}, limit=3) == []
    assert store.vector_search(query, collection_ids=[], filters={}, limit=3) == []


def test_vector_search_merges_collections(store: AnyStore, factory: StoreFactory) -> None:
    one = factory.collection()
    two = factory.collection()
    three = factory.collection()
    factory.ready_doc(one.id, ["a0", "a1"], vectors=[mix({0: 1.0}), mix({0: 0.2, 1: 1.0})])
    factory.ready_doc(two.id, ["b0", "b1"], vectors=[mix({0: 0.8, 1: 0.2}), mix({0: 0.5, 1: 1.0})])
    factory.ready_doc(three.id, ["c0"], vectors=[mix({0: 1.0, 1: 0.01})])
    query = basis(0)
    hits = assert_matches_brute_force(factory, query, [one.id, two.id], 4)
    assert len(hits) == 4
    texts = [store.get_chunks([h.chunk_id])[h.chunk_id].text for h in hits]
    assert texts == ["a0", "b0", "b1", "a1"]
    assert_matches_brute_force(factory, query, [one.id, two.id, three.id], 2)


def test_vector_cache_follows_adds_and_deletes(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    other = factory.collection()
    queries = [basis(0), mix({1: 1.0, 2: 1.0}), mix({3: 1.0, 7: -0.5}), mix({5: 1.0})]

    def check() -> None:
        for query in queries:
            assert_matches_brute_force(factory, query, [col.id], 5)
            assert_matches_brute_force(factory, query, [col.id, other.id], 7)

    docs = [factory.ready_doc(col.id, [f"first {i}", f"first {i} b"]) for i in range(3)]
    factory.ready_doc(other.id, ["other one"])
    check()
    docs += [factory.ready_doc(col.id, [f"second {i}"]) for i in range(3)]
    check()
    store.delete_document(docs[1].id)
    check()
    # The newest document goes, and new ones arrive before anyone searches again.
    store.delete_document(docs[-1].id)
    docs.append(factory.ready_doc(col.id, ["third a", "third b", "third c"]))
    check()
    store.delete_document(docs[-1].id)
    factory.ready_doc(other.id, ["other two"])
    docs.append(factory.ready_doc(col.id, ["fourth"]))
    check()
    for doc in docs:
        try:
            store.delete_document(doc.id)
        except NotFound:
            continue
    assert store.vector_search(basis(0), collection_ids=[col.id], filters={}, limit=5) == []
    factory.ready_doc(col.id, ["after empty"])
    check()


def test_vector_cache_sees_writes_from_another_store(
    db_url: str, store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    factory.ready_doc(col.id, ["mine"], vectors=[basis(0)])
    assert_matches_brute_force(factory, basis(1), [col.id], 5)
    writer = open_test_store(db_url)
    try:
        doc, _ = writer.add_document(factory.new_doc(col.id, "theirs"))
        [job] = writer.claim_jobs(owner="w2", limit=5, lease_s=60)
        writer.complete_job(factory.completion(job, ["theirs"], vectors=[basis(1)]))
        hits = assert_matches_brute_force(factory, basis(1), [col.id], 5)
        assert store.get_chunks([hits[0].chunk_id])[hits[0].chunk_id].document_id == doc.id
        writer.delete_document(doc.id)
        hits = assert_matches_brute_force(factory, basis(1), [col.id], 5)
        assert len(hits) == 1
    finally:
        writer.close()


# -- embedding cache ------------------------------------------------------------------


def test_embedding_cache_round_trip(store: AnyStore) -> None:
    rng = np.random.default_rng(7)
    vectors = {f"hash{i:04d}": rng.standard_normal(DIM).astype(np.float32) for i in range(1200)}
    store.cache_embeddings("model-a", vectors)
    found = store.cached_embeddings("model-a", [*vectors, "absent", "hash0001"])
    assert set(found) == set(vectors)
    for key, vector in vectors.items():
        assert found[key].dtype == np.float32
        np.testing.assert_array_equal(found[key], vector)
    assert store.cached_embeddings("model-b", vectors) == {}
    assert store.cached_embeddings("model-a", []) == {}


def test_embedding_cache_keeps_first_value_and_ignores_empty(store: AnyStore) -> None:
    store.cache_embeddings("m", {"h": basis(0)})
    store.cache_embeddings("m", {"h": basis(1), "g": basis(2)})
    store.cache_embeddings("m", {})
    found = store.cached_embeddings("m", ["h", "g"])
    np.testing.assert_array_equal(found["h"], basis(0))
    np.testing.assert_array_equal(found["g"], basis(2))
    store.cache_embeddings("other", {"h": basis(3)})
    np.testing.assert_array_equal(store.cached_embeddings("other", ["h"])["h"], basis(3))


# -- get_chunks -----------------------------------------------------------------------


def test_get_chunks_ignores_malformed_ids(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    doc = factory.ready_doc(col.id, ["real chunk"], title="T", metadata={"m": 1})
    real = store.list_chunks(doc.id)[0]
    bad = [
        "abc",
        "chk_x",
        "chk_99999999999999999999",
        "chk_",
        "",
        "chk_-1",
        "chk_1.0",
        "chk_ 1",
        "CHK_1",
        "1",
        "chk_1; DROP TABLE chunks",
        "chk_\u0661",
        "chk_01",
        "chk_+1",
        "chk_999999",
    ]
    assert store.get_chunks(bad) == {}
    found = store.get_chunks([*bad, real.id, real.id])
    assert list(found) == [real.id]
    assert found[real.id] == real
    assert found[real.id].title == "T" and found[real.id].metadata == {"m": 1}
    assert store.get_chunks([]) == {}


def test_chunk_ids_are_never_reused(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    factory.ready_doc(col.id, ["keep"])
    newest = factory.ready_doc(col.id, ["drop one", "drop two"])
    dropped = {c.id for c in store.list_chunks(newest.id)}
    highest = max(factory.chunk_rowids())
    store.delete_document(newest.id)
    replacement = factory.ready_doc(col.id, ["new one", "new two"])
    fresh = {c.id for c in store.list_chunks(replacement.id)}
    assert not fresh & dropped
    assert min(int(cid.removeprefix("chk_")) for cid in fresh) > highest
    assert store.get_chunks(sorted(dropped)) == {}
