"""Store fixtures: a migrated database of each kind per test (a SQLite file, a PostgreSQL
database), and small deterministic records.

Helpers reach tests through fixtures (``factory``); test modules import the
:class:`StoreFactory` type for annotations only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select, text

from ragd.config import load_settings
from ragd.domain import (
    Collection,
    Document,
    Job,
    JobCompletion,
    NewChunk,
    NewDocument,
    Vector,
)
from ragd.store import open_store
from ragd.store.postgres.store import PostgresStore
from ragd.store.sqlite.store import SqliteStore
from ragd.store.tables import chunks, documents

AnyStore = SqliteStore | PostgresStore

DIM = 8
MODEL = "test-model"
AUTO = "auto"  # new_doc: hash the text


def unit(values: npt.ArrayLike) -> Vector:
    """``values`` as a normalized float32 vector."""
    array = np.asarray(values, dtype=np.float32)
    normalized: Vector = (array / np.linalg.norm(array)).astype(np.float32)
    return normalized


def seeded_vector(seed: str, dim: int = DIM) -> Vector:
    """A normalized vector derived only from ``seed`` (stable across runs)."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    rng = np.random.default_rng(digest)
    return unit(rng.standard_normal(dim))


# A small vocabulary for random chunk texts that share terms, so keyword legs overlap.
GREEK_WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
)


class SeededEmbedder:
    """Embeds a query as :func:`seeded_vector` of its text (a ranker's embedder)."""

    model_name = MODEL
    dimension = DIM

    def embed_query(self, text: str) -> Vector:
        return seeded_vector(text)


class Without:
    """``store`` with one of its methods hidden, as a store that lacks it is seen (the
    ranker then takes its other path): ``Without(store, "hybrid_search")``."""

    def __init__(self, store: AnyStore, hidden: str) -> None:
        self.store = store
        self.hidden = hidden

    def __getattr__(self, name: str) -> object:
        if name == self.hidden:
            raise AttributeError(name)
        return getattr(self.store, name)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StoreFactory:
    """Builds records for one store; every value is deterministic."""

    def __init__(self, store: AnyStore) -> None:
        self.store = store
        self._names = 0
        self._owners = 0

    def collection(self, name: str | None = None, dim: int = DIM) -> Collection:
        self._names += 1
        return self.store.create_collection(
            name=name or f"col-{self._names}",
            description="",
            embedding_model=MODEL,
            embedding_dim=dim,
        )

    def new_doc(
        self,
        collection_id: str,
        text: str = "hello world",
        *,
        title: str | None = None,
        content_hash: str | None = AUTO,
        source_hash: str | None = None,
        metadata: dict[str, Any] | None = None,
        source_type: str = "text",
        mime_type: str | None = "text/markdown",
    ) -> NewDocument:
        """A queued text document; by default its content hash is that of ``text``, and
        ``content_hash=None`` leaves it unknown (as for a PDF at submission)."""
        if content_hash == AUTO:
            content_hash = sha(text)
        return NewDocument(
            collection_id=collection_id,
            title=title,
            source_type=source_type,
            source=None,
            mime_type=mime_type,
            content_hash=content_hash,
            source_hash=source_hash,
            metadata=metadata or {},
            content=text.encode("utf-8"),
        )

    def add(self, collection_id: str, text: str = "hello world", **kwargs: Any) -> Document:
        document, created = self.store.add_document(self.new_doc(collection_id, text, **kwargs))
        assert created
        return document

    def chunk(
        self,
        ordinal: int,
        text: str,
        *,
        vector: Vector | None = None,
        heading_path: tuple[str, ...] = (),
    ) -> NewChunk:
        return NewChunk(
            ordinal=ordinal,
            text=text,
            heading_path=heading_path,
            token_count=len(text.split()),
            char_start=0,
            char_end=len(text),
            text_hash=sha(text),
            embedding=vector if vector is not None else seeded_vector(text),
        )

    def completion(
        self,
        job: Job,
        texts: Sequence[str] = ("hello world",),
        *,
        vectors: Sequence[Vector] | None = None,
        heading_paths: Sequence[tuple[str, ...]] | None = None,
        title: str | None = None,
        content_hash: str | None = None,
        owner: str | None = None,
    ) -> JobCompletion:
        chunks = [
            self.chunk(
                i,
                text,
                vector=vectors[i] if vectors is not None else None,
                heading_path=heading_paths[i] if heading_paths is not None else (),
            )
            for i, text in enumerate(texts)
        ]
        return JobCompletion(
            document_id=job.document_id,
            lease_owner=owner or job.lease_owner,
            title=title,
            mime_type="text/markdown",
            content_hash=content_hash or sha("\n\n".join(texts)),
            chunks=chunks,
        )

    def owner(self) -> str:
        self._owners += 1
        return f"test-owner-{self._owners}"

    def claim_one(self, document_id: str, *, lease_s: float = 60.0) -> Job:
        """Claim ``document_id`` alone: jobs due before it are claimed one at a time by
        scratch owners and handed back (released) untouched."""
        scratch: list[str] = []
        try:
            while True:
                owner = self.owner()
                jobs = self.store.claim_jobs(owner=owner, limit=1, lease_s=lease_s)
                if not jobs:
                    raise AssertionError(f"{document_id} was not claimable")
                if jobs[0].document_id == document_id:
                    return jobs[0]
                scratch.append(owner)
        finally:
            for owner in scratch:
                self.store.release_jobs(owner=owner)

    def ready_doc(
        self,
        collection_id: str,
        texts: Sequence[str],
        *,
        vectors: Sequence[Vector] | None = None,
        heading_paths: Sequence[tuple[str, ...]] | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Document:
        """Add, claim and complete a document with the given chunks."""
        body = "\n\n".join(texts)
        document = self.add(collection_id, body, title=title, metadata=metadata)
        job = self.claim_one(document.id)
        done = self.store.complete_job(
            self.completion(job, texts, vectors=vectors, heading_paths=heading_paths, title=title)
        )
        assert done.status == "ready", done.error
        return done

    def brute_force(
        self, query_vec: Vector, collection_ids: Sequence[str], limit: int
    ) -> list[tuple[str, float]]:
        """The exact top ``limit`` by cosine over every stored chunk of a ready document
        in the collections, read straight from the table and ranked here."""
        query = (
            select(chunks.c.id, chunks.c.embedding)
            .join(documents, documents.c.id == chunks.c.document_id)
            .where(documents.c.status == "ready", chunks.c.collection_id.in_(collection_ids))
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        scored = [
            (f"chk_{row_id}", float(np.dot(np.frombuffer(blob, dtype=np.float32), query_vec)))
            for row_id, blob in rows
        ]
        scored.sort(key=lambda pair: -pair[1])
        return scored[:limit]

    def fts_rowids(self) -> set[int]:
        """Chunk ids the keyword index holds. On PostgreSQL the tsvector is part of the
        chunk row, so what can drift is the BM25 statistics: they are checked against a
        recount from the chunks first."""
        with self.store.engine.connect() as conn:
            if self.store.dialect == "sqlite":
                rows = conn.execute(text("SELECT rowid FROM chunks_fts")).scalars()
                return {int(r) for r in rows}
            recount = conn.execute(
                text(
                    "SELECT c.collection_id, u.lexeme, count(*) FROM chunks c, "
                    "unnest(c.search_tsv) u GROUP BY 1, 2"
                )
            ).all()
            kept = conn.execute(text("SELECT collection_id, lexeme, df FROM keyword_terms"))
            assert {tuple(r) for r in kept.all()} == {tuple(r) for r in recount}
            sizes = conn.execute(
                text("SELECT collection_id, count(*), sum(search_len) FROM chunks GROUP BY 1")
            ).all()
            stats = conn.execute(
                text("SELECT collection_id, chunks, length FROM keyword_stats WHERE chunks > 0")
            ).all()
            assert {tuple(r) for r in stats} == {tuple(r) for r in sizes}
            indexed = conn.execute(text("SELECT id FROM chunks WHERE search_tsv IS NOT NULL"))
            return {int(r) for r in indexed.scalars()}

    def chunk_rowids(self) -> set[int]:
        with self.store.engine.connect() as conn:
            return {int(r) for r in conn.execute(text("SELECT id FROM chunks")).scalars()}

    def count(self, table: str) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def open_test_store(url: str) -> AnyStore:
    opened = open_store(load_settings(database_url=url))
    assert isinstance(opened, SqliteStore | PostgresStore)
    return opened


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def store(db_url: str) -> Iterator[AnyStore]:
    opened = open_test_store(db_url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A migrated SQLite store only, for what only the embedded store does."""
    opened = open_test_store(f"sqlite:///{tmp_path / 'ragd.db'}")
    assert isinstance(opened, SqliteStore)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def factory(store: AnyStore) -> StoreFactory:
    return StoreFactory(store)
