"""The ingestion worker end to end: real SQLite file, real embedding model, real HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import text

from ragd.config import Settings, load_settings
from ragd.domain import Collection, Document, JobCompletion, NewChunk, NewDocument
from ragd.embedding import LocalEmbedder
from ragd.ingest.pipeline import embed_text
from ragd.ingest.worker import IngestWorker
from ragd.store.sqlite.store import SqliteStore

GUIDE = """# Guide

Intro paragraph here.

## Install

Run pip install ragd to install.

### Extras

Optional extras exist.

## Usage

Call the service."""

GUIDE_CHUNKS = [
    ("Intro paragraph here.", ("Guide",)),
    ("Run pip install ragd to install.", ("Guide", "Install")),
    ("Optional extras exist.", ("Guide", "Install", "Extras")),
    ("Call the service.", ("Guide", "Usage")),
]

ARTICLE = b"""<!doctype html>
<html><head><title>Lighthouse Keeping</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article>
<h1>Lighthouse Keeping</h1>
<p>The keeper trims the wick every evening before sunset and polishes the great lens
so that the beam carries far across the water to the ships at sea.</p>
<p>In winter storms the keeper stays awake through the night, winding the clockwork
that turns the light, and writes every passing vessel into the log book.</p>
</article>
</body></html>"""


# -- fixtures -------------------------------------------------------------------------


class CountingEmbedder:
    """The real model, recording which texts it was asked to embed."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.embedded: list[str] = []
        self.calls: list[int] = []  # texts per embedding call

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def start_loading(self) -> None:
        self.inner.start_loading()

    def check(self) -> None:
        self.inner.check()

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.embedded.extend(texts)
        self.calls.append(len(texts))
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        return self.inner.embed_query(text)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "inprocess_worker": False,
        "worker_retry_base_s": 0,
        "allow_private_urls": True,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[SqliteStore]:
    opened = SqliteStore(settings.resolved_database_url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def counting(embedder: LocalEmbedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def worker(store: SqliteStore, counting: CountingEmbedder, settings: Settings) -> IngestWorker:
    return IngestWorker(store, counting, settings)


@pytest.fixture
def collection(store: SqliteStore, embedder: LocalEmbedder) -> Collection:
    return new_collection(store, embedder, "docs")


def new_collection(store: SqliteStore, embedder: LocalEmbedder, name: str) -> Collection:
    return store.create_collection(
        name=name,
        description="",
        embedding_model=embedder.model_name,
        embedding_dim=embedder.dimension,
    )


def queue(
    store: SqliteStore,
    collection_id: str,
    content: bytes,
    *,
    source_type: str = "text",
    mime_type: str | None = "text/markdown",
    source: str | None = None,
    title: str | None = None,
) -> Document:
    document, created = store.add_document(
        NewDocument(
            collection_id=collection_id,
            title=title,
            source_type=source_type,
            source=source,
            mime_type=mime_type,
            content_hash=None,
            source_hash=hashlib.sha256(content).hexdigest(),
            metadata={},
            content=content,
        )
    )
    assert created
    return document


def job_columns(store: SqliteStore, document_id: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        found = (
            conn.execute(
                text(
                    "SELECT status, attempts, error, lease_owner, lease_expires_at, "
                    "next_attempt_at FROM documents WHERE id = :id"
                ),
                {"id": document_id},
            )
            .mappings()
            .one()
        )
    return dict(found)


def stored_embeddings(store: SqliteStore, document_id: str) -> list[bytes]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT embedding FROM chunks WHERE document_id = :d ORDER BY ordinal"),
                {"d": document_id},
            ).scalars()
        )


def cache_rows(store: SqliteStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM embedding_cache")).scalar_one())


def as_time(value: Any) -> dt.datetime:
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


# -- a local HTTP server --------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: dict[str, int]

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path == "/article.html":
            self._send(200, ARTICLE, "text/html; charset=utf-8")
        elif self.path == "/notes.txt":
            self._send(200, b"Plain notes about barometric pressure.", "text/plain")
        elif self.path == "/flaky":
            self._send(503, b"busy", "text/plain")
        else:
            self._send(404, b"no", "text/plain")


class LocalSite:
    def __init__(self, base_url: str, hits: dict[str, int]) -> None:
        self.base_url = base_url
        self.hits = hits


@pytest.fixture
def site() -> Iterator[LocalSite]:
    hits: dict[str, int] = {}
    handler = type("Handler", (_Handler,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LocalSite(f"http://127.0.0.1:{server.server_address[1]}", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- text and Markdown ----------------------------------------------------------------


def test_markdown_document_becomes_ready_with_headings(
    store: SqliteStore,
    worker: IngestWorker,
    collection: Collection,
    embedder: LocalEmbedder,
) -> None:
    doc = queue(store, collection.id, GUIDE.encode())
    assert worker.run_until_idle() == 1
    done = store.get_document(doc.id)
    assert done.status == "ready", done.error
    assert done.title == "Guide" and done.attempts == 1 and done.error is None
    assert done.mime_type == "text/markdown" and done.content_hash is not None
    chunks = store.list_chunks(doc.id)
    assert [(c.text, c.heading_path) for c in chunks] == GUIDE_CHUNKS
    assert done.chunk_count == len(GUIDE_CHUNKS)
    assert all(c.token_count > 0 and c.char_end > c.char_start for c in chunks)
    for chunk in chunks:
        assert GUIDE[chunk.char_start : chunk.char_end] == chunk.text

    # Each vector is the model's embedding of the chunk in its context, normalized.
    expected = embedder.embed_documents(
        [embed_text("Guide", c.heading_path, c.text) for c in chunks]
    )
    for blob, want in zip(stored_embeddings(store, doc.id), expected, strict=True):
        got = np.frombuffer(blob, dtype=np.float32)
        assert got.shape == (embedder.dimension,)
        assert float(np.linalg.norm(got)) == pytest.approx(1.0, abs=1e-4)
        assert float(np.dot(got, want)) > 0.999

    keyword = store.keyword_search(["extras"], collection_ids=[collection.id], filters={}, limit=5)
    assert keyword, "no keyword hit"
    top = keyword[0].chunk_id
    assert store.get_chunks([top])[top].text == "Optional extras exist."
    vector = store.vector_search(
        embedder.embed_query("which pip command installs ragd?"),
        collection_ids=[collection.id],
        filters={},
        limit=1,
    )
    assert store.get_chunks([vector[0].chunk_id])[vector[0].chunk_id].text == GUIDE_CHUNKS[1][0]


def test_run_until_idle_counts_every_handled_document(
    tmp_path: Path, store: SqliteStore, counting: CountingEmbedder, collection: Collection
) -> None:
    worker = IngestWorker(store, counting, make_settings(tmp_path, worker_claim_batch=2))
    good = [queue(store, collection.id, f"Note {i} about topic {i}.".encode()) for i in range(4)]
    bad = queue(
        store,
        collection.id,
        b"%PDF-1.4 not really a pdf",
        source_type="upload",
        mime_type="application/pdf",
        source="broken.pdf",
    )
    assert worker.run_until_idle() == 5
    assert worker.run_until_idle() == 0
    assert all(store.get_document(d.id).status == "ready" for d in good)
    assert store.get_document(bad.id).status == "failed"
    assert store.status_counts() == {"ready": 4, "failed": 1}


def test_chunks_of_many_claims_are_embedded_together(
    tmp_path: Path, store: SqliteStore, counting: CountingEmbedder, collection: Collection
) -> None:
    # One chunk per note: claims of two documents are gathered until six texts are
    # waiting, and those six go to the model in one call.
    settings = make_settings(tmp_path, worker_claim_batch=2, worker_embed_batch=6)
    worker = IngestWorker(store, counting, settings)
    notes = [queue(store, collection.id, f"Note {i} about topic {i}.".encode()) for i in range(7)]
    assert worker.run_once() == 6
    assert counting.calls == [6]
    assert worker.run_once() == 1
    assert counting.calls == [6, 1]
    assert all(d.status == "ready" for d in store.get_documents([n.id for n in notes]))


def test_small_remainder_joins_the_last_embedding_call(
    tmp_path: Path, store: SqliteStore, counting: CountingEmbedder, collection: Collection
) -> None:
    settings = make_settings(tmp_path, worker_claim_batch=10, worker_embed_batch=4)
    worker = IngestWorker(store, counting, settings)
    for i in range(9):
        queue(store, collection.id, f"Remark {i} on subject {i}.".encode())
    assert worker.run_once() == 9
    assert counting.calls == [4, 5]  # not 4, 4, 1


def test_batch_completion_skips_a_document_whose_lease_was_lost(
    store: SqliteStore, worker: IngestWorker, collection: Collection, embedder: LocalEmbedder
) -> None:
    docs = [queue(store, collection.id, f"Entry {i} of the log.".encode()) for i in range(3)]
    jobs = store.claim_jobs(owner=worker.owner, limit=3, lease_s=300)
    assert [j.document_id for j in jobs] == [d.id for d in docs]
    with store.engine.begin() as conn:  # another worker took the middle one over
        conn.execute(
            text("UPDATE documents SET lease_owner = 'other:1:x' WHERE id = :id"),
            {"id": docs[1].id},
        )
    completions = [
        JobCompletion(
            document_id=job.document_id,
            lease_owner=worker.owner,
            title=None,
            mime_type="text/markdown",
            content_hash=f"hash-{i}",
            chunks=[
                NewChunk(
                    ordinal=0,
                    text=f"Entry {i} of the log.",
                    heading_path=(),
                    token_count=5,
                    char_start=0,
                    char_end=18,
                    text_hash=f"text-{i}",
                    embedding=embedder.embed_documents([f"Entry {i}"])[0],
                )
            ],
        )
        for i, job in enumerate(jobs)
    ]
    results = store.complete_jobs(completions)
    assert [r.id if r else None for r in results] == [docs[0].id, None, docs[2].id]
    assert all(r is not None and r.status == "ready" and r.chunk_count == 1 for r in results[::2])
    stolen = job_columns(store, docs[1].id)
    assert stolen["status"] == "processing" and stolen["lease_owner"] == "other:1:x"
    assert store.list_chunks(docs[1].id) == []
    assert [c.text for c in store.list_chunks(docs[2].id)] == ["Entry 2 of the log."]


def test_failed_batch_completion_falls_back_to_one_by_one(
    store: SqliteStore,
    worker: IngestWorker,
    collection: Collection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(completions: Sequence[JobCompletion]) -> list[Document | None]:
        raise RuntimeError("batch rejected")

    monkeypatch.setattr(store, "complete_jobs", broken)
    docs = [queue(store, collection.id, f"Line {i} of the poem.".encode()) for i in range(3)]
    assert worker.run_until_idle() == 3
    assert {d.status for d in store.get_documents([d.id for d in docs])} == {"ready"}


def test_corrupt_pdf_fails_permanently(
    store: SqliteStore, worker: IngestWorker, collection: Collection
) -> None:
    doc = queue(
        store,
        collection.id,
        b"%PDF-1.4 not really a pdf",
        source_type="upload",
        mime_type="application/pdf",
        source="report.pdf",
    )
    assert worker.run_until_idle() == 1
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None
    assert failed.error.startswith("PDF could not be read")
    assert "Traceback" not in failed.error and "\n" not in failed.error
    assert len(failed.error) < 300
    assert failed.chunk_count == 0 and store.list_chunks(doc.id) == []
    assert job_columns(store, doc.id)["lease_owner"] is None
    assert worker.run_until_idle() == 0


@pytest.mark.parametrize(
    ("source_type", "mime_type", "content"),
    [
        ("upload", "text/plain", b"   \n\n\t  \r\n "),
        ("upload", "text/markdown", b"\n\n\n"),
        (
            "upload",
            "text/html",
            b"<html><head><title>Empty</title><script>var a = 1;</script></head>"
            b"<body>  </body></html>",
        ),
        ("text", "text/markdown", b" \x00 \n "),
    ],
)
def test_empty_after_parse_fails(
    store: SqliteStore,
    worker: IngestWorker,
    collection: Collection,
    counting: CountingEmbedder,
    source_type: str,
    mime_type: str,
    content: bytes,
) -> None:
    doc = queue(store, collection.id, content, source_type=source_type, mime_type=mime_type)
    assert worker.run_until_idle() == 1
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error == "document contains no text"
    assert counting.embedded == []


def test_invalid_utf8_text_fails_with_reason(
    store: SqliteStore, worker: IngestWorker, collection: Collection
) -> None:
    doc = queue(
        store, collection.id, b"caf\xe9 au lait", source_type="upload", mime_type="text/plain"
    )
    worker.run_until_idle()
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and "UTF-8" in failed.error


def test_reingest_into_another_collection_uses_embedding_cache(
    store: SqliteStore,
    worker: IngestWorker,
    counting: CountingEmbedder,
    embedder: LocalEmbedder,
    collection: Collection,
) -> None:
    first = queue(store, collection.id, GUIDE.encode())
    worker.run_until_idle()
    assert len(counting.embedded) == len(GUIDE_CHUNKS)
    rows = cache_rows(store)
    assert rows == len(GUIDE_CHUNKS)

    other = new_collection(store, embedder, "other")
    second = queue(store, other.id, GUIDE.encode())
    assert worker.run_until_idle() == 1
    assert store.get_document(second.id).status == "ready"
    assert cache_rows(store) == rows
    assert len(counting.embedded) == len(GUIDE_CHUNKS)  # nothing new was embedded
    assert stored_embeddings(store, second.id) == stored_embeddings(store, first.id)

    # A revised document only embeds what changed.
    revised = GUIDE + "\n\n## Support\n\nWrite to the mailing list."
    third = queue(store, other.id, revised.encode())
    worker.run_until_idle()
    assert store.get_document(third.id).status == "ready"
    assert counting.embedded[len(GUIDE_CHUNKS) :] == [
        embed_text("Guide", ("Guide", "Support"), "Write to the mailing list.")
    ]
    assert cache_rows(store) == rows + 1


def test_identical_upload_found_duplicate_at_completion(
    store: SqliteStore, worker: IngestWorker, collection: Collection
) -> None:
    first = queue(store, collection.id, GUIDE.encode(), source_type="upload", source="a.md")
    second = queue(
        store, collection.id, (GUIDE + "\n\n\n").encode(), source_type="upload", source="b.md"
    )
    worker.run_until_idle()
    statuses = {d.id: d for d in store.get_documents([first.id, second.id])}
    assert statuses[first.id].status == "ready"
    assert statuses[second.id].status == "failed"
    assert first.id in (statuses[second.id].error or "")
    assert store.get_collection(collection.id).chunk_count == len(GUIDE_CHUNKS)


# -- URLs -----------------------------------------------------------------------------


def test_url_document_is_fetched_and_ready(
    store: SqliteStore, worker: IngestWorker, collection: Collection, site: LocalSite
) -> None:
    url = f"{site.base_url}/article.html"
    doc = queue(store, collection.id, url.encode(), source_type="url", mime_type=None, source=url)
    plain_url = f"{site.base_url}/notes.txt"
    plain = queue(
        store,
        collection.id,
        plain_url.encode(),
        source_type="url",
        mime_type=None,
        source=plain_url,
    )
    assert worker.run_until_idle() == 2
    done = store.get_document(doc.id)
    assert done.status == "ready", done.error
    assert done.title == "Lighthouse Keeping" and done.mime_type == "text/html"
    body = " ".join(c.text for c in store.list_chunks(doc.id))
    assert "keeper trims the wick" in body
    assert "Home" not in body.split()  # navigation is not main content
    plain_done = store.get_document(plain.id)
    assert plain_done.status == "ready" and plain_done.mime_type == "text/plain"
    assert site.hits == {"/article.html": 1, "/notes.txt": 1}
    hits = store.keyword_search(["wick"], collection_ids=[collection.id], filters={}, limit=5)
    assert len(hits) == 1


def test_url_returning_503_is_retried_then_failed(
    store: SqliteStore,
    worker: IngestWorker,
    settings: Settings,
    collection: Collection,
    site: LocalSite,
) -> None:
    assert settings.worker_max_attempts == 3
    url = f"{site.base_url}/flaky"
    doc = queue(store, collection.id, url.encode(), source_type="url", mime_type=None, source=url)
    for attempt in (1, 2):
        before = dt.datetime.now(dt.UTC)
        assert worker.run_once() == 1
        state = job_columns(store, doc.id)
        assert state["status"] == "queued" and state["attempts"] == attempt
        assert state["error"] == "URL returned HTTP 503"
        assert state["lease_owner"] is None
        retry_at = as_time(state["next_attempt_at"])
        assert before <= retry_at <= dt.datetime.now(dt.UTC)  # base 0: due at once
    assert worker.run_once() == 1
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 3
    assert failed.error == "URL returned HTTP 503"
    assert worker.run_once() == 0
    assert site.hits == {"/flaky": 3}


def test_url_retries_wait_for_backoff(
    tmp_path: Path,
    store: SqliteStore,
    counting: CountingEmbedder,
    collection: Collection,
    site: LocalSite,
) -> None:
    worker = IngestWorker(store, counting, make_settings(tmp_path, worker_retry_base_s=600))
    url = f"{site.base_url}/flaky"
    doc = queue(store, collection.id, url.encode(), source_type="url", mime_type=None, source=url)
    assert worker.run_until_idle() == 1
    state = job_columns(store, doc.id)
    assert state["status"] == "queued"
    # Jittered between half and one and a half times the base.
    wait = as_time(state["next_attempt_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=250) < wait <= dt.timedelta(seconds=900)
    assert worker.run_until_idle() == 0
    assert site.hits == {"/flaky": 1}


def test_url_returning_404_fails_at_once(
    store: SqliteStore, worker: IngestWorker, collection: Collection, site: LocalSite
) -> None:
    url = f"{site.base_url}/missing"
    doc = queue(store, collection.id, url.encode(), source_type="url", mime_type=None, source=url)
    assert worker.run_until_idle() == 1
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error == "URL returned HTTP 404"


def test_private_url_refused_when_not_allowed(
    tmp_path: Path,
    store: SqliteStore,
    counting: CountingEmbedder,
    collection: Collection,
    site: LocalSite,
) -> None:
    worker = IngestWorker(store, counting, make_settings(tmp_path, allow_private_urls=False))
    url = f"{site.base_url}/article.html"
    doc = queue(store, collection.id, url.encode(), source_type="url", mime_type=None, source=url)
    assert worker.run_until_idle() == 1
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and "not a public address" in failed.error
    assert site.hits == {}


# -- leases and the run loop ----------------------------------------------------------


def test_worker_gives_up_on_a_job_that_keeps_crashing_workers(
    tmp_path: Path, store: SqliteStore, counting: CountingEmbedder, collection: Collection
) -> None:
    worker = IngestWorker(store, counting, make_settings(tmp_path, worker_max_attempts=2))
    doc = queue(store, collection.id, b"Text that crashes workers.")
    for owner in ("crashed-1", "crashed-2"):
        assert len(store.claim_jobs(owner=owner, limit=1, lease_s=0.05)) == 1
        time.sleep(0.12)
    assert worker.run_until_idle() == 1
    failed = store.get_document(doc.id)
    assert failed.status == "failed" and failed.attempts == 3
    assert failed.error is not None and "gave up" in failed.error
    assert counting.embedded == []


def test_run_stops_promptly_and_releases_leases(
    tmp_path: Path, store: SqliteStore, counting: CountingEmbedder, collection: Collection
) -> None:
    worker = IngestWorker(store, counting, make_settings(tmp_path, worker_poll_interval_s=30))
    held = queue(store, collection.id, b"Held by this worker when it stops.")
    [job] = store.claim_jobs(owner=worker.owner, limit=1, lease_s=300)
    assert job.document_id == held.id
    pending = queue(store, collection.id, b"Processed by the running worker.")

    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while store.get_document(pending.id).status != "ready":
            assert time.monotonic() < deadline, "worker did not process the queued document"
            assert thread.is_alive()
            time.sleep(0.05)
        assert job_columns(store, held.id)["status"] == "processing"
        stopped_at = time.monotonic()
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert time.monotonic() - stopped_at < 5  # far less than the 30 s poll interval
    finally:
        stop.set()
        thread.join(timeout=10)

    state = job_columns(store, held.id)
    assert state["status"] == "queued" and state["attempts"] == 0
    assert state["lease_owner"] is None and state["lease_expires_at"] is None
    assert store.get_document(pending.id).status == "ready"
    # Another worker picks the released document up at once.
    assert worker.run_until_idle() == 1
    assert store.get_document(held.id).status == "ready"


def test_run_survives_and_exits_with_no_work(
    tmp_path: Path, store: SqliteStore, counting: CountingEmbedder
) -> None:
    worker = IngestWorker(store, counting, make_settings(tmp_path, worker_poll_interval_s=0.05))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert store.status_counts() == {}
