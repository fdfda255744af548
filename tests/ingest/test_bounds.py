"""Work amplification: every document's parse is bounded in time, pages, characters and
chunks, and one bad or deleted document never holds up the ones queued behind it.

Real SQLite file, real model, real parse child processes; the malicious files are built
here (see ``bombs``)."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragd.config import Settings, load_settings
from ragd.domain import Collection, Document, NewDocument
from ragd.embedding import LocalEmbedder
from ragd.ingest.worker import IngestWorker
from ragd.store.sqlite.store import SqliteStore
from tests.ingest.bombs import headings_markdown, shared_stream_pdf

GOOD = b"# Lighthouses\n\nThe keeper trims the wick every evening before sunset.\n"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path, "inprocess_worker": False}
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(make_settings(tmp_path).resolved_database_url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def collection(store: SqliteStore, embedder: LocalEmbedder) -> Collection:
    return store.create_collection(
        name="docs",
        description="",
        embedding_model=embedder.model_name,
        embedding_dim=embedder.dimension,
    )


def upload(store: SqliteStore, collection: Collection, data: bytes, mime: str) -> Document:
    document, created = store.add_document(
        NewDocument(
            collection_id=collection.id,
            title=None,
            source_type="upload",
            source=None,
            mime_type=mime,
            content_hash=None,
            source_hash=hashlib.sha256(data).hexdigest(),
            metadata={},
            content=data,
        )
    )
    assert created
    return document


def drain(store: SqliteStore, embedder: LocalEmbedder, tmp_path: Path, **settings: Any) -> None:
    IngestWorker(store, embedder, make_settings(tmp_path, **settings)).run_until_idle()


def status(store: SqliteStore, document: Document) -> tuple[str, str | None]:
    found = store.get_document(document.id)
    return found.status, found.error


def test_shared_stream_pdf_is_stopped_at_the_deadline_and_the_next_is_ready(
    store: SqliteStore, collection: Collection, embedder: LocalEmbedder, tmp_path: Path
) -> None:
    """~500 KB, 2,000 pages of one stream: minutes of pypdf work, stopped after 3 s."""
    bomb = upload(store, collection, shared_stream_pdf(), "application/pdf")
    good = upload(store, collection, GOOD, "text/markdown")
    drain(store, embedder, tmp_path, parse_timeout_s=3)
    state, error = status(store, bomb)
    assert state == "failed"
    assert error == "parsing took longer than 3 s and was stopped"
    assert status(store, good) == ("ready", None)
    assert multiprocessing.active_children() == []


def test_pdf_over_the_page_bound_fails(
    store: SqliteStore, collection: Collection, embedder: LocalEmbedder, tmp_path: Path
) -> None:
    pdf = upload(store, collection, shared_stream_pdf(pages=30, operators=5), "application/pdf")
    drain(store, embedder, tmp_path, parse_max_pages=20)
    assert status(store, pdf) == ("failed", "PDF has more than 20 pages")


@pytest.mark.parametrize(
    ("data", "mime", "what"),
    [
        (b"word " * 2_000, "text/plain", "document"),
        (b"# Notes\n\n" + b"word " * 2_000, "text/markdown", "document"),
        (b"<html><body><p>" + b"word " * 2_000 + b"</p></body></html>", "text/html", "HTML"),
    ],
)
def test_text_over_the_character_bound_fails(
    store: SqliteStore,
    collection: Collection,
    embedder: LocalEmbedder,
    tmp_path: Path,
    data: bytes,
    mime: str,
    what: str,
) -> None:
    document = upload(store, collection, data, mime)
    drain(store, embedder, tmp_path, parse_max_chars=1_000)
    assert status(store, document) == ("failed", f"{what} text exceeds 1,000 characters")


def test_pdf_over_the_character_bound_fails(
    store: SqliteStore, collection: Collection, embedder: LocalEmbedder, tmp_path: Path
) -> None:
    """The 74 MB-of-text PDF, scaled down: the bound is on the text, not the file size."""
    pdf = upload(store, collection, shared_stream_pdf(pages=50, operators=40), "application/pdf")
    drain(store, embedder, tmp_path, parse_max_chars=1_000)
    assert status(store, pdf) == ("failed", "PDF text exceeds 1,000 characters")


def test_too_many_chunks_fails_the_document(
    store: SqliteStore, collection: Collection, embedder: LocalEmbedder, tmp_path: Path
) -> None:
    document = upload(store, collection, headings_markdown(200), "text/markdown")
    drain(store, embedder, tmp_path, max_chunks_per_document=100)
    state, error = status(store, document)
    assert state == "failed"
    assert error == "document has more than 100 chunks; split it into smaller files"
    assert store.list_chunks(document.id) == []


def test_bodiless_headings_become_few_chunks(
    store: SqliteStore, collection: Collection, embedder: LocalEmbedder, tmp_path: Path
) -> None:
    """Bodiless headings are merged before chunking: 5,000 lines, not 5,000 chunks (the
    attack was 1,000,000 headings)."""
    data = "".join(f"# Heading {i}\n" for i in range(5_000)).encode()
    document = upload(store, collection, data, "text/markdown")
    drain(store, embedder, tmp_path, max_chunks_per_document=1_000)
    found = store.get_document(document.id)
    assert found.status == "ready", found.error
    assert 0 < found.chunk_count < 1_000


def wait_for(predicate: Any, timeout_s: float = 300) -> None:
    """Poll until ``predicate()``; the deadline only keeps a broken build from hanging."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.1)


def test_deleting_a_document_stops_its_parse_and_frees_the_worker(
    store: SqliteStore, collection: Collection, embedder: LocalEmbedder, tmp_path: Path
) -> None:
    """The deadline is long here, so only noticing the deletion can free the worker."""
    bomb = upload(store, collection, shared_stream_pdf(), "application/pdf")
    worker = IngestWorker(
        store, embedder, make_settings(tmp_path, parse_timeout_s=3600, worker_poll_interval_s=0.1)
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: store.get_document(bomb.id).status == "processing")
        store.delete_document(bomb.id)
        good = upload(store, collection, GOOD, "text/markdown")
        wait_for(lambda: store.get_document(good.id).status == "ready")
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert multiprocessing.active_children() == []
