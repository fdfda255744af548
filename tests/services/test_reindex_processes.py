"""A reindex in real ``ragd worker`` processes: killed with SIGKILL mid-job, the job is
resumed by another worker from the documents not yet done and completes.

The embedding server is the protocol-level fake in this process, with a gate that holds
the reindex's second batch of documents: the first worker is killed exactly while it
waits there, with the first batch already in the new generation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import JobInfo
from ragd.services.reindex import generation_id
from tests.embedding.fake_embeddings import DIM, FakeEmbeddings
from tests.services.reindex_helpers import Gate, document_text

WAIT_S = 180  # an upper bound for slow machines, never a speed assertion
DOCUMENTS = 6


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def fake(gate: Gate) -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings(gate) as server:
        yield server


@pytest.fixture
def env(database_url: str, tmp_path: Path, fake: FakeEmbeddings) -> dict[str, str]:
    return {
        **os.environ,
        "RAGD_DATABASE_URL": database_url,
        "RAGD_DATA_DIR": str(tmp_path),
        "RAGD_EMBEDDING_BASE_URL": fake.base_url,
        "RAGD_EMBEDDING_MODEL": "fake-embed",
        "RAGD_LLM_TIMEOUT_S": "300",
        "RAGD_LLM_MAX_RETRIES": "0",
        "RAGD_WORKER_CLAIM_BATCH": "2",
        "RAGD_WORKER_LEASE_S": "60",
        "RAGD_WORKER_POLL_INTERVAL_S": "0.1",
        "RAGD_SHUTDOWN_GRACE_S": "20",
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture
def container(env: dict[str, str]) -> Iterator[Container]:
    settings = load_settings(
        database_url=env["RAGD_DATABASE_URL"],
        data_dir=env["RAGD_DATA_DIR"],
        embedding_base_url=env["RAGD_EMBEDDING_BASE_URL"],
        embedding_model="fake-embed",
        llm_max_retries=0,
        inprocess_worker=False,
    )
    built = Container(settings)
    built.store.migrate()
    yield built
    built.close()


class Worker:
    """One ``ragd worker`` process with its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ragd", "worker"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(WAIT_S)


def engine(container: Container) -> Engine:
    found: Engine = container.store.engine  # type: ignore[attr-defined]
    return found


def ids_in(container: Container, collection_id: str) -> set[int]:
    with engine(container).connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM chunks WHERE collection_id = :c"), {"c": collection_id}
        )
        return set(rows.scalars())


def finished(container: Container, job_id: str, worker: Worker) -> JobInfo:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = container.jobs.get(job_id)
        if job.finished:
            return job
        assert worker.process.poll() is None, worker.log()
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish:\n{worker.log()}")


def test_killed_worker_reindex_resumes_elsewhere(
    container: Container,
    env: dict[str, str],
    gate: Gate,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    collection = container.collections.create("processes")
    for i in range(DOCUMENTS):
        container.documents.add_text(collection.id, document_text(i))
    container.new_worker().run_until_idle()
    old_ids = ids_in(container, collection.id)
    gate.close_after(1)
    job = container.reindex.start(collection.id, actor="local", chunk_size=16)

    first = Worker(env, tmp_path / "worker-first.log")
    workers.append(first)
    assert gate.blocked.wait(WAIT_S), first.log()
    first_batch = ids_in(container, generation_id(job.id))
    assert first_batch  # two documents are in the new generation already
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(WAIT_S)
    assert container.jobs.get(job.id).status == "running"  # the dead worker's lease

    second = Worker(env, tmp_path / "worker-second.log")
    workers.append(second)
    gate.open()
    done = finished(container, job.id, second)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert done.result is not None and done.result["documents"] == DOCUMENTS
    assert done.result["embedding_dim"] == DIM and done.result["chunk_max_tokens"] == 16
    final = ids_in(container, collection.id)
    assert first_batch <= final  # resumed: the first worker's documents were not redone
    assert final.isdisjoint(old_ids)
    assert ids_in(container, generation_id(job.id)) == set()
    for document in container.store.list_documents(
        collection.id, status=None, limit=100, cursor=None
    ).items:
        chunks = container.store.list_chunks(document.id)
        assert [c.ordinal for c in chunks] == list(range(document.chunk_count)) and chunks
    hits = container.search.search("harbour lighthouse", collections=[collection.id])
    assert hits and {int(h.chunk_id.removeprefix("chk_")) for h in hits} <= final

    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(WAIT_S) == 0
