"""SQL logic shared by every database: collections, documents, chunks, embedding cache.

Dialect-specific parts (engine set-up, search legs) live in subclasses; job claiming is in
:mod:`ragd.store.sql.jobs`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from ragd.domain import (
    Collection,
    Document,
    DocumentStatus,
    NewDocument,
    Page,
    StoredChunk,
    Vector,
)
from ragd.errors import Conflict, NotFound
from ragd.store.sql.convert import (
    chunk_from_row,
    chunk_public_id,
    chunk_row_id,
    collection_from_row,
    decode_cursor,
    document_from_row,
    encode_cursor,
    vector_from_bytes,
    vector_to_bytes,
)
from ragd.store.tables import (
    chunks,
    collections,
    document_sources,
    documents,
    embedding_cache,
    new_id,
    utcnow,
)

_CACHE_LOOKUP_BATCH = 500


class SqlStore:
    """Collections, documents and chunks over a SQLAlchemy engine."""

    dialect = "sql"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; SQLite takes its write lock at BEGIN to avoid upgrade
        deadlocks between processes."""
        with (
            self.engine.connect().execution_options(sqlite_immediate=True) as conn,
            conn.begin(),
        ):
            yield conn

    # -- lifecycle ----------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        script_location = str(resources.files("ragd.store") / "migrations")
        config = Config()
        config.set_main_option("script_location", script_location)
        with self.engine.begin() as conn:
            self._lock_migrations(conn)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def _lock_migrations(self, conn: Connection) -> None:
        """Keep concurrent ``migrate`` calls (replicas starting together) apart; SQLite's
        own write lock does that already."""

    def check(self) -> None:
        with self._read() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # -- collections --------------------------------------------------------------------

    def create_collection(
        self, *, name: str, description: str, embedding_model: str, embedding_dim: int
    ) -> Collection:
        now = utcnow()
        collection_id = new_id("col")
        values = {
            "id": collection_id,
            "name": name,
            "description": description,
            "embedding_model": embedding_model,
            "embedding_dim": embedding_dim,
            "chunks_version": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._write() as conn:
                conn.execute(insert(collections).values(**values))
        except IntegrityError:
            raise Conflict(f"a collection named {name!r} already exists") from None
        return self.get_collection(collection_id)

    def _collection_query(self) -> Any:
        doc_counts = (
            select(documents.c.collection_id, func.count().label("n"))
            .group_by(documents.c.collection_id)
            .subquery()
        )
        chunk_counts = (
            select(chunks.c.collection_id, func.count().label("n"))
            .group_by(chunks.c.collection_id)
            .subquery()
        )
        return (
            select(
                collections,
                func.coalesce(doc_counts.c.n, 0).label("document_count"),
                func.coalesce(chunk_counts.c.n, 0).label("chunk_count"),
            )
            .outerjoin(doc_counts, doc_counts.c.collection_id == collections.c.id)
            .outerjoin(chunk_counts, chunk_counts.c.collection_id == collections.c.id)
        )

    def _collections_where(self, *conditions: Any, counts: bool = True) -> list[Collection]:
        """Collections matching ``conditions``; ``counts=False`` skips the document and
        chunk totals, which scan those tables, for callers that only need identity."""
        if not counts:
            plain = select(collections).where(*conditions).order_by(collections.c.name)
            with self._read() as conn:
                return [collection_from_row(row) for row in conn.execute(plain).all()]
        query = self._collection_query().where(*conditions).order_by(collections.c.name)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [collection_from_row(row, row.document_count, row.chunk_count) for row in rows]

    def list_collections(self, *, counts: bool = True) -> list[Collection]:
        return self._collections_where(counts=counts)

    def get_collection(self, collection_id: str, *, counts: bool = True) -> Collection:
        found = self._collections_where(collections.c.id == collection_id, counts=counts)
        if not found:
            raise NotFound(f"collection {collection_id!r} not found")
        return found[0]

    def get_collection_by_name(self, name: str, *, counts: bool = True) -> Collection:
        found = self._collections_where(collections.c.name == name, counts=counts)
        if not found:
            raise NotFound(f"collection {name!r} not found")
        return found[0]

    def update_collection(
        self, collection_id: str, *, name: str | None, description: str | None
    ) -> Collection:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if name is not None:
            values["name"] = name
        if description is not None:
            values["description"] = description
        try:
            with self._write() as conn:
                result = conn.execute(
                    update(collections).where(collections.c.id == collection_id).values(**values)
                )
        except IntegrityError:
            raise Conflict(f"a collection named {name!r} already exists") from None
        if result.rowcount == 0:
            raise NotFound(f"collection {collection_id!r} not found")
        return self.get_collection(collection_id)

    def delete_collection(self, collection_id: str) -> None:
        with self._write() as conn:
            # Chunks first and explicitly: their full-text rows go with them, and the
            # cascade would otherwise do it row by row through documents.
            conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id))
            result = conn.execute(delete(collections).where(collections.c.id == collection_id))
        if result.rowcount == 0:
            raise NotFound(f"collection {collection_id!r} not found")

    # -- documents ----------------------------------------------------------------------

    def add_document(self, new: NewDocument) -> tuple[Document, bool]:
        """Queue a document unless the same content is already in the collection.

        Returns the stored document and whether it was created. The duplicate check and
        the insert share one write transaction, so two identical uploads racing each
        other still create one document.
        """
        now = utcnow()
        document_id = new_id("doc")
        with self._write() as conn:
            if (
                conn.execute(
                    select(collections.c.id).where(collections.c.id == new.collection_id)
                ).first()
                is None
            ):
                raise NotFound(f"collection {new.collection_id!r} not found")
            existing = self._find_duplicate(conn, new)
            if existing is not None:
                return document_from_row(existing), False
            conn.execute(
                insert(documents).values(
                    id=document_id,
                    collection_id=new.collection_id,
                    title=new.title,
                    source_type=new.source_type,
                    source=new.source,
                    mime_type=new.mime_type,
                    content_hash=new.content_hash,
                    source_hash=new.source_hash,
                    metadata=new.metadata,
                    status=new.status,
                    error=new.error,
                    attempts=0,
                    chunk_count=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                insert(document_sources).values(document_id=document_id, content=new.content)
            )
        return self.get_document(document_id), True

    def _find_duplicate(self, conn: Connection, new: NewDocument) -> Any:
        matches = []
        if new.content_hash:
            matches.append(documents.c.content_hash == new.content_hash)
        if new.source_hash:
            matches.append(documents.c.source_hash == new.source_hash)
        if not matches:
            return None
        return conn.execute(
            select(documents)
            .where(
                documents.c.collection_id == new.collection_id,
                documents.c.status != "failed",
                or_(*matches),
            )
            .order_by(documents.c.created_at)
            .limit(1)
        ).first()

    def get_document(self, document_id: str) -> Document:
        with self._read() as conn:
            row = conn.execute(select(documents).where(documents.c.id == document_id)).first()
        if row is None:
            raise NotFound(f"document {document_id!r} not found")
        return document_from_row(row)

    def get_documents(self, document_ids: Sequence[str]) -> list[Document]:
        with self._read() as conn:
            rows = conn.execute(
                select(documents).where(documents.c.id.in_(list(document_ids)))
            ).all()
        return [document_from_row(row) for row in rows]

    def list_documents(
        self,
        collection_id: str,
        *,
        status: DocumentStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Document]:
        self.get_collection(collection_id)
        query = select(documents).where(documents.c.collection_id == collection_id)
        if status is not None:
            query = query.where(documents.c.status == status)
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    documents.c.created_at < created_at,
                    and_(documents.c.created_at == created_at, documents.c.id < last_id),
                )
            )
        query = query.order_by(documents.c.created_at.desc(), documents.c.id.desc())
        with self._read() as conn:
            rows = conn.execute(query.limit(limit + 1)).all()
        items = [document_from_row(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].created_at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor)

    def delete_document(self, document_id: str) -> None:
        with self._write() as conn:
            row = conn.execute(
                select(documents.c.collection_id).where(documents.c.id == document_id)
            ).first()
            if row is None:
                raise NotFound(f"document {document_id!r} not found")
            removed = conn.execute(delete(chunks).where(chunks.c.document_id == document_id))
            conn.execute(delete(documents).where(documents.c.id == document_id))
            if removed.rowcount:
                self._bump_chunks_version(conn, row.collection_id)

    def _bump_chunks_version(self, conn: Connection, collection_id: str) -> None:
        conn.execute(
            update(collections)
            .where(collections.c.id == collection_id)
            .values(chunks_version=collections.c.chunks_version + 1)
        )

    def list_chunks(self, document_id: str) -> list[StoredChunk]:
        self.get_document(document_id)
        query = (
            select(chunks, documents.c.title, documents.c.metadata)
            .join(documents, documents.c.id == chunks.c.document_id)
            .where(chunks.c.document_id == document_id)
            .order_by(chunks.c.ordinal)
        )
        with self._read() as conn:
            return [chunk_from_row(row) for row in conn.execute(query).all()]

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        row_ids = [rid for rid in (chunk_row_id(cid) for cid in chunk_ids) if rid is not None]
        if not row_ids:
            return {}
        query = (
            select(chunks, documents.c.title, documents.c.metadata)
            .join(documents, documents.c.id == chunks.c.document_id)
            .where(chunks.c.id.in_(row_ids), documents.c.status == "ready")
        )
        with self._read() as conn:
            found = [chunk_from_row(row) for row in conn.execute(query).all()]
        return {chunk.id: chunk for chunk in found}

    def status_counts(self) -> dict[str, int]:
        query = select(documents.c.status, func.count()).group_by(documents.c.status)
        with self._read() as conn:
            return {status: count for status, count in conn.execute(query).all()}

    def status_counts_by_collection(self) -> dict[str, dict[str, int]]:
        query = select(documents.c.collection_id, documents.c.status, func.count()).group_by(
            documents.c.collection_id, documents.c.status
        )
        found: dict[str, dict[str, int]] = {}
        with self._read() as conn:
            for collection_id, status, count in conn.execute(query).all():
                found.setdefault(collection_id, {})[status] = count
        return found

    def get_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Vector]:
        """Stored vectors of the given chunks (unknown ids are skipped)."""
        row_ids = [rid for rid in (chunk_row_id(cid) for cid in chunk_ids) if rid is not None]
        if not row_ids:
            return {}
        query = select(chunks.c.id, chunks.c.embedding).where(chunks.c.id.in_(row_ids))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return {chunk_public_id(row_id): vector_from_bytes(data) for row_id, data in rows}

    # -- embedding cache ----------------------------------------------------------------

    def cached_embeddings(self, model: str, text_hashes: Iterable[str]) -> dict[str, Vector]:
        wanted = list(dict.fromkeys(text_hashes))
        found: dict[str, Vector] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _CACHE_LOOKUP_BATCH):
                batch = wanted[start : start + _CACHE_LOOKUP_BATCH]
                rows = conn.execute(
                    select(embedding_cache.c.text_hash, embedding_cache.c.embedding).where(
                        embedding_cache.c.model == model,
                        embedding_cache.c.text_hash.in_(batch),
                    )
                ).all()
                found.update((h, vector_from_bytes(e)) for h, e in rows)
        return found

    def cache_embeddings(self, model: str, vectors: dict[str, Vector]) -> None:
        if not vectors:
            return
        rows = [
            {"model": model, "text_hash": h, "embedding": vector_to_bytes(v)}
            for h, v in vectors.items()
        ]
        with self._write() as conn:
            conn.execute(self._insert_ignore(embedding_cache), rows)

    def _insert_ignore(self, table: Any) -> Any:
        """An INSERT that skips rows whose key exists; each dialect spells it its way."""
        raise NotImplementedError
