"""``ragd worker`` as real processes on a shared database: a crash, a lease, a shutdown.

Two workers share a queue; one is killed with SIGKILL while it holds leases. The survivor
started before the kill, so the same-host orphan check (which runs when a worker starts)
cannot rescue the dead worker's documents: only their leases expiring can. Every
document must still end ``ready`` exactly once, with no duplicate or orphaned chunk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import Collection
from ragd.embedding import LocalEmbedder

DOCUMENTS = 200
WAIT_S = 120  # an upper bound for slow machines, never a speed assertion

SUBJECTS = (
    "lighthouse",
    "orchard",
    "glacier",
    "bakery",
    "observatory",
    "harbour",
    "vineyard",
    "library",
    "foundry",
    "apiary",
)
TASKS = (
    "opens before sunrise",
    "keeps a careful ledger",
    "repairs the old roof",
    "trains two apprentices",
    "sells its goods at the market",
    "welcomes school visits",
    "measures the rainfall",
    "rebuilds the stone wall",
    "hosts a winter festival",
    "records every storm",
)


def document_text(i: int) -> str:
    """Distinct short Markdown; every fifth has a second section, so a second chunk (the
    model time, not the document count, is what makes this test slow)."""
    subject, task = SUBJECTS[i % len(SUBJECTS)], TASKS[(i // len(SUBJECTS)) % len(TASKS)]
    text = f"# The {subject} number {i}\n\nThe {subject} number {i} {task}."
    if i % 5 == 0:
        text += f"\n\n## Visiting hours\n\nVisitors come on day {i % 7} of every week."
    return text


@dataclass
class Queue:
    container: Container
    collection: Collection
    document_ids: list[str]
    env: dict[str, str]
    logs: Path

    @property
    def engine(self) -> Engine:
        engine: Engine = self.container.store.engine  # type: ignore[attr-defined]
        return engine


MakeQueue = Callable[..., Queue]


@pytest.fixture
def make_queue(database_url: str, tmp_path: Path, embedder: LocalEmbedder) -> Iterator[MakeQueue]:
    containers: list[Container] = []

    def make(count: int, text_of: Callable[[int], str] = document_text) -> Queue:
        settings = load_settings(
            database_url=database_url, data_dir=tmp_path, inprocess_worker=False
        )
        container = Container(settings, embedder=embedder)
        containers.append(container)
        container.store.migrate()
        collection = container.collections.create("processes")
        ids = []
        for i in range(count):
            document, created = container.documents.add_text(collection.id, text_of(i))
            assert created and document.status == "queued"
            ids.append(document.id)
        env = {
            **os.environ,
            "RAGD_DATABASE_URL": database_url,
            "RAGD_DATA_DIR": str(tmp_path),
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "RAGD_LOG_FORMAT": "json",
            "RAGD_LOG_LEVEL": "INFO",
            "RAGD_WORKER_CLAIM_BATCH": "4",
            "RAGD_WORKER_EMBED_BATCH": "16",
            "RAGD_WORKER_LEASE_S": "5",
            "RAGD_WORKER_POLL_INTERVAL_S": "0.1",
            "RAGD_WORKER_RETRY_BASE_S": "0",
            "RAGD_SHUTDOWN_GRACE_S": "20",
        }
        return Queue(container, collection, ids, env, tmp_path)

    yield make
    for container in containers:
        container.close()


class Worker:
    """One ``ragd worker`` process with its output in a log file."""

    def __init__(self, queue: Queue, name: str, *args: str) -> None:
        self.log_path = queue.logs / f"worker-{name}.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ragd", "worker", *args],
                env=queue.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def has_processed(self) -> bool:
        return '"document processed"' in self.log()

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=30)


def statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM documents GROUP BY status"))
        return Counter({status: int(n) for status, n in rows})


def held_by(engine: Engine, pid: int) -> set[str]:
    """Documents a process holds a lease on (owners are ``host:pid:nonce``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, lease_owner FROM documents WHERE status = 'processing'")
        ).all()
    return {row.id for row in rows if row.lease_owner.split(":")[1] == str(pid)}


def wait_until(condition: Callable[[], bool], what: str, *workers: Worker) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        for worker in workers:
            assert worker.alive(), f"worker exited early:\n{worker.log()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def assert_consistent(engine: Engine, document_ids: list[str]) -> None:
    """Every document ready once: ordinals 0..n-1, no duplicate, no orphan chunk."""
    with engine.connect() as conn:
        documents = {
            row.id: row
            for row in conn.execute(
                text("SELECT id, status, chunk_count, lease_owner FROM documents")
            )
        }
        pairs = conn.execute(text("SELECT document_id, ordinal FROM chunks")).all()
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id "
                "WHERE d.id IS NULL"
            )
        ).scalar_one()
    assert sorted(documents) == sorted(document_ids)
    assert {row.status for row in documents.values()} == {"ready"}
    assert all(row.lease_owner is None for row in documents.values())
    assert orphans == 0
    counted = Counter((row.document_id, row.ordinal) for row in pairs)
    assert [pair for pair, n in counted.items() if n > 1] == []
    ordinals: dict[str, list[int]] = defaultdict(list)
    for row in pairs:
        ordinals[row.document_id].append(row.ordinal)
    assert Counter(row.chunk_count for row in documents.values()) == {
        1: len(document_ids) * 4 // 5,
        2: len(document_ids) // 5,
    }
    for document_id, row in documents.items():
        assert sorted(ordinals[document_id]) == list(range(row.chunk_count)), document_id
    assert len(pairs) == sum(row.chunk_count for row in documents.values())


def attempts_of(engine: Engine, document_ids: set[str]) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, attempts FROM documents")).all()
    return {row.id: int(row.attempts) for row in rows if row.id in document_ids}


def test_killed_worker_jobs_are_finished_by_the_survivor(make_queue: MakeQueue) -> None:
    queue: Queue = make_queue(DOCUMENTS)
    engine = queue.engine
    workers = [Worker(queue, "a"), Worker(queue, "b")]
    try:
        # Both have processed a document, so both are past their start-up orphan check.
        wait_until(
            lambda: all(w.has_processed() for w in workers), "both workers process", *workers
        )
        victim, held = None, set[str]()
        while victim is None:
            for worker in workers:
                worker.signal(signal.SIGSTOP)  # frozen, so its leases stay as we read them
                held = held_by(engine, worker.pid)
                if held:
                    victim = worker
                    break
                worker.signal(signal.SIGCONT)
            assert statuses(engine)["ready"] < DOCUMENTS, "all done before the kill"
            time.sleep(0.01)
        victim.signal(signal.SIGKILL)
        victim.process.wait(timeout=30)
        survivor = next(w for w in workers if w is not victim)
        assert statuses(engine)["ready"] < DOCUMENTS

        wait_until(
            lambda: statuses(engine)["ready"] == DOCUMENTS, "every document is ready", survivor
        )
        assert_consistent(engine, queue.document_ids)
        # The victim's documents were claimed again only after their leases expired.
        assert all(n == 2 for n in attempts_of(engine, held).values())

        subject, task = SUBJECTS[7], TASKS[3]
        hits = queue.container.search.search(
            f"The {subject} number 37 {task}", collections=[queue.collection.id], top_k=3
        )
        assert hits and hits[0].document_id == queue.document_ids[37]

        survivor.signal(signal.SIGTERM)
        assert survivor.process.wait(timeout=WAIT_S) == 0, survivor.log()[-3000:]
        log = survivor.log()
        assert "worker pool started" in log and "worker pool stopped" in log
    finally:
        for worker in workers:
            worker.stop()


def long_text(i: int) -> str:
    """A document of many short sections: many embedding slices, so a stop lands mid-way."""
    sections = "\n\n".join(
        f"## Section {s}\n\nEntry {s} of report {i} notes {SUBJECTS[s % 10]} work."
        for s in range(12)
    )
    return f"# Report {i}\n\n{sections}"


def test_sigterm_while_busy_finishes_or_releases_every_job(make_queue: MakeQueue) -> None:
    queue: Queue = make_queue(40, long_text)
    engine = queue.engine
    worker = Worker(queue, "busy", "--concurrency", "2")
    try:
        held: set[str] = set()
        while not held:
            wait_until(lambda: bool(held_by(engine, worker.pid)), "the worker is busy", worker)
            worker.signal(signal.SIGSTOP)
            held = held_by(engine, worker.pid)
            if not held:
                worker.signal(signal.SIGCONT)
        worker.signal(signal.SIGTERM)  # delivered when it continues, mid-work
        worker.signal(signal.SIGCONT)
        assert worker.process.wait(timeout=WAIT_S) == 0, worker.log()[-3000:]
    finally:
        worker.stop()

    with engine.connect() as conn:
        rows = {
            row.id: row
            for row in conn.execute(
                text("SELECT id, status, attempts, lease_owner, chunk_count FROM documents")
            )
        }
        chunks = Counter(
            row.document_id for row in conn.execute(text("SELECT document_id FROM chunks"))
        )
    assert {row.status for row in rows.values()} <= {"ready", "queued"}
    assert all(row.lease_owner is None for row in rows.values())
    for document_id, row in rows.items():
        if row.status == "queued":
            assert row.attempts == 0 and chunks[document_id] == 0  # handed back, not charged
        else:
            assert row.attempts == 1 and chunks[document_id] == row.chunk_count > 0
    # What it held when told to stop was finished or handed back, nothing left behind.
    assert {rows[d].status for d in held} <= {"ready", "queued"}
    log = worker.log()
    assert "worker pool stopped" in log and log.count("ingestion worker stopped") == 2
