"""The query embedding cache: a repeat is answered from memory, bounded, per model."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY

from ragd.embedding import LocalEmbedder, QueryCachingEmbedder


def cache_count(result: str) -> float:
    value = REGISTRY.get_sample_value("ragd_query_embedding_cache_total", {"result": result})
    return value or 0.0


def test_a_hit_returns_the_identical_vector(embedder: LocalEmbedder) -> None:
    cache = QueryCachingEmbedder(embedder, size=8)
    hits, misses = cache_count("hit"), cache_count("miss")
    first = cache.embed_query("causes of military suicide")
    again = cache.embed_query("  causes of   military suicide\n")  # same words, same key
    assert again is first
    assert np.array_equal(first, embedder.embed_query("causes of military suicide"))
    assert cache_count("miss") == misses + 1
    assert cache_count("hit") == hits + 1


def test_cached_vectors_cannot_be_changed_by_a_caller(embedder: LocalEmbedder) -> None:
    cache = QueryCachingEmbedder(embedder, size=8)
    vector = cache.embed_query("do goldfish grow")
    with pytest.raises(ValueError):
        vector[0] = 42.0
    moved = vector + 1.0  # arithmetic still makes new arrays, as the feedback round does
    assert not np.array_equal(moved, cache.embed_query("do goldfish grow"))


def test_least_recently_used_goes_first(embedder: LocalEmbedder) -> None:
    cache = QueryCachingEmbedder(embedder, size=2)
    a = cache.embed_query("alpha")
    cache.embed_query("beta")
    assert cache.embed_query("alpha") is a  # alpha is now the most recent
    cache.embed_query("gamma")  # evicts beta
    assert len(cache) == 2
    misses = cache_count("miss")
    assert cache.embed_query("alpha") is a
    cache.embed_query("beta")
    assert cache_count("miss") == misses + 1


def test_different_text_is_a_different_entry(embedder: LocalEmbedder) -> None:
    cache = QueryCachingEmbedder(embedder, size=8)
    assert not np.array_equal(cache.embed_query("Paris"), cache.embed_query("London"))


def test_documents_pass_through_and_the_model_is_the_inner_one(embedder: LocalEmbedder) -> None:
    cache = QueryCachingEmbedder(embedder, size=8)
    assert cache.model_name == embedder.model_name
    assert cache.dimension == 384
    assert cache.backend == "torch"
    assert cache.embed_documents(["a", "b"]).shape == (2, 384)
    assert len(cache) == 0
