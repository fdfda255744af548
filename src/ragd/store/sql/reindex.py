"""Reindexing a collection: build a new generation of its chunks, then switch at once.

A generation is a set of chunk rows whose ``collection_id`` is the generation's id (never
a collection's, so every search path, which scopes by collection, passes them by), and
whose ordinals are stored as ``-1 - ordinal`` (so a document's old and new chunks both
fit the ``(document_id, ordinal)`` key). The switch, in one transaction, deletes the
collection's chunks and moves the generation's in, with their ordinals restored.

Every write checks the reindex job's lease, so a worker that lost its job cannot add to
a generation another worker now builds, nor switch it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, select, update

from ragd.domain import Job, JobCompletion, NewChunk
from ragd.errors import NotFound
from ragd.store.base import LeaseLost
from ragd.store.sql.convert import vector_to_bytes
from ragd.store.sql.database import Database
from ragd.store.sql.jobs import job_from_document_row
from ragd.store.tables import chunks, collections, document_sources, documents, jobs, utcnow


def _in_generation(generation: str) -> Any:
    """Documents that have chunks in ``generation``."""
    return exists().where(
        chunks.c.document_id == documents.c.id, chunks.c.collection_id == generation
    )


def _ready_of(collection_id: str) -> Any:
    return (documents.c.collection_id == collection_id) & (documents.c.status == "ready")


class SqlReindex:
    """Generation building and switching over the chunks table."""

    _db: Database

    def reindex_pending(self, collection_id: str, *, generation: str, limit: int) -> list[Job]:
        query = (
            select(
                documents,
                document_sources.c.content,
                collections.c.embedding_model,
                collections.c.chunk_max_tokens,
            )
            .join(document_sources, document_sources.c.document_id == documents.c.id)
            .join(collections, collections.c.id == documents.c.collection_id)
            .where(_ready_of(collection_id), ~_in_generation(generation))
            .order_by(documents.c.created_at, documents.c.id)
            .limit(limit)
        )
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return [job_from_document_row(row, "") for row in rows]

    def reindex_progress(self, collection_id: str, *, generation: str) -> tuple[int, int]:
        query = select(func.count().filter(_in_generation(generation)), func.count()).where(
            _ready_of(collection_id)
        )
        done, total = self._db.read(lambda conn: conn.execute(query).one())
        return int(done), int(total)

    def add_generation_chunks(
        self, generation: str, completions: Sequence[JobCompletion], *, job_id: str, owner: str
    ) -> int:
        def work(conn: Connection) -> int:
            _hold(conn, job_id, owner)
            ids = [c.document_id for c in completions]
            alive = {
                row.id: row
                for row in conn.execute(
                    select(documents.c.id, documents.c.title).where(
                        documents.c.id.in_(ids), documents.c.status == "ready"
                    )
                ).all()
            }
            kept = [c for c in completions if c.document_id in alive]
            if not kept:
                return 0
            # Again after a crash between a batch's commit and its progress report.
            conn.execute(
                delete(chunks).where(
                    chunks.c.document_id.in_([c.document_id for c in kept]),
                    chunks.c.collection_id == generation,
                )
            )
            # No full-text entries yet: they are added at the switch (index_moved_chunks).
            values = [
                _chunk_value(
                    generation,
                    completion.document_id,
                    alive[completion.document_id].title or completion.title,
                    chunk,
                )
                for completion in kept
                for chunk in completion.chunks
            ]
            if values:
                conn.execute(insert(chunks), values)
            return len(kept)

        return int(self._db.write(work))

    def switch_generation(
        self,
        collection_id: str,
        *,
        generation: str,
        job_id: str,
        owner: str,
        embedding_model: str,
        embedding_dim: int,
        chunk_max_tokens: int | None,
    ) -> int:
        self._db.dialect.prepare_dimension(self._db, embedding_dim)

        def work(conn: Connection) -> int:
            _hold(conn, job_id, owner)
            # The collection row first: a document finishing ingestion meanwhile updates
            # it last (its chunks_version), so it waits for the switch or the switch for
            # it, and the check below sees every document that became ready.
            locked = conn.execute(
                select(collections.c.id).where(collections.c.id == collection_id).with_for_update()
            ).first()
            if locked is None:
                raise NotFound(f"collection {collection_id!r} not found")
            pending = conn.execute(
                select(func.count())
                .select_from(documents)
                .where(_ready_of(collection_id), ~_in_generation(generation))
            ).scalar_one()
            if pending:
                return int(pending)
            conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id))
            conn.execute(
                update(chunks)
                .where(chunks.c.collection_id == generation)
                .values(collection_id=collection_id, ordinal=-1 - chunks.c.ordinal)
            )
            self._db.dialect.index_moved_chunks(conn, collection_id)
            counted = (
                select(func.count())
                .where(
                    chunks.c.document_id == documents.c.id,
                    chunks.c.collection_id == collection_id,
                )
                .scalar_subquery()
            )
            conn.execute(
                update(documents)
                .where(documents.c.collection_id == collection_id)
                .values(chunk_count=counted)
            )
            conn.execute(
                update(collections)
                .where(collections.c.id == collection_id)
                .values(
                    embedding_model=embedding_model,
                    embedding_dim=embedding_dim,
                    chunk_max_tokens=chunk_max_tokens,
                    chunks_version=collections.c.chunks_version + 1,
                    updated_at=utcnow(),
                )
            )
            return 0

        return int(self._db.write(work))

    def drop_generation(self, generation: str) -> int:
        statement = delete(chunks).where(chunks.c.collection_id == generation)
        return int(self._db.write(lambda conn: conn.execute(statement).rowcount))


def _hold(conn: Connection, job_id: str, owner: str) -> None:
    """Lock the job row while ``owner`` holds its lease; ``LeaseLost`` otherwise."""
    held = conn.execute(
        select(jobs.c.id)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")
        .with_for_update()
    ).first()
    if held is None:
        raise LeaseLost(f"job {job_id} is no longer leased by {owner}")


def _chunk_value(
    generation: str, document_id: str, title: str | None, chunk: NewChunk
) -> dict[str, Any]:
    return {
        "document_id": document_id,
        "collection_id": generation,
        "ordinal": -1 - chunk.ordinal,
        "text": chunk.text,
        "heading_path": list(chunk.heading_path),
        "title": title,
        "token_count": chunk.token_count,
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
        "text_hash": chunk.text_hash,
        "embedding": vector_to_bytes(chunk.embedding),
    }


__all__ = ["SqlReindex"]
