"""One read transaction per hybrid search on SQLite: the legs, the feedback vectors and
the second vector pass all read one snapshot, and rank exactly as the separate legs do."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy import event

from ragd.domain import Filters, Vector
from ragd.retrieval.hybrid import Fusion, HybridParams, HybridRanker
from ragd.store.base import SearchIndex, SnapshotSearch
from ragd.store.sqlite.store import SqliteStore
from tests.store.conftest import (
    GREEK_WORDS,
    SeededEmbedder,
    StoreFactory,
    Without,
    open_test_store,
    seeded_vector,
)

QUERIES = ["alpha beta", "kappa", "zzz unknown", "mu theta iota", '"delta" OR zeta*']


def _fill(factory: StoreFactory, collection_id: str, documents: int, seed: int) -> list[str]:
    """``documents`` ready documents of two chunks each; their chunk ids."""
    rng = np.random.default_rng(seed)
    chunk_ids = []
    for i in range(documents):
        texts = [" ".join(rng.choice(GREEK_WORDS, 6)) for _ in range(2)]
        document = factory.ready_doc(collection_id, texts, metadata={"k": i % 3})
        chunk_ids += [chunk.id for chunk in factory.store.list_chunks(document.id)]
    return chunk_ids


def _transactions(store: SqliteStore) -> list[int]:
    """A list that grows by one each time ``store`` begins a transaction."""
    begun: list[int] = []
    event.listen(store.engine, "begin", lambda _conn: begun.append(1))
    return begun


def test_the_store_offers_a_snapshot(sqlite_store: SqliteStore) -> None:
    assert isinstance(sqlite_store, SnapshotSearch)
    assert not isinstance(Without(sqlite_store, "search_snapshot"), SnapshotSearch)


@pytest.mark.parametrize("filters", [{}, {"k": 1}], ids=["unfiltered", "filtered"])
def test_a_hybrid_search_is_one_transaction(sqlite_store: SqliteStore, filters: Filters) -> None:
    factory = StoreFactory(sqlite_store)
    col = factory.collection()
    _fill(factory, col.id, 30, seed=1)
    ranker = HybridRanker(sqlite_store, cast(Any, SeededEmbedder()), HybridParams())
    begun = _transactions(sqlite_store)
    hits = ranker.rank("alpha beta", collection_ids=[col.id], filters=filters, top_k=10)
    assert hits, "the query matches"
    assert len(begun) == 1
    separate = HybridRanker(
        cast(Any, Without(sqlite_store, "search_snapshot")),
        cast(Any, SeededEmbedder()),
        HybridParams(),
    )
    begun.clear()
    separate.rank("alpha beta", collection_ids=[col.id], filters=filters, top_k=10)
    assert len(begun) == 4, "keyword, vector, feedback vectors, vector"


@pytest.mark.parametrize("fusion", ["adaptive", "convex", "rrf"])
def test_the_snapshot_ranks_exactly_as_the_separate_legs(
    sqlite_store: SqliteStore, fusion: Fusion
) -> None:
    factory = StoreFactory(sqlite_store)
    first, second = factory.collection(), factory.collection()
    _fill(factory, first.id, 40, seed=1)
    _fill(factory, second.id, 25, seed=2)
    params = HybridParams(fusion=fusion)
    embedder = cast(Any, SeededEmbedder())
    in_snapshot = HybridRanker(sqlite_store, embedder, params)
    separate = HybridRanker(cast(Any, Without(sqlite_store, "search_snapshot")), embedder, params)
    scopes = [[first.id], [first.id, second.id]]
    cases: list[Filters] = [{}, {"k": 1}, {"k": 99}]
    for query in QUERIES:
        for scope in scopes:
            for filters in cases:
                one = in_snapshot.rank(query, collection_ids=scope, filters=filters, top_k=10)
                two = separate.rank(query, collection_ids=scope, filters=filters, top_k=10)
                assert [(h.chunk_id, h.score) for h in one] == [
                    (h.chunk_id, h.score) for h in two
                ], (query, scope, filters)


def test_snapshot_vectors_are_the_stored_ones_in_the_order_asked(
    sqlite_store: SqliteStore,
) -> None:
    factory = StoreFactory(sqlite_store)
    searched, other = factory.collection(), factory.collection()
    mine = _fill(factory, searched.id, 5, seed=3)
    theirs = _fill(factory, other.id, 5, seed=4)
    asked = [theirs[0], mine[3], "not-an-id", mine[0], "chk_999999999"]

    def work(legs: SearchIndex) -> dict[str, Vector]:
        legs.vector_search(
            seeded_vector("q"), collection_ids=[searched.id], filters={}, limit=3
        )  # loads the searched collection's matrix; the other one is read from the table
        return legs.get_vectors(asked)

    got = sqlite_store.search_snapshot(work)
    stored = sqlite_store.get_vectors(asked)
    assert list(got) == [theirs[0], mine[3], mine[0]] == list(stored)
    for chunk_id, vector in got.items():
        assert np.array_equal(vector, stored[chunk_id])


def test_the_legs_of_one_search_see_one_state(sqlite_store: SqliteStore) -> None:
    """A document made ready while a search runs is in none of its legs, then in the
    next search's."""
    factory = StoreFactory(sqlite_store)
    col = factory.collection()
    _fill(factory, col.id, 10, seed=5)
    query = seeded_vector("omega")
    writer = open_test_store(str(sqlite_store.engine.url))
    try:
        added: list[str] = []

        def work(legs: SearchIndex) -> tuple[list[str], list[str]]:
            legs.keyword_search(["alpha"], collection_ids=[col.id], filters={}, limit=5)
            document = StoreFactory(writer).ready_doc(col.id, ["omega omega"], vectors=[query])
            added.extend(chunk.id for chunk in writer.list_chunks(document.id))
            keyword = legs.keyword_search(["omega"], collection_ids=[col.id], filters={}, limit=5)
            vector = legs.vector_search(query, collection_ids=[col.id], filters={}, limit=1)
            return [h.chunk_id for h in keyword], [h.chunk_id for h in vector]

        keyword, vector = sqlite_store.search_snapshot(work)
        assert keyword == []
        assert len(added) == 1 and added[0] not in vector
        after = sqlite_store.keyword_search(["omega"], collection_ids=[col.id], filters={}, limit=5)
        assert [h.chunk_id for h in after] == added
        nearest = sqlite_store.vector_search(query, collection_ids=[col.id], filters={}, limit=1)
        assert [h.chunk_id for h in nearest] == added
    finally:
        writer.close()
