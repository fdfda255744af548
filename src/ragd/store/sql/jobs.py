"""The document row as a durable job: claim with a lease, finish, fail, release.

A worker claims queued documents (and processing ones whose lease expired, so a crashed
worker's job is picked up again), extends its lease while working, and finishes with an
atomic swap of the document's chunks. Every finishing call checks the lease owner, so a
worker that lost its lease cannot overwrite the work of the one that took over.

Finishing is written once, for a batch (``SqlJobQueue._complete``); finishing one
document is a batch of one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from ragd.audit import AuditEntry
from ragd.domain import Document, Job, JobCompletion, NewChunk
from ragd.store.base import LeaseLost
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.convert import vector_to_bytes
from ragd.store.sql.database import Database
from ragd.store.sql.dialect import Dialect
from ragd.store.sql.leases import due, leased_by_dead_owners
from ragd.store.sql.queries import bump_chunks_version, documents_by_id
from ragd.store.tables import chunks, collections, document_sources, documents, utcnow


class SqlJobQueue:
    """Job-queue operations over the documents table."""

    _db: Database
    _audit: AuditChain

    def claim_jobs(self, *, owner: str, limit: int, lease_s: float) -> list[Job]:
        def work(conn: Connection) -> list[Job]:
            now = utcnow()
            candidates = (
                select(documents.c.id)
                .where(due(documents, running="processing", now=now))
                .order_by(documents.c.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = list(conn.execute(candidates).scalars())
            if not ids:
                return []
            conn.execute(
                update(documents)
                .where(documents.c.id.in_(ids))
                .values(
                    status="processing",
                    lease_owner=owner,
                    lease_expires_at=now + dt.timedelta(seconds=lease_s),
                    attempts=documents.c.attempts + 1,
                    updated_at=now,
                )
            )
            rows = conn.execute(
                select(
                    documents,
                    document_sources.c.content,
                    collections.c.embedding_model,
                )
                .join(document_sources, document_sources.c.document_id == documents.c.id)
                .join(collections, collections.c.id == documents.c.collection_id)
                .where(documents.c.id.in_(ids))
                .order_by(documents.c.created_at)
            ).all()
            return [_job_from_row(row, owner) for row in rows]

        return self._db.write(work)

    def extend_leases(self, *, owner: str, document_ids: Sequence[str], lease_s: float) -> None:
        if not document_ids:
            return
        statement = (
            update(documents)
            .where(
                documents.c.id.in_(list(document_ids)),
                documents.c.lease_owner == owner,
                documents.c.status == "processing",
            )
            .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_s))
        )
        self._db.write(lambda conn: conn.execute(statement))

    def complete_job(self, completion: JobCompletion) -> Document:
        done = self._complete([completion])[0]
        if done is None:
            raise LeaseLost(
                f"document {completion.document_id} is no longer leased by {completion.lease_owner}"
            )
        return done

    def complete_jobs(self, completions: Sequence[JobCompletion]) -> list[Document | None]:
        return self._complete(completions)

    def _complete(self, completions: Sequence[JobCompletion]) -> list[Document | None]:
        """Both finishing calls: one commit and a handful of statements per batch instead
        of several per document (for short documents that was most of the cost of
        storing them). Private, so that the one-by-one fallback after a failed batch
        does not depend on the batch entry point."""
        if not completions:
            return []

        def work(conn: Connection) -> list[Document]:
            owned = _owned(conn, completions)
            if not owned:
                return []
            now = utcnow()
            duplicates = _batch_duplicates(conn, owned)
            for row, completion in owned:
                if row.id in duplicates:
                    _mark_duplicate(conn, completion, duplicates[row.id], now)
            swapped = [(row, c) for row, c in owned if row.id not in duplicates]
            self._swap_chunks(conn, swapped)
            _mark_ready(conn, swapped, now)
            for collection_id in sorted({row.collection_id for row, _ in swapped}):
                bump_chunks_version(conn, collection_id)
            done = documents_by_id(conn, [row.id for row, _ in owned])
            self._audit.append(conn, [_finished(row, c, duplicates) for row, c in owned])
            return done

        found = {d.id: d for d in self._db.write(work)}
        return [found.get(c.document_id) for c in completions]

    def _swap_chunks(self, conn: Connection, swapped: Sequence[tuple[Any, JobCompletion]]) -> None:
        swap_chunks(conn, self._db.dialect, swapped)

    def fail_job(
        self, *, document_id: str, owner: str, error: str, retry_at: dt.datetime | None
    ) -> None:
        values: dict[str, Any] = {
            "error": error[:2000],
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": utcnow(),
        }
        if retry_at is None:
            values["status"] = "failed"
        else:
            values.update(status="queued", next_attempt_at=retry_at)
        statement = (
            update(documents)
            .where(documents.c.id == document_id, documents.c.lease_owner == owner)
            .values(**values)
        )

        def work(conn: Connection) -> None:
            failed = conn.execute(statement.returning(documents.c.collection_id)).first()
            if failed is not None and retry_at is None:
                event = AuditEntry(
                    "ingestion.fail", (document_id, failed.collection_id), {"error": error[:200]}
                )
                self._audit.append(conn, [event])

        self._db.write(work)

    def release_orphaned_jobs(self, *, host: str, is_alive: Callable[[int], bool]) -> int:
        dead = self._db.read(
            lambda conn: leased_by_dead_owners(
                conn, documents, running="processing", host=host, is_alive=is_alive
            )
        )
        if not dead:
            return 0
        statement = (
            update(documents)
            .where(documents.c.id.in_(dead), documents.c.status == "processing")
            .values(status="queued", lease_owner=None, lease_expires_at=None, updated_at=utcnow())
        )
        return int(self._db.write(lambda conn: conn.execute(statement).rowcount))

    def release_jobs(self, *, owner: str) -> int:
        statement = (
            update(documents)
            .where(documents.c.lease_owner == owner, documents.c.status == "processing")
            .values(
                status="queued",
                attempts=documents.c.attempts - 1,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=utcnow(),
            )
        )
        return int(self._db.write(lambda conn: conn.execute(statement).rowcount))


def swap_chunks(
    conn: Connection, dialect: Dialect, swapped: Sequence[tuple[Any, JobCompletion]]
) -> None:
    """Replace the documents' chunks (one delete, one multi-row insert) and index the
    new ones, in the caller's transaction: the swap is atomic. Each row needs ``id``,
    ``collection_id`` and ``title`` (the document's, or None to take the completion's);
    synced sources replace a document's chunks through this too."""
    if not swapped:
        return
    conn.execute(delete(chunks).where(chunks.c.document_id.in_([row.id for row, _ in swapped])))
    values = [value for row, c in swapped for value in _chunk_values(row, c)]
    if not values:
        return
    inserted = conn.execute(
        insert(chunks).returning(chunks.c.id, sort_by_parameter_order=True), values
    )
    ids = iter(r[0] for r in inserted.all())
    entries: list[tuple[int, str, NewChunk]] = [
        (next(ids), row.title or completion.title or "", chunk)
        for row, completion in swapped
        for chunk in completion.chunks
    ]
    dialect.index_chunks(conn, entries)


def _owned(
    conn: Connection, completions: Sequence[JobCompletion]
) -> list[tuple[Any, JobCompletion]]:
    """The completions whose document is still leased by their owner, with its row
    (locked until commit, so the lease cannot move under the swap)."""
    rows = {
        row.id: row
        for row in conn.execute(
            select(documents)
            .where(
                documents.c.id.in_([c.document_id for c in completions]),
                documents.c.status == "processing",
            )
            .with_for_update()
        ).all()
    }
    return [
        (rows[c.document_id], c)
        for c in completions
        if c.document_id in rows and rows[c.document_id].lease_owner == c.lease_owner
    ]


def _batch_duplicates(
    conn: Connection, owned: Sequence[tuple[Any, JobCompletion]]
) -> dict[str, str]:
    """Which documents duplicate a live one: id -> the original's id.

    A document whose text turns out to duplicate another live one (found only now when
    the text could not be known at upload, as with PDFs) fails instead of becoming
    ready. One query for the whole batch, then the decisions document by document in
    order: each one that becomes ready counts as live for the ones after it, and one
    that fails as a duplicate no longer does."""
    live: dict[tuple[str, str], set[str]] = defaultdict(set)
    found = conn.execute(
        select(documents.c.id, documents.c.collection_id, documents.c.content_hash).where(
            documents.c.collection_id.in_(sorted({row.collection_id for row, _ in owned})),
            documents.c.content_hash.in_(sorted({c.content_hash for _, c in owned})),
            documents.c.status != "failed",
        )
    ).all()
    for other in found:
        live[(other.collection_id, other.content_hash)].add(other.id)
    duplicates: dict[str, str] = {}
    for row, completion in owned:
        old = (row.collection_id, row.content_hash)
        new = (row.collection_id, completion.content_hash)
        others = live[new] - {row.id}
        live[old].discard(row.id)
        if others:
            duplicates[row.id] = min(others)
        else:
            live[new].add(row.id)
    return duplicates


def _finished(row: Any, completion: JobCompletion, duplicates: dict[str, str]) -> AuditEntry:
    """``ingestion.finish`` (chunks and content hash), or ``ingestion.fail`` for a
    document found to duplicate another."""
    target = (row.id, row.collection_id)
    if row.id in duplicates:
        duplicate = {"reason": "duplicate", "original": duplicates[row.id]}
        return AuditEntry("ingestion.fail", target, duplicate)
    detail = {"chunks": len(completion.chunks), "content_hash": completion.content_hash}
    return AuditEntry("ingestion.finish", target, detail)


def _mark_duplicate(
    conn: Connection, completion: JobCompletion, original: str, now: dt.datetime
) -> None:
    conn.execute(
        update(documents)
        .where(documents.c.id == completion.document_id)
        .values(
            status="failed",
            error=f"duplicate content: same as document {original}",
            content_hash=completion.content_hash,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )


def _mark_ready(
    conn: Connection, swapped: Sequence[tuple[Any, JobCompletion]], now: dt.datetime
) -> None:
    if not swapped:
        return
    conn.execute(
        update(documents)
        .where(documents.c.id == bindparam("b_id"))
        .values(
            status="ready",
            error=None,
            title=bindparam("b_title"),
            mime_type=bindparam("b_mime_type"),
            content_hash=bindparam("b_content_hash"),
            chunk_count=bindparam("b_chunk_count"),
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=None,
            ready_at=now,
            updated_at=now,
        ),
        [
            {
                "b_id": row.id,
                "b_title": row.title or c.title,
                "b_mime_type": c.mime_type,
                "b_content_hash": c.content_hash,
                "b_chunk_count": len(c.chunks),
            }
            for row, c in swapped
        ],
    )


def _chunk_values(row: Any, completion: JobCompletion) -> list[dict[str, Any]]:
    """Rows for a document's chunks; the title is copied onto each so that a database can
    index it with the chunk (PostgreSQL's generated tsvector reads only its own row)."""
    title = row.title or completion.title
    return [
        {
            "document_id": row.id,
            "collection_id": row.collection_id,
            "ordinal": chunk.ordinal,
            "text": chunk.text,
            "heading_path": list(chunk.heading_path),
            "title": title,
            "token_count": chunk.token_count,
            "char_start": chunk.char_start,
            "char_end": chunk.char_end,
            "text_hash": chunk.text_hash,
            "embedding": vector_to_bytes(chunk.embedding),
        }
        for chunk in completion.chunks
    ]


# A job is its document row's columns of these names, plus the source and the model
# that the claim joins in.
_JOB_COLUMNS = (
    "collection_id",
    "title",
    "source_type",
    "source",
    "mime_type",
    "content_hash",
    "attempts",
    "content",
    "embedding_model",
)


def _job_from_row(row: Any, owner: str) -> Job:
    m = row._mapping
    return Job(document_id=m["id"], lease_owner=owner, **{name: m[name] for name in _JOB_COLUMNS})


__all__ = ["SqlJobQueue", "swap_chunks"]
