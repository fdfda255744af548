"""The document row as a durable job: claim with a lease, finish, fail, release.

A worker claims queued documents (and processing ones whose lease expired, so a crashed
worker's job is picked up again), extends its lease while working, and finishes with an
atomic swap of the document's chunks. Every finishing call checks the lease owner, so a
worker that lost its lease cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select, update

from ragd.domain import Document, Job, JobCompletion
from ragd.store.base import LeaseLost
from ragd.store.sql.convert import vector_to_bytes
from ragd.store.sql.store import SqlStore
from ragd.store.tables import chunks, collections, document_sources, documents, utcnow


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
        with self._write() as conn:
            row = self._owned_row(conn, completion.document_id, completion.lease_owner)
            if self._finish(conn, row, completion, utcnow()):
                self._bump_chunks_version(conn, row.collection_id)
        return self.get_document(completion.document_id)

    def complete_jobs(self, completions: Sequence[JobCompletion]) -> list[Document | None]:
        """Finish many documents in one write transaction; ``None`` where the lease was lost.

        One commit and a handful of statements per batch instead of several per document:
        for short documents that was most of the cost of storing them. The outcome is the
        same as ``complete_job`` called for each in order: the lease is checked per
        document (one another worker took over is skipped, nothing of it written, while
        the rest commits), and a document duplicating another live one, including an
        earlier one of the same batch, fails. Any other error rolls the whole batch back,
        so the caller can retry the documents one by one to isolate the bad one.
        """
        if not completions:
            return []
        now = utcnow()
        with self._write() as conn:
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
            owned = [
                (rows[c.document_id], c)
                for c in completions
                if c.document_id in rows and rows[c.document_id].lease_owner == c.lease_owner
            ]
            if owned:
                duplicates = self._batch_duplicates(conn, owned)
                for row, completion in owned:
                    if row.id in duplicates:
                        self._mark_duplicate(conn, completion, duplicates[row.id], now)
                swapped = [(row, c) for row, c in owned if row.id not in duplicates]
                self._swap_chunk_batch(conn, swapped)
                self._mark_ready(conn, swapped, now)
                for collection_id in sorted({row.collection_id for row, _ in swapped}):
                    self._bump_chunks_version(conn, collection_id)
        done = [row.id for row, _ in owned]
        found = {d.id: d for d in self.get_documents(done)} if done else {}
        return [found.get(c.document_id) for c in completions]

    def _batch_duplicates(
        self, conn: Connection, owned: Sequence[tuple[Any, JobCompletion]]
    ) -> dict[str, str]:
        """Which of the batch's documents duplicate a live one: id -> the original's id.

        One query for the whole batch, then the same decisions ``_duplicate_of`` would
        make document by document: each document that becomes ready counts as live for
        the ones after it, and one that fails as a duplicate no longer does."""
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

    def _mark_duplicate(
        self, conn: Connection, completion: JobCompletion, original: str, now: dt.datetime
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

    def _swap_chunk_batch(
        self, conn: Connection, swapped: Sequence[tuple[Any, JobCompletion]]
    ) -> None:
        """``_swap_chunks`` for many documents: one delete, one multi-row insert."""
        if not swapped:
            return
        conn.execute(delete(chunks).where(chunks.c.document_id.in_([row.id for row, _ in swapped])))
        values = [value for row, c in swapped for value in _chunk_values(row, c)]
        if not values:
            return
        inserted = conn.execute(
            insert(chunks).returning(chunks.c.id, sort_by_parameter_order=True), values
        )
        ids = [r[0] for r in inserted.all()]
        start = 0
        for row, completion in swapped:
            count = len(completion.chunks)
            if count:
                title = row.title or completion.title or ""
                self._index_chunks(conn, ids[start : start + count], title, completion)
            start += count

    def _mark_ready(
        self, conn: Connection, swapped: Sequence[tuple[Any, JobCompletion]], now: dt.datetime
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

    def _finish(
        self, conn: Connection, row: Any, completion: JobCompletion, now: dt.datetime
    ) -> bool:
        """Record one leased document's outcome; True when its chunks were swapped.

        A document whose text turns out to duplicate another live one (found only now
        when the text could not be known at upload, as with PDFs) fails instead."""
        duplicate_of = self._duplicate_of(conn, row, completion.content_hash)
        if duplicate_of is not None:
            self._mark_duplicate(conn, completion, duplicate_of, now)
            return False
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
        return True

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
        inserted = conn.execute(
            insert(chunks).returning(chunks.c.id, sort_by_parameter_order=True),
            _chunk_values(row, completion),
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


__all__ = ["JobsStore"]
