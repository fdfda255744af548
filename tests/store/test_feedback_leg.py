"""The feedback round by re-scoring (``RAGD_HYBRID_FEEDBACK_LEG=rescore``) on each store:
where the first pass already holds every chunk in scope it ranks exactly as the second
search does, and otherwise it never returns a chunk the first pass did not find."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from ragd.domain import Filters
from ragd.retrieval.hybrid import HybridParams, HybridRanker
from ragd.retrieval.terms import keyword_terms
from tests.store.conftest import GREEK_WORDS, AnyStore, SeededEmbedder, StoreFactory

QUERIES = ["alpha beta", "kappa", "zzz unknown", "mu theta iota"]
CASES: list[Filters] = [{}, {"k": 1}]


def _fill(factory: StoreFactory, collection_id: str, documents: int) -> None:
    rng = np.random.default_rng(7)
    for i in range(documents):
        texts = [" ".join(rng.choice(GREEK_WORDS, 6)) for _ in range(2)]
        factory.ready_doc(collection_id, texts, metadata={"k": i % 3})


def _ranker(store: AnyStore, feedback_leg: str, min_depth: int) -> HybridRanker:
    params = HybridParams(feedback_leg=feedback_leg, min_depth=min_depth)  # type: ignore[arg-type]
    return HybridRanker(store, cast(Any, SeededEmbedder()), params)


def test_rescore_equals_search_when_the_first_pass_holds_the_scope(
    store: AnyStore, factory: StoreFactory
) -> None:
    col = factory.collection()
    _fill(factory, col.id, 40)  # 80 chunks, below the depth of 100
    search, rescore = _ranker(store, "search", 100), _ranker(store, "rescore", 100)
    for query in QUERIES:
        for filters in CASES:
            one = search.rank(query, collection_ids=[col.id], filters=filters, top_k=10)
            two = rescore.rank(query, collection_ids=[col.id], filters=filters, top_k=10)
            assert [h.chunk_id for h in one] == [h.chunk_id for h in two], (query, filters)
            for a, b in zip(one, two, strict=True):
                assert a.score == pytest.approx(b.score, abs=1e-5)


def test_rescore_returns_only_first_pass_chunks(store: AnyStore, factory: StoreFactory) -> None:
    col = factory.collection()
    _fill(factory, col.id, 60)  # 120 chunks, the depth 20: the first pass sees a part
    rescore = _ranker(store, "rescore", 20)
    embedder = SeededEmbedder()
    differed = 0
    for query in QUERIES:
        for filters in CASES:
            keyword = store.keyword_search(
                keyword_terms(query), collection_ids=[col.id], filters=filters, limit=20
            )
            vector = store.vector_search(
                embedder.embed_query(query), collection_ids=[col.id], filters=filters, limit=20
            )
            found = {h.chunk_id for h in keyword} | {h.chunk_id for h in vector}
            hits = rescore.rank(query, collection_ids=[col.id], filters=filters, top_k=4)
            assert hits and {h.chunk_id for h in hits} <= found, (query, filters)
            search = _ranker(store, "search", 20)
            other = search.rank(query, collection_ids=[col.id], filters=filters, top_k=4)
            differed += [h.chunk_id for h in hits] != [h.chunk_id for h in other]
    assert differed, "with a part of the scope in the first pass, the two legs can differ"
