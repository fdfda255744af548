"""The query embedded beside the keyword leg: same ranking, the caller's context, its
errors, and no helper thread for a query the cache already holds."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy.pool import QueuePool

from ragd.domain import Vector
from ragd.embedding.query_cache import QueryCachingEmbedder
from ragd.errors import EmbeddingError
from ragd.retrieval.hybrid import HybridParams, HybridRanker
from ragd.retrieval.query_vector import embed_beside
from ragd.store.sqlite.store import SqliteStore
from tests.store.conftest import StoreFactory, open_test_store, seeded_vector

REQUEST = contextvars.ContextVar("request", default="none")


class _RecordingEmbedder:
    """Seeded vectors; remembers which thread and context asked, or fails on demand."""

    model_name = "test-model"
    dimension = 8

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    def embed_query(self, text: str) -> Vector:
        self.calls.append((threading.current_thread().name, REQUEST.get()))
        if self.fail:
            raise EmbeddingError("embedding model is not loaded")
        return seeded_vector(text)

    def embed_documents(self, texts: Any) -> Any:
        return np.stack([seeded_vector(t) for t in texts])

    def start_loading(self) -> None:
        """Nothing to load."""

    def check(self) -> None:
        """Always ready."""


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[SqliteStore, str]]:
    store = open_test_store(f"sqlite:///{tmp_path / 'ragd.db'}")
    assert isinstance(store, SqliteStore)
    store.migrate()
    factory = StoreFactory(store)
    col = factory.collection()
    rng = np.random.default_rng(4)
    words = ["otter", "heron", "grebe", "stoat", "vole", "finch", "wren", "lynx"]
    for _ in range(30):
        factory.ready_doc(col.id, [" ".join(rng.choice(words, 5)) for _ in range(2)])
    yield store, col.id
    store.close()


def test_beside_and_in_turn_rank_the_same(filled: tuple[SqliteStore, str]) -> None:
    store, col = filled
    embedder = cast(Any, _RecordingEmbedder())
    beside = HybridRanker(store, embedder, HybridParams())
    in_turn = HybridRanker(store, embedder, HybridParams(embed_beside_keyword=False))
    for query in ["otter heron", "wren", "nothing here"]:
        one = beside.rank(query, collection_ids=[col], filters={}, top_k=10)
        two = in_turn.rank(query, collection_ids=[col], filters={}, top_k=10)
        assert [(h.chunk_id, h.score) for h in one] == [(h.chunk_id, h.score) for h in two]


def test_the_helper_thread_runs_in_the_callers_context(filled: tuple[SqliteStore, str]) -> None:
    store, col = filled
    embedder = _RecordingEmbedder()
    ranker = HybridRanker(store, cast(Any, embedder), HybridParams())
    token = REQUEST.set("req-42")
    try:
        ranker.rank("otter", collection_ids=[col], filters={}, top_k=5)
    finally:
        REQUEST.reset(token)
    [(thread, request)] = embedder.calls
    assert thread.startswith("ragd-query-embedding") and request == "req-42"


def test_an_embedding_failure_reaches_the_caller_and_ends_the_transaction(
    filled: tuple[SqliteStore, str],
) -> None:
    store, col = filled
    ranker = HybridRanker(store, cast(Any, _RecordingEmbedder(fail=True)), HybridParams())
    with pytest.raises(EmbeddingError, match="not loaded"):
        ranker.rank("otter", collection_ids=[col], filters={}, top_k=5)
    pool = store.engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedout() == 0
    working = HybridRanker(store, cast(Any, _RecordingEmbedder()), HybridParams())
    assert working.rank("otter", collection_ids=[col], filters={}, top_k=5)


def test_a_cached_query_is_embedded_on_the_callers_thread() -> None:
    inner = _RecordingEmbedder()
    cached = QueryCachingEmbedder(cast(Any, inner), size=10)
    first = embed_beside(cached, "heron")()
    assert cached.holds("heron") and cached.holds("  heron ") and not cached.holds("wren")
    again = embed_beside(cached, "heron")()
    assert np.array_equal(first, again)
    assert [thread for thread, _ in inner.calls] == [inner.calls[0][0]]
    assert inner.calls[0][0].startswith("ragd-query-embedding"), "the miss went to a helper"
