"""Documents and chunks over SQL: :class:`~ragd.store.base.DocumentStore` for every
database, and the stored vectors the search index reads back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select

from ragd.audit import AuditEntry
from ragd.domain import Document, DocumentStatus, NewDocument, Page, StoredChunk, Vector
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.convert import (
    chunk_from_row,
    chunk_public_id,
    chunk_row_id,
    decode_cursor,
    document_from_row,
    encode_cursor,
    vector_from_bytes,
)
from ragd.store.sql.database import Database
from ragd.store.sql.queries import (
    bump_chunks_version,
    document_row,
    documents_by_id,
    require_collection,
)
from ragd.store.tables import chunks, document_sources, documents, new_id, utcnow

# A chunk of its document's collection: not one of a reindex's generation being built
# (those carry the generation's id as their collection until the switch).
_live_chunk = and_(
    documents.c.id == chunks.c.document_id, documents.c.collection_id == chunks.c.collection_id
)
# What a StoredChunk is read from: every column but the embedding (1.5 kB a row at 384
# dimensions, decoded into an array per row) and the text hash, which it does not hold.
_CHUNK_COLUMNS = tuple(c for c in chunks.c if c.name not in ("embedding", "text_hash"))


class SqlDocuments:
    """Document rows, their source bytes, and reads of their chunks."""

    _db: Database
    _audit: AuditChain

    def add_document(self, new: NewDocument) -> tuple[Document, bool]:
        # The duplicate check and the insert share one write transaction, so two
        # identical uploads racing each other still create one document.
        def work(conn: Connection) -> tuple[str, Any]:
            require_collection(conn, new.collection_id)
            self._db.dialect.lock_duplicate_check(conn, new)
            existing = _find_duplicate(conn, new)
            if existing is not None:
                return existing.id, existing
            document_id = new_id("doc")
            _insert(conn, document_id, new)
            self._audit.append(conn, [_created(document_id, new)])
            return document_id, None

        document_id, existing = self._db.write(work)
        if existing is not None:
            return document_from_row(existing), False
        return self.get_document(document_id), True

    def get_document(self, document_id: str) -> Document:
        return document_from_row(self._db.read(lambda conn: document_row(conn, document_id)))

    def get_documents(self, document_ids: Sequence[str]) -> list[Document]:
        return self._db.read(lambda conn: documents_by_id(conn, document_ids))

    def list_documents(
        self,
        collection_id: str,
        *,
        status: DocumentStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Document]:
        def work(conn: Connection) -> Sequence[Any]:
            # The collection first: an unknown one is NotFound whatever the cursor.
            require_collection(conn, collection_id)
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
            return conn.execute(query.limit(limit + 1)).all()

        rows = self._db.read(work)
        items = [document_from_row(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].created_at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor)

    def delete_document(self, document_id: str) -> None:
        def work(conn: Connection) -> None:
            row = document_row(conn, document_id)
            removed = conn.execute(delete(chunks).where(chunks.c.document_id == document_id))
            conn.execute(delete(documents).where(documents.c.id == document_id))
            if removed.rowcount:
                bump_chunks_version(conn, row.collection_id)
            detail = {"chunks": int(removed.rowcount), "content_hash": row.content_hash}
            event = AuditEntry("document.delete", (document_id, row.collection_id), detail)
            self._audit.append(conn, [event])

        self._db.write(work)

    def list_chunks(self, document_id: str) -> list[StoredChunk]:
        query = (
            select(*_CHUNK_COLUMNS, documents.c.title, documents.c.metadata)
            .join(documents, _live_chunk)
            .where(chunks.c.document_id == document_id)
            .order_by(chunks.c.ordinal)
        )

        def work(conn: Connection) -> list[StoredChunk]:
            document_row(conn, document_id)
            return [chunk_from_row(row) for row in conn.execute(query).all()]

        return self._db.read(work)

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        row_ids = _row_ids(chunk_ids)
        if not row_ids:
            return {}
        query = (
            select(*_CHUNK_COLUMNS, documents.c.title, documents.c.metadata)
            .join(documents, _live_chunk)
            .where(chunks.c.id.in_(row_ids), documents.c.status == "ready")
        )
        rows = self._db.read(lambda conn: conn.execute(query).all())
        found = [chunk_from_row(row) for row in rows]
        return {chunk.id: chunk for chunk in found}

    def status_counts(self) -> dict[str, int]:
        query = select(documents.c.status, func.count()).group_by(documents.c.status)
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return {status: count for status, count in rows}

    def status_counts_by_collection(self) -> dict[str, dict[str, int]]:
        query = select(documents.c.collection_id, documents.c.status, func.count()).group_by(
            documents.c.collection_id, documents.c.status
        )
        found: dict[str, dict[str, int]] = {}
        for collection_id, status, count in self._db.read(lambda conn: conn.execute(query).all()):
            found.setdefault(collection_id, {})[status] = count
        return found

    def oldest_queued_at(self) -> dt.datetime | None:
        # Due documents only: one still backing off from a failed attempt is not waiting
        # for a worker yet, so it waits from the end of its backoff.
        since = func.coalesce(documents.c.next_attempt_at, documents.c.created_at)
        query = select(func.min(since)).where(
            documents.c.status == "queued",
            or_(documents.c.next_attempt_at.is_(None), documents.c.next_attempt_at <= utcnow()),
        )
        oldest: dt.datetime | None = self._db.read(lambda conn: conn.execute(query).scalar())
        return oldest

    def get_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Vector]:
        if not _row_ids(chunk_ids):
            return {}
        return self._db.read(lambda conn: read_vectors(conn, chunk_ids))


def read_vectors(conn: Connection, chunk_ids: Sequence[str]) -> dict[str, Vector]:
    """Stored vectors by public chunk id, in the order asked; unknown ids are skipped."""
    row_ids = _row_ids(chunk_ids)
    if not row_ids:
        return {}
    query = select(chunks.c.id, chunks.c.embedding).where(chunks.c.id.in_(row_ids))
    found = dict(conn.execute(query).all())
    return {
        chunk_public_id(row_id): vector_from_bytes(found[row_id])
        for row_id in row_ids
        if row_id in found
    }


def _row_ids(chunk_ids: Sequence[str]) -> list[int]:
    """The row ids behind public chunk ids; ids that cannot be ours are dropped."""
    return [rid for rid in (chunk_row_id(cid) for cid in chunk_ids) if rid is not None]


def _find_duplicate(conn: Connection, new: NewDocument) -> Any:
    """The oldest live document of the collection with the same content or source."""
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


def _created(document_id: str, new: NewDocument) -> AuditEntry:
    """The ``document.create`` event: where it came from and hashes, never its text."""
    return AuditEntry(
        "document.create",
        (document_id, new.collection_id),
        {
            "source_type": new.source_type,
            "mime_type": new.mime_type,
            "bytes": len(new.content),
            "content_hash": new.content_hash,
            "source_hash": new.source_hash,
        },
    )


def _insert(conn: Connection, document_id: str, new: NewDocument) -> None:
    now = utcnow()
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
    conn.execute(insert(document_sources).values(document_id=document_id, content=new.content))


__all__ = ["SqlDocuments", "read_vectors"]
