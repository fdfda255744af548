"""A whole collection out of the database and into another: :class:`~ragd.store.base.TransferStore`.

Export reads one snapshot in one read transaction and streams it to a sink in batches
(server-side cursors on PostgreSQL), so a 100k-chunk collection never sits in memory.
Import writes everything in one write transaction: a process killed half-way leaves
nothing, and readers see the collection only once it is complete. The SQL is portable;
what a database does differently (full-text entries, the vector index) goes through its
Dialect as for any other chunk insert.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Select, insert, select
from sqlalchemy.exc import IntegrityError

from ragd.audit import AuditEntry
from ragd.domain import (
    ChatSession,
    ChunkRecord,
    Document,
    ImportOutcome,
    ImportPlan,
    NewChunk,
)
from ragd.errors import Conflict, InvalidInput, NotFound
from ragd.store.base import ExportSink, ImportSource
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.chat import message_from_row, session_from_row
from ragd.store.sql.collections import collection_with_counts
from ragd.store.sql.convert import (
    chunk_public_id,
    document_from_row,
    vector_from_bytes,
)
from ragd.store.sql.database import Database
from ragd.store.sql.queries import bump_chunks_version
from ragd.store.tables import (
    api_keys,
    chat_messages,
    chat_sessions,
    chunks,
    collections,
    document_sources,
    documents,
    new_id,
    utcnow,
)

# Rows per id-existence probe and per multi-row insert.
_WRITE_BATCH = 500
# Source blobs may be tens of MB each: fetch them a few at a time.
_SOURCE_BATCH = 8


class SqlTransfer:
    """Export and import of whole collections."""

    _db: Database
    _audit: AuditChain

    def export_collection(
        self, collection_id: str, sink: ExportSink, *, with_chats: bool, batch_size: int
    ) -> None:
        def work(conn: Connection) -> None:
            collection = collection_with_counts(conn, collection_id)
            if collection is None:
                raise NotFound(f"collection {collection_id!r} not found")
            sink.start(collection)
            in_collection = documents.c.collection_id == collection_id
            query = select(documents).where(in_collection).order_by(documents.c.id)
            for rows in _batches(conn, query, batch_size):
                sink.documents([document_from_row(row) for row in rows])
            sources = (
                select(document_sources.c.document_id, document_sources.c.content)
                .join(documents, documents.c.id == document_sources.c.document_id)
                .where(in_collection)
                .order_by(document_sources.c.document_id)
            )
            for rows in _batches(conn, sources, _SOURCE_BATCH):
                for row in rows:
                    sink.source(row.document_id, bytes(row.content))
            chunk_rows = (
                select(chunks).where(chunks.c.collection_id == collection_id).order_by(chunks.c.id)
            )
            for rows in _batches(conn, chunk_rows, batch_size):
                sink.chunks([_chunk_record(row) for row in rows])
            if with_chats:
                _export_chats(conn, collection_id, sink, batch_size)

        self._db.snapshot(work)

    def import_collection(self, plan: ImportPlan, source: ImportSource) -> ImportOutcome:
        self._db.dialect.prepare_dimension(self._db, plan.embedding_dim)

        def work(conn: Connection) -> ImportOutcome:
            outcome = _Import(conn, plan, source, self._db).run()
            # Last, as every append: the chain's head lock is held only until commit.
            self._audit.append(conn, [_import_event(plan, outcome)])
            return outcome

        return self._db.write(work)


class _Import:
    """One import transaction; a new instance per attempt, since a retry starts over."""

    def __init__(self, conn: Connection, plan: ImportPlan, source: ImportSource, db: Database):
        self.conn = conn
        self.plan = plan
        self.source = source
        self.db = db
        self.now = utcnow()
        self.collection_id = new_id("col")
        self.document_ids: dict[str, str] = {}
        self.document_titles: dict[str, str | None] = {}
        # Old public chunk id -> new, kept only when chats need their citations remapped.
        self.chunk_ids: dict[str, str] = {}
        self.counts = {"documents": 0, "chunks": 0, "requeued": 0, "sources": 0}

    def run(self) -> ImportOutcome:
        self._create_collection()
        keep_ids = not self._any_document_exists()
        for batch in self.source.documents():
            self._insert_documents(batch, keep_ids)
        if self.plan.reuse_embeddings:
            for chunk_batch in self.source.chunks():
                self._insert_chunks(chunk_batch)
            bump_chunks_version(self.conn, self.collection_id)
        sessions, messages = self._import_chats() if self.plan.with_chats else (0, 0)
        collection = collection_with_counts(self.conn, self.collection_id)
        assert collection is not None  # written above, in this transaction
        return ImportOutcome(
            collection=collection,
            documents=self.counts["documents"],
            chunks=self.counts["chunks"],
            requeued=self.counts["requeued"],
            sources=self.counts["sources"],
            chat_sessions=sessions,
            chat_messages=messages,
            document_ids_kept=keep_ids,
        )

    def _create_collection(self) -> None:
        taken = self.conn.execute(
            select(collections.c.id).where(collections.c.name == self.plan.name)
        ).first()
        if taken is not None:
            raise Conflict(f"a collection named {self.plan.name!r} already exists")
        values = {
            "id": self.collection_id,
            "name": self.plan.name,
            "description": self.plan.description,
            "embedding_model": self.plan.embedding_model,
            "embedding_dim": self.plan.embedding_dim,
            "chunks_version": 0,
            "created_at": self.now,
            "updated_at": self.now,
        }
        try:
            self.conn.execute(insert(collections).values(**values))
        except IntegrityError:  # created by someone else since the check above
            raise Conflict(f"a collection named {self.plan.name!r} already exists") from None

    def _any_document_exists(self) -> bool:
        for batch in self.source.documents():
            ids = [d.id for d in batch]
            if (
                ids
                and self.conn.execute(
                    select(documents.c.id).where(documents.c.id.in_(ids)).limit(1)
                ).first()
            ):
                return True
        return False

    def _insert_documents(self, batch: Sequence[Document], keep_ids: bool) -> None:
        rows: list[dict[str, Any]] = []
        sources: list[dict[str, Any]] = []
        for document in batch:
            if document.id in self.document_ids:
                raise InvalidInput(f"the archive lists document {document.id} twice")
            new = document.id if keep_ids else new_id("doc")
            self.document_ids[document.id] = new
            self.document_titles[document.id] = document.title
            content = self.source.source(document.id)
            rows.append(self._document_values(document, new, has_source=content is not None))
            if content is not None:
                sources.append({"document_id": new, "content": content})
        for part in _slices(rows, _WRITE_BATCH):
            self.conn.execute(insert(documents), part)
        # Sources one by one: each may be large, and a multi-row insert would hold them all.
        for values in sources:
            self.conn.execute(insert(document_sources).values(**values))
        self.counts["documents"] += len(rows)
        self.counts["sources"] += len(sources)

    def _document_values(self, document: Document, new: str, *, has_source: bool) -> dict[str, Any]:
        status, error, ready_at = document.status, document.error, document.ready_at
        chunk_count, attempts = document.chunk_count, document.attempts
        if status == "processing" or (status == "ready" and not self.plan.reuse_embeddings):
            # Leases belong to the source database's workers; another model needs new
            # vectors. Either way the target's workers ingest it from its source.
            status, error, ready_at, chunk_count, attempts = "queued", None, None, 0, 0
        if status == "queued":
            chunk_count, ready_at = 0, None
            if has_source:
                self.counts["requeued"] += 1
            else:
                status, error = "failed", "imported without its source: nothing to ingest"
        return {
            "id": new,
            "collection_id": self.collection_id,
            "title": document.title,
            "source_type": document.source_type,
            "source": document.source,
            "mime_type": document.mime_type,
            "content_hash": document.content_hash,
            "source_hash": document.source_hash,
            "metadata": document.metadata,
            "status": status,
            "error": error,
            "attempts": attempts,
            "lease_owner": None,
            "lease_expires_at": None,
            "next_attempt_at": None,
            "chunk_count": chunk_count,
            "created_at": document.created_at,
            "updated_at": document.updated_at,
            "ready_at": ready_at,
        }

    def _insert_chunks(self, batch: Sequence[ChunkRecord]) -> None:
        size = self.plan.embedding_dim * 4
        values: list[dict[str, Any]] = []
        for chunk in batch:
            document_id = self.document_ids.get(chunk.document_id)
            if document_id is None:
                raise InvalidInput(f"chunk {chunk.id} belongs to no document of the archive")
            if chunk.embedding is None or len(chunk.embedding) != size:
                raise InvalidInput(
                    f"chunk {chunk.id}: its vector is not {self.plan.embedding_dim} floats"
                )
            values.append(
                {
                    "document_id": document_id,
                    "collection_id": self.collection_id,
                    "ordinal": chunk.ordinal,
                    "text": chunk.text,
                    "heading_path": list(chunk.heading_path),
                    "title": self.document_titles[chunk.document_id],
                    "token_count": chunk.token_count,
                    "char_start": chunk.char_start,
                    "char_end": chunk.char_end,
                    "text_hash": chunk.text_hash,
                    "embedding": chunk.embedding,
                }
            )
        if not values:
            return
        try:
            inserted = self.conn.execute(
                insert(chunks).returning(chunks.c.id, sort_by_parameter_order=True), values
            ).all()
        except IntegrityError:
            raise InvalidInput(
                "the archive holds two chunks of one document at one place"
            ) from None
        entries = [
            (row_id, value["title"] or "", _new_chunk(value, chunk))
            for (row_id,), value, chunk in zip(inserted, values, batch, strict=True)
        ]
        self.db.dialect.index_chunks(self.conn, entries)
        if self.plan.with_chats:
            for (row_id,), chunk in zip(inserted, batch, strict=True):
                self.chunk_ids[chunk.id] = chunk_public_id(row_id)
        self.counts["chunks"] += len(values)

    def _import_chats(self) -> tuple[int, int]:
        known_keys = set(self.conn.execute(select(api_keys.c.id)).scalars())
        known_collections = set(self.conn.execute(select(collections.c.id)).scalars())
        session_ids: dict[str, str] = {}
        for batch in self.source.chat_sessions():
            rows = []
            for session in batch:
                session_ids[session.id] = new_id("chat")
                rows.append(
                    _session_values(
                        session,
                        session_ids[session.id],
                        self.collection_id,
                        known_keys,
                        known_collections,
                    )
                )
            for part in _slices(rows, _WRITE_BATCH):
                self.conn.execute(insert(chat_sessions), part)
        messages = 0
        for message_batch in self.source.chat_messages():
            values = []
            for message in message_batch:
                session_id = session_ids.get(message.session_id)
                if session_id is None:
                    raise InvalidInput(f"message {message.id} belongs to no session of the archive")
                values.append(
                    {
                        "id": new_id("msg"),
                        "session_id": session_id,
                        "ordinal": message.ordinal,
                        "role": message.role,
                        "content": message.content,
                        "citations": [self._citation(c) for c in message.citations],
                        "created_at": message.created_at,
                    }
                )
            for part in _slices(values, _WRITE_BATCH):
                try:
                    self.conn.execute(insert(chat_messages), part)
                except IntegrityError:
                    raise InvalidInput(
                        "the archive numbers two messages of a session alike"
                    ) from None
            messages += len(values)
        return len(session_ids), messages

    def _citation(self, citation: dict[str, Any]) -> dict[str, Any]:
        """A stored citation pointing at the imported chunk and document (a chunk the
        archive did not carry keeps its old id: it cites what no longer exists)."""
        moved = dict(citation)
        chunk_id, document_id = citation.get("chunk_id"), citation.get("document_id")
        if isinstance(chunk_id, str) and chunk_id in self.chunk_ids:
            moved["chunk_id"] = self.chunk_ids[chunk_id]
        if isinstance(document_id, str) and document_id in self.document_ids:
            moved["document_id"] = self.document_ids[document_id]
        return moved


def _import_event(plan: ImportPlan, outcome: ImportOutcome) -> AuditEntry:
    return AuditEntry(
        "collection.import",
        (outcome.collection.id,),
        {
            "name": plan.name,
            "documents": outcome.documents,
            "chunks": outcome.chunks,
            "requeued": outcome.requeued,
            "chat_sessions": outcome.chat_sessions,
            "embeddings_reused": plan.reuse_embeddings,
            "document_ids_kept": outcome.document_ids_kept,
            "signed_by": plan.signed_by,
        },
    )


def _session_values(
    session: ChatSession,
    new: str,
    collection_id: str,
    known_keys: set[str],
    known_collections: set[str],
) -> dict[str, Any]:
    """A session row owned by the same key when that key exists here (a restore into
    the same deployment), else by nobody; its collections narrowed to the imported one
    and those that exist here."""
    return {
        "id": new,
        "key_id": session.key_id if session.key_id in known_keys else None,
        "title": session.title,
        "system_prompt": session.system_prompt,
        "collection_ids": [
            cid for cid in (session.collection_ids or ()) if cid in known_collections
        ]
        + [collection_id],
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    }


def _export_chats(conn: Connection, collection_id: str, sink: ExportSink, batch_size: int) -> None:
    """Sessions whose collection list names the collection, then their messages. The
    list is JSON, which the two databases query differently, so it is filtered here
    over the sessions that have one."""
    query = (
        select(chat_sessions)
        .where(chat_sessions.c.collection_ids.is_not(None))
        .order_by(chat_sessions.c.id)
    )
    chosen: list[str] = []
    for rows in _batches(conn, query, batch_size):
        sessions = [session_from_row(row) for row in rows]
        picked = [s for s in sessions if collection_id in (s.collection_ids or ())]
        chosen.extend(s.id for s in picked)
        if picked:
            sink.chat_sessions(picked)
    for part in _slices(chosen, _WRITE_BATCH):
        messages = (
            select(chat_messages)
            .where(chat_messages.c.session_id.in_(part))
            .order_by(chat_messages.c.session_id, chat_messages.c.ordinal)
        )
        for rows in _batches(conn, messages, batch_size):
            sink.chat_messages([message_from_row(row) for row in rows])


def _batches(conn: Connection, query: Select[Any], size: int) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` ``size`` at a time, fetched as they are consumed (a
    server-side cursor on PostgreSQL)."""
    result = conn.execution_options(yield_per=size).execute(query)
    yield from result.partitions(size)


def _slices(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _chunk_record(row: Any) -> ChunkRecord:
    m = row._mapping
    return ChunkRecord(
        id=chunk_public_id(m["id"]),
        document_id=m["document_id"],
        ordinal=m["ordinal"],
        text=m["text"],
        heading_path=tuple(m["heading_path"] or ()),
        token_count=m["token_count"],
        char_start=m["char_start"],
        char_end=m["char_end"],
        text_hash=m["text_hash"],
        embedding=m["embedding"],
    )


def _new_chunk(values: dict[str, Any], chunk: ChunkRecord) -> NewChunk:
    """The chunk as the dialect's full-text hook takes it."""
    assert chunk.embedding is not None
    return NewChunk(
        ordinal=chunk.ordinal,
        text=chunk.text,
        heading_path=chunk.heading_path,
        token_count=chunk.token_count,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        text_hash=chunk.text_hash,
        embedding=vector_from_bytes(chunk.embedding),
    )


__all__ = ["SqlTransfer"]
