"""What only PostgreSQL has: concurrent migrations under an advisory lock, the HNSW path
of the vector leg (with a selective filter), BM25 statistics, transient-error retries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ragd.config import load_settings
from ragd.domain import FeedbackLeg, Filters
from ragd.errors import Unavailable
from ragd.retrieval.hybrid import Fusion, HybridParams, HybridRanker, HybridStore
from ragd.store.postgres.dialect import postgres_engine_url
from ragd.store.postgres.search import hybrid_sql, vector_literal
from ragd.store.postgres.store import PostgresStore
from ragd.store.retry import RetryPolicy, is_transient
from tests.databases import PostgresForTests
from tests.store.conftest import (
    GREEK_WORDS,
    AnyStore,
    SeededEmbedder,
    StoreFactory,
    Without,
    seeded_vector,
    unit,
)


def test_replicas_migrating_together_do_not_race(
    postgres: PostgresForTests, tmp_path: Path
) -> None:
    url = postgres.new_database(migrated=False)
    env = {**os.environ, "RAGD_DATABASE_URL": url, "RAGD_DATA_DIR": str(tmp_path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ragd", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    store = PostgresStore(url, load_settings(database_url=url))
    try:
        with store.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        store.close()
    postgres.drop_database(url)


@pytest.fixture
def hnsw_store(postgres: PostgresForTests) -> PostgresStore:
    """A store that always takes the HNSW path (no exact search below a threshold)."""
    url = postgres.new_database()
    return PostgresStore(url, load_settings(database_url=url, vector_exact_below=0))


def test_hnsw_path_keeps_recall_under_a_selective_filter(hnsw_store: PostgresStore) -> None:
    factory = StoreFactory(hnsw_store)
    col = factory.collection()
    rng = np.random.default_rng(7)
    for i in range(200):
        vectors = [unit(rng.standard_normal(8)) for _ in range(3)]
        factory.ready_doc(
            col.id,
            [f"doc {i} part {j}" for j in range(3)],
            vectors=vectors,
            metadata={"tenant": "rare" if i % 25 == 0 else "common"},
        )
    query = unit(rng.standard_normal(8))
    # Unfiltered: the index path agrees with exact search.
    found = hnsw_store.vector_search(query, collection_ids=[col.id], filters={}, limit=10)
    exact = [cid for cid, _ in factory.brute_force(query, [col.id], 10)]
    assert len({h.chunk_id for h in found} & set(exact)) >= 9
    # Selective (8 of 200 documents): iterative scans still fill the result.
    rare = hnsw_store.vector_search(
        query, collection_ids=[col.id], filters={"tenant": "rare"}, limit=10
    )
    assert len(rare) == 10
    rare_chunks = {
        c.id
        for doc in hnsw_store.list_documents(col.id, status="ready", limit=500, cursor=None).items
        if doc.metadata.get("tenant") == "rare"
        for c in hnsw_store.list_chunks(doc.id)
    }
    assert {h.chunk_id for h in rare} <= rare_chunks
    scores = [h.score for h in rare]
    assert scores == sorted(scores, reverse=True)
    hnsw_store.close()


def test_exact_and_index_paths_agree(postgres: PostgresForTests) -> None:
    url = postgres.new_database()
    exact_store = PostgresStore(url, load_settings(database_url=url))
    index_store = PostgresStore(url, load_settings(database_url=url, vector_exact_below=0))
    try:
        factory = StoreFactory(exact_store)
        col = factory.collection()
        for i in range(30):
            factory.ready_doc(col.id, [f"text {i}"], vectors=[seeded_vector(f"v{i}")])
        query = seeded_vector("query")
        one = exact_store.vector_search(query, collection_ids=[col.id], filters={}, limit=5)
        two = index_store.vector_search(query, collection_ids=[col.id], filters={}, limit=5)
        assert [h.chunk_id for h in one] == [h.chunk_id for h in two]
        assert [round(h.score, 5) for h in one] == [round(h.score, 5) for h in two]
    finally:
        exact_store.close()
        index_store.close()


def test_bm25_prefers_rare_terms(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    common = [factory.ready_doc(col.id, [f"common words number {i}"]) for i in range(20)]
    rare = factory.ready_doc(col.id, ["common zeppelin"])
    hits = store.keyword_search(
        ["common", "zeppelin"], collection_ids=[col.id], filters={}, limit=5
    )
    assert hits[0].chunk_id == store.list_chunks(rare.id)[0].id
    assert len(common) == 20
    # Statistics follow deletes.
    store.delete_document(rare.id)
    if store.dialect != "postgresql":
        return
    with store.engine.connect() as conn:
        zeppelin = conn.execute(
            text("SELECT df FROM keyword_terms WHERE lexeme = 'zeppelin'")
        ).all()
        stats = conn.execute(
            text("SELECT chunks FROM keyword_stats WHERE collection_id = :c"), {"c": col.id}
        ).scalar_one()
    assert zeppelin == []
    assert stats == 20


def test_transient_errors_are_retried_until_the_deadline() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        return "ok"

    assert RetryPolicy(deadline_s=5).run(flaky) == "ok"
    assert len(calls) == 3

    def down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with pytest.raises(Unavailable):
        RetryPolicy(deadline_s=0.2).run(down)
    assert is_transient(OperationalError("x", {}, Exception("gone")))
    assert not is_transient(ValueError("not a database error"))


def test_postgres_urls_use_psycopg() -> None:
    assert postgres_engine_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert postgres_engine_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert postgres_engine_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize("feedback_leg", ["search", "rescore"])
@pytest.mark.parametrize("fusion", ["adaptive", "convex"])
@pytest.mark.parametrize("exact_below", [20_000, 0], ids=["exact", "hnsw"])
def test_one_statement_hybrid_ranks_as_the_python_fusion(
    postgres: PostgresForTests, exact_below: int, fusion: Fusion, feedback_leg: FeedbackLeg
) -> None:
    url = postgres.new_database()
    store = PostgresStore(url, load_settings(database_url=url, vector_exact_below=exact_below))
    try:
        factory = StoreFactory(store)
        col = factory.collection()
        rng = np.random.default_rng(1)
        for i in range(60):
            texts = [" ".join(rng.choice(GREEK_WORDS, 6)) for _ in range(2)]
            factory.ready_doc(col.id, texts, metadata={"k": i % 3})
        assert isinstance(store, HybridStore)
        embedder: Any = SeededEmbedder()
        # A depth below the 120 chunks: the feedback leg is a part of the collection.
        params = HybridParams(fusion=fusion, feedback_leg=feedback_leg, min_depth=30)
        in_sql = HybridRanker(store, embedder, params)
        in_python = HybridRanker(cast(Any, Without(store, "hybrid_search")), embedder, params)
        for query in ["alpha beta", "kappa", "zzz unknown", "mu theta iota"]:
            cases: list[Filters] = [{}, {"k": 1}]
            for filters in cases:
                one = in_sql.rank(query, collection_ids=[col.id], filters=filters, top_k=10)
                two = in_python.rank(query, collection_ids=[col.id], filters=filters, top_k=10)
                assert [h.chunk_id for h in one] == [h.chunk_id for h in two[:10]]
                for a, b in zip(one, two, strict=False):
                    assert a.score == pytest.approx(b.score, abs=1e-6)
    finally:
        store.close()


def _hnsw_scans(plan: dict[str, Any]) -> int:
    """How many nodes of an EXPLAIN (FORMAT JSON) plan scan an HNSW index."""
    own = str(plan.get("Index Name", "")).startswith("ix_chunks_embedding_hnsw")
    return int(own) + sum(_hnsw_scans(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize(("feedback_leg", "scans"), [("search", 2), ("rescore", 1)])
def test_rescore_plans_one_nearest_neighbour_search(
    hnsw_store: PostgresStore, feedback_leg: FeedbackLeg, scans: int
) -> None:
    """What the re-score saves: the statement's plan holds one HNSW scan, not two."""
    factory = StoreFactory(hnsw_store)
    col = factory.collection()
    factory.ready_doc(col.id, ["alpha beta", "gamma delta"])
    weights = HybridParams(feedback_leg=feedback_leg).weights
    query = SeededEmbedder().embed_query("alpha")
    hnsw_store.hybrid_search(
        ["alpha"], query, collection_ids=[col.id], filters={}, depth=10, limit=5, weights=weights
    )  # creates the index of this dimension
    sql, params = hybrid_sql(
        ["alpha"],
        vector_literal(query),
        len(query),
        [col.id],
        {},
        depth=10,
        limit=5,
        weights=weights,
        exact_below=0,
    )
    with hnsw_store.engine.connect() as conn:
        plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + sql), params).scalar_one()
    assert _hnsw_scans(plan[0]["Plan"]) == scans
    hnsw_store.close()


@pytest.mark.parametrize("workers", [0, 1, -1])
def test_search_statements_run_with_the_configured_parallel_workers(
    postgres: PostgresForTests, workers: int
) -> None:
    """A ranking statement sees ``RAGD_SEARCH_PARALLEL_WORKERS`` (-1: the server's
    setting), for its own transaction only."""
    url = postgres.new_database()
    settings = load_settings(database_url=url, search_parallel_workers=workers)
    store = PostgresStore(url, settings)
    show = text("SELECT current_setting('max_parallel_workers_per_gather')")
    try:
        with store.engine.connect() as conn:
            server = int(conn.execute(show).scalar_one())
        seen = "SELECT 1 AS id, current_setting('max_parallel_workers_per_gather')::float8 AS score"
        for generic_plan in (False, True):
            (hit,) = store._index.ranked(seen, {}, generic_plan=generic_plan)
            assert hit.score == (server if workers < 0 else workers)
        with store.engine.connect() as conn:
            assert int(conn.execute(show).scalar_one()) == server
    finally:
        store.close()
