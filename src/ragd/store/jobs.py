"""The document row as a durable job: claim with a lease, finish, fail, release.

A worker claims queued documents (and processing ones whose lease expired, so a crashed
worker's job is picked up again), extends its lease while working, and finishes with an
atomic swap of the document's chunks. Every finishing call checks the lease owner, so a
worker that lost its lease cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from ragd.errors import RagdError
from ragd.models import chunks, collections, document_sources, documents, utcnow
from ragd.store.convert import document_from_row, vector_to_bytes
from ragd.store.records import Document, Job, JobCompletion
from ragd.store.sql_store import SqlStore


class LeaseLost(RagdError):
    """The job's lease expired and another worker owns the document now."""


class JobsStore(SqlStore):
    """Job-queue operations over the documents table."""

    def claim_jobs(self, *, owner: str, limit: int, lease_s: float) -> list[Job]:
        now = utcnow()
        due = or_(
            and_(
                documents.c.status == "queued",
                or_(documents.c.next_attempt_at.is_(None), documents.c.next_attempt_at <= now),
            ),
            and_(documents.c.status == "processing", documents.c.lease_expires_at < now),
        )
        candidates = (
            select(documents.c.id)
            .where(due)
            .order_by(documents.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._write() as conn:
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

    def extend_leases(self, *, owner: str, document_ids: Sequence[str], lease_s: float) -> None:
        if not document_ids:
            return
        with self._write() as conn:
            conn.execute(
                update(documents)
                .where(
                    documents.c.id.in_(list(document_ids)),
                    documents.c.lease_owner == owner,
                    documents.c.status == "processing",
                )
                .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_s))
            )

    def complete_job(self, completion: JobCompletion) -> Document:
        """Swap in the document's chunks and mark it ready, all in one transaction."""
        now = utcnow()
        with self._write() as conn:
            row = self._owned_row(conn, completion.document_id, completion.lease_owner)
            duplicate_of = self._duplicate_of(conn, row, completion.content_hash)
            if duplicate_of is not None:
                conn.execute(
                    update(documents)
                    .where(documents.c.id == completion.document_id)
                    .values(
                        status="failed",
                        error=f"duplicate content: same as document {duplicate_of}",
                        content_hash=completion.content_hash,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                )
            else:
                self._swap_chunks(conn, row, completion)
                conn.execute(
                    update(documents)
                    .where(documents.c.id == completion.document_id)
                    .values(
                        status="ready",
                        error=None,
                        title=row.title or completion.title,
                        mime_type=completion.mime_type,
                        content_hash=completion.content_hash,
                        chunk_count=len(completion.chunks),
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=None,
                        ready_at=now,
                        updated_at=now,
                    )
                )
                self._bump_chunks_version(conn, row.collection_id)
        return self.get_document(completion.document_id)

    def _owned_row(self, conn: Connection, document_id: str, owner: str) -> Any:
        row = conn.execute(
            select(documents).where(
                documents.c.id == document_id,
                documents.c.lease_owner == owner,
                documents.c.status == "processing",
            )
        ).first()
        if row is None:
            raise LeaseLost(f"document {document_id} is no longer leased by {owner}")
        return row

    def _duplicate_of(self, conn: Connection, row: Any, content_hash: str) -> str | None:
        """Another live document in the collection with the same text (found only now
        when the text could not be known at upload, as with PDFs)."""
        return conn.execute(
            select(documents.c.id)
            .where(
                documents.c.collection_id == row.collection_id,
                documents.c.content_hash == content_hash,
                documents.c.id != row.id,
                documents.c.status != "failed",
            )
            .limit(1)
        ).scalar()

    def _swap_chunks(self, conn: Connection, row: Any, completion: JobCompletion) -> None:
        conn.execute(delete(chunks).where(chunks.c.document_id == row.id))
        if not completion.chunks:
            return
        values = [
            {
                "document_id": row.id,
                "collection_id": row.collection_id,
                "ordinal": chunk.ordinal,
                "text": chunk.text,
                "heading_path": list(chunk.heading_path),
                "token_count": chunk.token_count,
                "char_start": chunk.char_start,
                "char_end": chunk.char_end,
                "text_hash": chunk.text_hash,
                "embedding": vector_to_bytes(chunk.embedding),
            }
            for chunk in completion.chunks
        ]
        inserted = conn.execute(
            insert(chunks).returning(chunks.c.id, sort_by_parameter_order=True), values
        )
        ids = [r[0] for r in inserted.all()]
        title = row.title or completion.title or ""
        self._index_chunks(conn, ids, title, completion)

    def _index_chunks(
        self, conn: Connection, ids: list[int], title: str, completion: JobCompletion
    ) -> None:
        """Add full-text entries for new chunks; databases that index a generated
        column need nothing here."""

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
        with self._write() as conn:
            conn.execute(
                update(documents)
                .where(documents.c.id == document_id, documents.c.lease_owner == owner)
                .values(**values)
            )

    def release_orphaned_jobs(self, *, host: str, is_alive: Callable[[int], bool]) -> int:
        """Requeue jobs leased by workers on this host whose process is gone.

        Owners are ``host:pid:nonce``; after a crash or ``kill -9`` the restarted server
        need not wait for the lease to expire. The attempt stays charged, so a document
        that kills its worker every time still ends ``failed``.
        """
        with self._read() as conn:
            rows = conn.execute(
                select(documents.c.id, documents.c.lease_owner).where(
                    documents.c.status == "processing",
                    documents.c.lease_owner.like(f"{host}:%"),
                )
            ).all()
        dead = [row.id for row in rows if not is_alive(_owner_pid(row.lease_owner))]
        if not dead:
            return 0
        with self._write() as conn:
            result = conn.execute(
                update(documents)
                .where(documents.c.id.in_(dead), documents.c.status == "processing")
                .values(
                    status="queued", lease_owner=None, lease_expires_at=None, updated_at=utcnow()
                )
            )
        return int(result.rowcount)

    def release_jobs(self, *, owner: str) -> int:
        """Hand back unfinished jobs on shutdown without charging them an attempt."""
        with self._write() as conn:
            result = conn.execute(
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
        return int(result.rowcount)


def _owner_pid(owner: str) -> int:
    parts = owner.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1


def _job_from_row(row: Any, owner: str) -> Job:
    m = row._mapping
    return Job(
        document_id=m["id"],
        collection_id=m["collection_id"],
        title=m["title"],
        source_type=m["source_type"],
        source=m["source"],
        mime_type=m["mime_type"],
        content_hash=m["content_hash"],
        attempts=m["attempts"],
        lease_owner=owner,
        content=m["content"],
        embedding_model=m["embedding_model"],
    )


__all__ = ["JobsStore", "LeaseLost", "document_from_row"]
