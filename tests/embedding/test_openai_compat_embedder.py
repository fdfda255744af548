"""The OpenAI-compatible embedder against a real HTTP server speaking /v1/embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import build_embedder
from ragd.embedding.openai_compat import OpenAICompatEmbedder
from ragd.embedding.query_cache import QueryCachingEmbedder
from ragd.errors import EmbeddingError
from tests.embedding.fake_embeddings import DIM, FakeEmbeddings

SECRET = "sk-embed-secret-123456"


@pytest.fixture
def fake() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings() as server:
        yield server


def test_embeds_in_batches_normalized(fake: FakeEmbeddings) -> None:
    embedder = OpenAICompatEmbedder(
        base_url=fake.base_url, model="text-embed", api_key=SECRET, batch_size=3, max_retries=0
    )
    matrix = embedder.embed_documents([f"text number {i}" for i in range(7)])
    assert matrix.shape == (7, DIM)
    assert matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert [len(r["body"]["input"]) for r in fake.requests] == [3, 3, 1]
    assert fake.requests[0]["body"]["model"] == "text-embed"
    assert fake.requests[0]["authorization"] == f"Bearer {SECRET}"
    assert embedder.dimension == DIM


def test_failures_are_embedding_errors_without_secrets(fake: FakeEmbeddings) -> None:
    fake.fail_status = 500
    embedder = OpenAICompatEmbedder(
        base_url=fake.base_url, model="m", api_key=SECRET, max_retries=0
    )
    with pytest.raises(EmbeddingError) as caught:
        embedder.embed_query("hello")
    assert caught.value.detail == "embedding request failed: HTTP 500"
    embedder.start_loading()
    embedder._probed.wait(10)
    with pytest.raises(EmbeddingError):
        embedder.check()


def test_ingest_and_search_through_a_remote_embedder(fake: FakeEmbeddings, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        inprocess_worker=False,
        embedding_base_url=fake.base_url,
        embedding_model="text-embed",
        embedding_api_key=SECRET,
    )
    embedder = build_embedder(settings)
    # The configured embedder sits behind the query cache.
    assert isinstance(embedder, QueryCachingEmbedder)
    assert isinstance(embedder.inner, OpenAICompatEmbedder)
    container = Container(settings, embedder=embedder)
    container.store.migrate()
    try:
        collection = container.collections.create("remote")
        assert collection.embedding_dim == DIM
        assert collection.embedding_model == "text-embed"
        docs = {
            "bridge": "Tower Bridge crosses the river Thames in London.",
            "coffee": "Espresso is brewed from finely ground coffee beans.",
        }
        ids = {
            key: container.documents.add_text(collection.id, text)[0].id
            for key, text in docs.items()
        }
        container.new_worker().run_until_idle()
        hits = container.search.search("coffee beans espresso", mode="vector", top_k=1)
        assert hits[0].document_id == ids["coffee"]
        hybrid = container.search.search("Thames bridge", top_k=1)
        assert hybrid[0].document_id == ids["bridge"]
    finally:
        container.close()


def test_blank_or_bad_base_url_settings() -> None:
    assert load_settings(embedding_base_url="  ").embedding_base_url is None
    with pytest.raises(Exception, match="RAGD_EMBEDDING_BASE_URL"):
        load_settings(embedding_base_url="ftp://x")
