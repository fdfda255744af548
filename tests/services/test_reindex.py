"""Reindexing a collection as a job, on both databases, through ragd's own container and
runner thread: search answers from the old chunks until the switch, a cancel leaves the
old index as it was, documents ingested meanwhile join the new generation, and a change
of model and dimension (the local model to an OpenAI-compatible one, served by the
protocol-level fake) switches the collection whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import Collection, JobInfo
from ragd.embedding import LocalEmbedder
from ragd.errors import Conflict, InvalidInput, NotFound
from ragd.services.reindex import generation_id
from ragd.services.search import SearchMode
from tests.embedding.fake_embeddings import DIM, FakeEmbeddings
from tests.services.reindex_helpers import QUERIES, Gate, document_text

WAIT_S = 120  # an upper bound for slow machines, never a speed assertion
DOCUMENTS = 8
MODEL = "fake-embed"


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def fake(gate: Gate) -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings(gate) as server:
        yield server


MakeContainer = Callable[..., Container]


@pytest.fixture
def make_container(database_url: str, tmp_path: Path) -> Iterator[MakeContainer]:
    made: list[Container] = []

    def make(fake: FakeEmbeddings | None = None, embedder: Any = None, **extra: Any) -> Container:
        remote = {} if fake is None else {"embedding_base_url": fake.base_url}
        settings = load_settings(
            database_url=database_url,
            data_dir=tmp_path,
            inprocess_worker=False,
            embedding_model=MODEL if fake is not None else "all-MiniLM-L6-v2",
            llm_max_retries=0,
            llm_timeout_s=300,
            worker_claim_batch=2,
            worker_retry_base_s=0,
            **remote,
            **extra,
        )
        container = Container(settings, embedder=embedder)
        container.store.migrate()
        made.append(container)
        return container

    yield make
    for container in made:
        container.close()


def engine(container: Container) -> Engine:
    found: Engine = container.store.engine  # type: ignore[attr-defined]
    return found


def filled(container: Container, count: int = DOCUMENTS) -> Collection:
    collection = container.collections.create("reindexed")
    for i in range(count):
        container.documents.add_text(collection.id, document_text(i))
    container.new_worker().run_until_idle()
    return container.collections.get(collection.id)


def answers(container: Container, collection: Collection) -> dict[tuple[str, str], list[Any]]:
    """Every query in every mode: hit ids, scores and texts."""
    found: dict[tuple[str, str], list[Any]] = {}
    modes: tuple[SearchMode, ...] = ("hybrid", "keyword", "vector")
    for query in QUERIES:
        for mode in modes:
            hits = container.search.search(query, collections=[collection.id], mode=mode, top_k=10)
            found[(query, mode)] = [(h.chunk_id, round(h.score, 6), h.text) for h in hits]
    return found


def chunk_ids(container: Container, collection: Collection) -> set[str]:
    with engine(container).connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM chunks WHERE collection_id = :c"), {"c": collection.id}
        ).scalars()
        return {f"chk_{row}" for row in rows}


def generation_chunks(container: Container) -> int:
    with engine(container).connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM chunks WHERE collection_id LIKE 'gen_%'")
            ).scalar_one()
        )


def wait_for(container: Container, job_id: str, ready: Callable[[JobInfo], bool]) -> JobInfo:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = container.jobs.get(job_id)
        if ready(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {container.jobs.get(job_id)}")


def test_search_answers_from_the_old_chunks_until_the_switch(
    make_container: MakeContainer, fake: FakeEmbeddings, gate: Gate
) -> None:
    container = make_container(fake)
    collection = filled(container)
    before, old_ids = answers(container, collection), chunk_ids(container, collection)
    assert all(before.values())
    gate.close_after(1)  # the second batch of documents waits
    job = container.reindex.start(collection.name, actor="local", chunk_size=16)
    assert job.status == "queued" and job.params == {"model": MODEL, "chunk_max_tokens": 16}
    container.start_job_runner()
    assert gate.blocked.wait(WAIT_S)
    try:
        built = container.store.reindex_progress(collection.id, generation=generation_id(job.id))
        assert built == (2, DOCUMENTS)
        assert generation_chunks(container) > 0
        assert answers(container, collection) == before  # identical: scores and texts too
        assert chunk_ids(container, collection) == old_ids
        running = container.jobs.get(job.id)
        assert running.status == "running" and running.progress_total == DOCUMENTS
    finally:
        gate.open()
    done = wait_for(container, job.id, lambda j: j.finished)
    assert done.status == "succeeded", done.error
    switched = container.collections.get(collection.id)
    assert done.result == {
        "documents": DOCUMENTS,
        "chunks": switched.chunk_count,
        "embedding_model": MODEL,
        "embedding_dim": DIM,
        "chunk_max_tokens": 16,
    }
    assert switched.chunk_max_tokens == 16 and switched.chunk_count > collection.chunk_count
    new_ids = chunk_ids(container, collection)
    assert new_ids.isdisjoint(old_ids) and generation_chunks(container) == 0
    after = answers(container, collection)
    assert after != before and all(after.values())
    for hits in after.values():
        assert {hit[0] for hit in hits} <= new_ids
    for document in container.store.list_documents(
        collection.id, status=None, limit=100, cursor=None
    ).items:
        chunks = container.store.list_chunks(document.id)
        assert [c.ordinal for c in chunks] == list(range(document.chunk_count))
        assert all(c.token_count <= 16 for c in chunks)


def test_cancel_leaves_the_old_index_untouched(
    make_container: MakeContainer, fake: FakeEmbeddings, gate: Gate
) -> None:
    container = make_container(fake)
    collection = filled(container)
    before, old_ids = answers(container, collection), chunk_ids(container, collection)
    gate.close_after(1)
    job = container.reindex.start(collection.id, actor="local", chunk_size=16)
    container.start_job_runner()
    assert gate.blocked.wait(WAIT_S)
    asked = container.jobs.cancel(job.id)
    assert asked.status == "running" and asked.cancel_requested
    gate.open()
    done = wait_for(container, job.id, lambda j: j.finished)
    assert done.status == "cancelled"
    assert generation_chunks(container) == 0
    assert chunk_ids(container, collection) == old_ids
    assert answers(container, collection) == before
    unchanged = container.collections.get(collection.id)
    assert unchanged.chunk_max_tokens is None and unchanged.chunk_count == collection.chunk_count


def test_documents_ingested_during_a_reindex_join_the_new_generation(
    make_container: MakeContainer, fake: FakeEmbeddings, gate: Gate
) -> None:
    container = make_container(fake)
    collection = filled(container, count=4)
    gate.close_after(1)
    job = container.reindex.start(collection.id, actor="local", chunk_size=16)
    container.start_job_runner()
    assert gate.blocked.wait(WAIT_S)
    try:
        late, created = container.documents.add_text(
            collection.id, "A late note about the harbour."
        )
        assert created
        assert container.new_worker().run_until_idle() == 1  # one text: not held
        assert container.documents.get(late.id).status == "ready"
        ingested = {c.id for c in container.store.list_chunks(late.id)}
    finally:
        gate.open()
    done = wait_for(container, job.id, lambda j: j.finished)
    assert done.status == "succeeded", done.error
    assert done.result is not None and done.result["documents"] == 5
    rechunked = {c.id for c in container.store.list_chunks(late.id)}
    assert rechunked and rechunked.isdisjoint(ingested)  # built again, in the generation
    hits = container.search.search("late note", collections=[collection.id], mode="keyword")
    assert hits and hits[0].document_id == late.id


def test_model_and_dimension_change(
    make_container: MakeContainer, fake: FakeEmbeddings, embedder: LocalEmbedder
) -> None:
    local = make_container(embedder=embedder)
    collection = filled(local, count=3)
    assert (collection.embedding_model, collection.embedding_dim) == ("all-MiniLM-L6-v2", 384)
    remote = make_container(fake)
    # The configured model can only be searched once the collection was moved to it.
    with pytest.raises(InvalidInput, match="use mode=keyword"):
        remote.search.search("harbour", collections=[collection.id], mode="hybrid")
    with pytest.raises(InvalidInput, match="RAGD_EMBEDDING_MODEL"):
        remote.reindex.start(collection.id, actor="local", model="another-model")
    job = remote.reindex.start(collection.id, actor="local")
    with pytest.raises(Conflict):
        remote.reindex.start(collection.id, actor="local")
    assert remote.jobs.run_once("host:1:test")
    done = remote.jobs.get(job.id)
    assert done.status == "succeeded", done.error
    switched = remote.collections.get(collection.id)
    assert (switched.embedding_model, switched.embedding_dim) == (MODEL, DIM)
    hits = remote.search.search("harbour lighthouse", collections=[collection.id], mode="hybrid")
    assert hits and all(h.collection_id == collection.id for h in hits)
    with pytest.raises(InvalidInput, match="use mode=keyword"):
        local.search.search("harbour", collections=[collection.id], mode="vector")
    if remote.store.dialect == "postgresql":
        with engine(remote).connect() as conn:
            names = set(conn.execute(text("SELECT indexname FROM pg_indexes")).scalars())
        assert f"ix_chunks_embedding_hnsw_{DIM}" in names
    # A worker configured with another model refuses the job instead of mixing models.
    again = remote.reindex.start(collection.id, actor="local")
    assert local.jobs.run_once("host:2:test")
    refused = local.jobs.get(again.id)
    assert refused.status == "failed" and refused.error is not None
    assert "embeds with 'all-MiniLM-L6-v2', not 'fake-embed'" in refused.error


def test_start_checks_its_input(make_container: MakeContainer, fake: FakeEmbeddings) -> None:
    container = make_container(fake)
    collection = filled(container, count=1)
    for size in (15, 8193):
        with pytest.raises(InvalidInput, match="chunk_size"):
            container.reindex.start(collection.id, actor="local", chunk_size=size)
    with pytest.raises(NotFound):
        container.reindex.start("col_missing", actor="local")
    with pytest.raises(NotFound):
        container.reindex.start(collection.id, actor="k", allowed=frozenset({"col_other"}))
    for size in (16, 8192):
        job = container.reindex.start(collection.id, actor="local", chunk_size=size)
        container.jobs.cancel(job.id)
