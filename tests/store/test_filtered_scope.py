"""PostgreSQL under a metadata filter: how the statements size a filtered scope (the
documents' chunk counts, not the chunks), and the exact keyword leg that starts from a
small scope instead of the full-text index, which must rank exactly as the other path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from ragd.config import load_settings
from ragd.domain import Filters, FusionWeights
from ragd.store.postgres.search import keyword_sql, scope_size_ctes, vector_literal, vector_sql
from ragd.store.postgres.store import PostgresStore
from tests.databases import PostgresForTests
from tests.store.conftest import GREEK_WORDS, StoreFactory, seeded_vector

WEIGHTS = FusionWeights(
    keyword_weight=0.5, final_keyword_weight=0.5, feedback_docs=3, feedback_weight=0.5
)
RARE: Filters = {"tenant": "rare"}
COMMON: Filters = {"tenant": "common"}


@pytest.fixture
def filled(postgres: PostgresForTests) -> Iterator[tuple[str, str]]:
    """A database with one collection of 40 documents (2-4 chunks each; every tenth
    document's tenant is "rare", and every fifth has no tenant at all): its URL and the
    collection's id."""
    url = postgres.new_database()
    store = PostgresStore(url, load_settings(database_url=url))
    factory = StoreFactory(store)
    col = factory.collection()
    rng = np.random.default_rng(5)
    for i in range(40):
        texts = [" ".join(rng.choice(GREEK_WORDS, 8)) for _ in range(2 + i % 3)]
        metadata: dict[str, Any] = {"tenant": "rare" if i % 10 == 0 else "common"}
        if i % 5 == 4:
            metadata = {"other": i}
        factory.ready_doc(col.id, texts, metadata=metadata)
    store.close()
    yield url, col.id
    postgres.drop_database(url)


@pytest.fixture
def filled_store(filled: tuple[str, str]) -> Iterator[tuple[PostgresStore, str]]:
    """A store on ``filled``'s database (closed after the test) and its collection's id."""
    url, collection_id = filled
    store = PostgresStore(url, load_settings(database_url=url))
    yield store, collection_id
    store.close()


def _chunks_in_scope(store: PostgresStore, collection_id: str, filters: Filters) -> int:
    """The scope's size counted chunk by chunk, the way the statements used to."""
    found = {
        chunk.id
        for doc in store.list_documents(collection_id, status="ready", limit=500, cursor=None).items
        if all(doc.metadata.get(key) == value for key, value in filters.items())
        for chunk in store.list_chunks(doc.id)
    }
    return len(found)


def _scope_size(store: PostgresStore, collection_id: str, filters: Filters, cap: int) -> int:
    params: dict[str, Any] = {"collection_ids": [collection_id]}
    ctes = scope_size_ctes(filters, params, cap)
    sql = "WITH " + ",\n".join(ctes) + "\nSELECT chunks FROM scope_size"
    with store.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


@pytest.mark.parametrize("filters", [RARE, COMMON, {"tenant": None}, {"tenant": "nobody"}])
def test_scope_size_is_exact_below_its_cap_and_at_least_the_cap_above(
    filled_store: tuple[PostgresStore, str], filters: Filters
) -> None:
    store, collection_id = filled_store
    true_size = _chunks_in_scope(store, collection_id, filters)
    assert _scope_size(store, collection_id, filters, true_size + 1) == true_size
    if true_size:
        assert _scope_size(store, collection_id, filters, true_size) >= true_size
        assert _scope_size(store, collection_id, filters, 1) >= 1
        assert _scope_size(store, collection_id, filters, 1) < true_size or true_size == 1


def test_scope_size_leaves_out_other_collections_and_documents_not_ready(
    postgres: PostgresForTests,
) -> None:
    url = postgres.new_database()
    store = PostgresStore(url, load_settings(database_url=url))
    try:
        factory = StoreFactory(store)
        mine, other = factory.collection(), factory.collection()
        factory.ready_doc(mine.id, ["alpha beta", "gamma"], metadata={"tenant": "rare"})
        factory.ready_doc(other.id, ["alpha beta"], metadata={"tenant": "rare"})
        factory.add(mine.id, "queued alpha", metadata={"tenant": "rare"})  # not ready yet
        assert _scope_size(store, mine.id, RARE, 100) == 2
        assert _scope_size(store, other.id, RARE, 100) == 1
        both = {"collection_ids": [mine.id, other.id]}
        sql = (
            "WITH "
            + ",\n".join(scope_size_ctes(RARE, both, 100))
            + "\nSELECT chunks FROM scope_size"
        )
        with store.engine.connect() as conn:
            assert conn.execute(text(sql), both).scalar_one() == 3
    finally:
        store.close()


def _plan(store: PostgresStore, sql: str, params: dict[str, Any]) -> dict[str, Any]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql), params).scalar_one()
    plan: dict[str, Any] = rows[0]["Plan"]
    return plan


def _ran(plan: dict[str, Any], needle: str) -> bool:
    """Whether a node whose filter mentions ``needle`` ran (EXPLAIN ANALYZE loops > 0)."""
    conditions = " ".join(str(plan.get(key, "")) for key in ("Filter", "Join Filter"))
    if needle in conditions and plan.get("Actual Loops", 0) > 0:
        return True
    return any(_ran(child, needle) for child in plan.get("Plans", []))


@pytest.mark.parametrize("filters", [RARE, COMMON])
def test_a_small_filtered_scope_is_searched_from_the_scope(
    filled_store: tuple[PostgresStore, str], filters: Filters
) -> None:
    """The small-scope branch runs below ``keyword_exact_below`` and only there."""
    store, collection_id = filled_store
    size = _chunks_in_scope(store, collection_id, filters)
    for threshold, from_scope in ((size + 1, True), (size, False), (0, False)):
        sql, params = keyword_sql(
            ["alpha", "beta"], [collection_id], filters, 5, keyword_exact_below=threshold
        )
        assert _ran(_plan(store, sql, params), "ts_match_vq") is from_scope, threshold


@pytest.mark.parametrize("filters", [RARE, COMMON, {"tenant": None}])
def test_both_exact_keyword_paths_rank_alike(filled: tuple[str, str], filters: Filters) -> None:
    """From the scope (a threshold above every scope) or from the full-text index (no
    threshold): the same chunks and scores, keyword and hybrid, on both vector paths."""
    url, collection_id = filled
    rng = np.random.default_rng(8)
    queries = [list(rng.choice(GREEK_WORDS, int(rng.integers(1, 4)))) for _ in range(12)]
    queries.append(["zzz", "unknown"])
    stores = {
        (kw, vec): PostgresStore(
            url,
            load_settings(database_url=url, keyword_exact_below=kw, vector_exact_below=vec),
        )
        for kw in (100_000, 0)
        for vec in (100_000, 0)
    }
    try:
        for terms in queries:
            keyword = {
                key: s.keyword_search(
                    terms, collection_ids=[collection_id], filters=filters, limit=8
                )
                for key, s in stores.items()
            }
            vector = seeded_vector(" ".join(terms))
            hybrid = {
                key: s.hybrid_search(
                    terms,
                    vector,
                    collection_ids=[collection_id],
                    filters=filters,
                    depth=20,
                    limit=10,
                    weights=WEIGHTS,
                )
                for key, s in stores.items()
            }
            for vec in (100_000, 0):
                small, large = keyword[(100_000, vec)], keyword[(0, vec)]
                assert [h.chunk_id for h in small] == [h.chunk_id for h in large], terms
                assert [h.score for h in small] == pytest.approx([h.score for h in large])
                small, large = hybrid[(100_000, vec)], hybrid[(0, vec)]
                assert [h.chunk_id for h in small] == [h.chunk_id for h in large], terms
                assert [h.score for h in small] == pytest.approx([h.score for h in large])
            assert keyword[(100_000, 0)] or terms == ["zzz", "unknown"] or filters != COMMON
    finally:
        for s in stores.values():
            s.close()


def test_vector_path_follows_the_filtered_scope_size(
    filled_store: tuple[PostgresStore, str],
) -> None:
    """The vector leg searches exactly below ``exact_below`` (sized from the documents)
    and through HNSW from it, whatever the filter leaves."""
    store, collection_id = filled_store
    size = _chunks_in_scope(store, collection_id, RARE)
    query = seeded_vector("alpha")
    store.vector_search(query, collection_ids=[collection_id], filters=RARE, limit=3)
    for exact_below, exact in ((size + 1, True), (size, False)):
        sql, params = vector_sql(
            vector_literal(query), len(query), [collection_id], RARE, 5, exact_below=exact_below
        )
        branches = _first_union_rows(_plan(store, sql, params))
        assert (branches[0] > 0, branches[1] > 0) == (exact, not exact), exact_below


def _first_union_rows(plan: dict[str, Any]) -> list[float]:
    """The rows each branch of the plan's first UNION ALL (an Append) returned: the
    vector leg's exact branch, then its HNSW branch."""
    if plan.get("Node Type") == "Append":
        return [float(child.get("Actual Rows", 0)) for child in plan["Plans"]]
    for child in plan.get("Plans", []):
        found = _first_union_rows(child)
        if found:
            return found
    return []
