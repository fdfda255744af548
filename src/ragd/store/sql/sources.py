"""Synced sources over SQL: :class:`~ragd.store.base.SourceStore` for every database.

A source's items are documents like any other, found again through ``source_items``.
Every item write is one transaction that locks the source row first, checks the
caller still holds the source's sync lease, and swaps the document's chunks
(:func:`~ragd.store.sql.jobs.swap_chunks`): a search sees the old version or the new
one, never both, and a removed item's document and chunks go in one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ragd.audit import AuditEntry
from ragd.domain import (
    JobCompletion,
    NewSource,
    Source,
    SourceItem,
    SourceItemWrite,
    SyncCounts,
    SyncOutcome,
)
from ragd.errors import NotFound
from ragd.store.base import LeaseLost
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.database import Database
from ragd.store.sql.jobs import swap_chunks
from ragd.store.sql.queries import bump_chunks_version, require_collection
from ragd.store.tables import (
    chunks,
    document_sources,
    documents,
    new_id,
    source_items,
    sources,
    utcnow,
    webhook_deliveries,
)


@dataclass(frozen=True)
class _DocumentRef:
    """What :func:`swap_chunks` reads of a document row."""

    id: str
    collection_id: str
    title: str | None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class SqlSources:
    """Sources, their items and webhook deliveries; every change of a source or of the
    documents it holds appends its audit event in the same transaction."""

    _db: Database
    _audit: AuditChain

    # -- the source rows -----------------------------------------------------------------

    def add_source(self, new: NewSource) -> Source:
        source_id = new_id("src")
        now = utcnow()

        def work(conn: Connection) -> None:
            require_collection(conn, new.collection_id)
            conn.execute(
                insert(sources).values(
                    id=source_id,
                    collection_id=new.collection_id,
                    type=new.type,
                    location=new.location,
                    mapping=new.mapping,
                    schedule=new.schedule,
                    secret=new.secret,
                    fetch_state={},
                    next_sync_at=new.next_sync_at,
                    last_status="never",
                    last_added=0,
                    last_updated=0,
                    last_deleted=0,
                    last_failed=0,
                    last_unchanged=0,
                    sync_requested=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            detail = {"type": new.type, "scheduled": new.schedule is not None}
            event = AuditEntry("source.create", (source_id, new.collection_id), detail)
            self._audit.append(conn, [event])

        self._db.write(work)
        return self.get_source(source_id)

    def get_source(self, source_id: str) -> Source:
        return _source_from_row(self._db.read(lambda conn: _source_row(conn, source_id)))

    def list_sources(self, collection_id: str) -> list[Source]:
        def work(conn: Connection) -> Sequence[Any]:
            require_collection(conn, collection_id)
            query = (
                select(sources)
                .where(sources.c.collection_id == collection_id)
                .order_by(sources.c.created_at, sources.c.id)
            )
            return conn.execute(query).all()

        return [_source_from_row(row) for row in self._db.read(work)]

    def delete_source(self, source_id: str) -> int:
        def work(conn: Connection) -> int:
            row = _source_row(conn, source_id, lock=True)
            held = select(source_items.c.document_id).where(source_items.c.source_id == source_id)
            ids = list(conn.execute(held).scalars())
            removed = _delete_documents(conn, ids)
            conn.execute(delete(sources).where(sources.c.id == source_id))
            if removed:
                bump_chunks_version(conn, row.collection_id)
            detail = {"documents": len(ids), "chunks": removed}
            event = AuditEntry("source.delete", (source_id, row.collection_id), detail)
            self._audit.append(conn, [event])
            return len(ids)

        return self._db.write(work)

    def set_source_secret(self, source_id: str, secret: str) -> Source:
        def work(conn: Connection) -> None:
            row = _source_row(conn, source_id, lock=True)
            conn.execute(
                update(sources)
                .where(sources.c.id == source_id)
                .values(secret=secret, updated_at=utcnow())
            )
            event = AuditEntry("source.rotate_secret", (source_id, row.collection_id), {})
            self._audit.append(conn, [event])

        self._db.write(work)
        return self.get_source(source_id)

    # -- items ---------------------------------------------------------------------------

    def list_source_items(self, source_id: str) -> dict[str, SourceItem]:
        query = select(source_items).where(source_items.c.source_id == source_id)
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return {
            row.item_key: SourceItem(
                key=row.item_key,
                document_id=row.document_id,
                item_hash=row.item_hash,
                etag=row.etag,
                last_modified=row.last_modified,
            )
            for row in rows
        }

    def put_source_item(self, source_id: str, *, owner: str, item: SourceItemWrite) -> str:
        def work(conn: Connection) -> str:
            row = _held_source(conn, source_id, owner)
            now = utcnow()
            existing = conn.execute(
                select(source_items.c.document_id).where(
                    source_items.c.source_id == source_id,
                    source_items.c.key_hash == key_hash(item.key),
                )
            ).first()
            if existing is None:
                document_id = new_id("doc")
                _insert_document(conn, document_id, row.collection_id, item, now)
                values = _item_values(source_id, item, now)
                conn.execute(insert(source_items).values(document_id=document_id, **values))
            else:
                document_id = existing.document_id
                _update_document(conn, document_id, item, now)
                conn.execute(
                    update(source_items)
                    .where(
                        source_items.c.source_id == source_id,
                        source_items.c.key_hash == key_hash(item.key),
                    )
                    .values(**_item_values(source_id, item, now))
                )
            completion = JobCompletion(
                document_id=document_id,
                lease_owner=owner,
                title=item.title,
                mime_type=item.mime_type,
                content_hash=item.content_hash,
                chunks=item.chunks,
            )
            ref = _DocumentRef(document_id, row.collection_id, item.title)
            swap_chunks(conn, self._db.dialect, [(ref, completion)])
            bump_chunks_version(conn, row.collection_id)
            action = "source.item_add" if existing is None else "source.item_replace"
            detail = {
                "source_id": source_id,
                "chunks": len(item.chunks),
                "content_hash": item.content_hash,
            }
            target = (str(document_id), row.collection_id)
            self._audit.append(conn, [AuditEntry(action, target, detail)])
            return str(document_id)

        return self._db.write(work)

    def touch_source_item(
        self, source_id: str, key: str, *, etag: str | None, last_modified: str | None
    ) -> None:
        statement = (
            update(source_items)
            .where(source_items.c.source_id == source_id, source_items.c.key_hash == key_hash(key))
            .values(etag=etag, last_modified=last_modified, synced_at=utcnow())
        )
        self._db.write(lambda conn: conn.execute(statement))

    def delete_source_items(self, source_id: str, *, owner: str, keys: Sequence[str]) -> int:
        if not keys:
            return 0

        def work(conn: Connection) -> int:
            row = _held_source(conn, source_id, owner)
            held = select(source_items.c.document_id).where(
                source_items.c.source_id == source_id,
                source_items.c.key_hash.in_([key_hash(k) for k in keys]),
            )
            ids = list(conn.execute(held).scalars())
            if _delete_documents(conn, ids):
                bump_chunks_version(conn, row.collection_id)
            self._audit.append(
                conn,
                [
                    AuditEntry(
                        "source.item_delete", (doc, row.collection_id), {"source_id": source_id}
                    )
                    for doc in ids
                ],
            )
            return len(ids)

        return self._db.write(work)

    # -- one sync at a time --------------------------------------------------------------

    def begin_source_sync(self, source_id: str, *, owner: str, lease_s: float) -> Source | None:
        def work(conn: Connection) -> bool:
            row = _source_row(conn, source_id, lock=True)
            now = utcnow()
            expires = row.sync_lease_expires_at
            if row.sync_owner not in (None, owner) and expires is not None and expires > now:
                conn.execute(
                    update(sources).where(sources.c.id == source_id).values(sync_requested=1)
                )
                return False
            conn.execute(
                update(sources)
                .where(sources.c.id == source_id)
                .values(
                    sync_owner=owner,
                    sync_lease_expires_at=now + dt.timedelta(seconds=lease_s),
                    sync_requested=0,
                    last_status="running",
                )
            )
            return True

        return self.get_source(source_id) if self._db.write(work) else None

    def extend_source_sync(self, source_id: str, *, owner: str, lease_s: float) -> bool:
        statement = (
            update(sources)
            .where(sources.c.id == source_id, sources.c.sync_owner == owner)
            .values(sync_lease_expires_at=utcnow() + dt.timedelta(seconds=lease_s))
        )
        return bool(self._db.write(lambda conn: conn.execute(statement).rowcount))

    def finish_source_sync(self, source_id: str, *, owner: str, outcome: SyncOutcome) -> Source:
        def work(conn: Connection) -> None:
            row = _source_row(conn, source_id, lock=True)
            if row.sync_owner != owner:
                return  # taken over after our lease lapsed: that sync records its own end
            counts = outcome.counts
            conn.execute(
                update(sources)
                .where(sources.c.id == source_id)
                .values(
                    sync_owner=None,
                    sync_lease_expires_at=None,
                    sync_requested=0,
                    last_sync_at=outcome.finished_at,
                    last_status=outcome.status,
                    last_added=counts.added,
                    last_updated=counts.updated,
                    last_deleted=counts.deleted,
                    last_failed=counts.failed,
                    last_unchanged=counts.unchanged,
                    last_error=outcome.error[:2000] if outcome.error else None,
                    fetch_state=outcome.fetch_state,
                    # A trigger that came while we ran asked for another run: due now.
                    next_sync_at=utcnow() if row.sync_requested else outcome.next_sync_at,
                    updated_at=utcnow(),
                )
            )
            detail = {"status": outcome.status, **counts.__dict__}
            event = AuditEntry("source.sync", (source_id, row.collection_id), detail)
            self._audit.append(conn, [event])

        self._db.write(work)
        return self.get_source(source_id)

    def claim_due_sources(self, *, limit: int) -> list[Source]:
        def work(conn: Connection) -> list[str]:
            now = utcnow()
            due = (
                select(sources.c.id, sources.c.schedule)
                .where(sources.c.next_sync_at <= now)
                .order_by(sources.c.next_sync_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = conn.execute(due).all()
            for row in rows:
                interval = (row.schedule or {}).get("interval_s")
                conn.execute(
                    update(sources)
                    .where(sources.c.id == row.id)
                    .values(next_sync_at=now + dt.timedelta(seconds=interval) if interval else None)
                )
            return [row.id for row in rows]

        ids = self._db.write(work)
        query = select(sources).where(sources.c.id.in_(ids)).order_by(sources.c.id)
        return [_source_from_row(r) for r in self._db.read(lambda conn: conn.execute(query).all())]

    # -- webhook replay protection -------------------------------------------------------

    def remember_webhook(self, source_id: str, signature: str, expires_at: dt.datetime) -> bool:
        def work(conn: Connection) -> bool:
            now = utcnow()
            conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.expires_at < now))
            statement = (
                self._db.dialect.insert_ignore(webhook_deliveries)
                .values(source_id=source_id, signature=signature, expires_at=expires_at)
                .returning(webhook_deliveries.c.signature)
            )
            return conn.execute(statement).first() is not None

        return self._db.write(work)


def _source_row(conn: Connection, source_id: str, *, lock: bool = False) -> Any:
    query = select(sources).where(sources.c.id == source_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"source {source_id!r} not found")
    return row


def _held_source(conn: Connection, source_id: str, owner: str) -> Any:
    """The source row, locked, while ``owner`` holds its sync; ``LeaseLost`` otherwise
    (``NotFound`` when it was deleted meanwhile)."""
    row = _source_row(conn, source_id, lock=True)
    if row.sync_owner != owner:
        raise LeaseLost(f"source {source_id} is no longer synced by {owner}")
    return row


def _delete_documents(conn: Connection, document_ids: Sequence[str]) -> int:
    """Delete documents and their chunks (their items and sources go by cascade);
    returns how many chunks went."""
    if not document_ids:
        return 0
    removed = conn.execute(delete(chunks).where(chunks.c.document_id.in_(document_ids)))
    conn.execute(delete(documents).where(documents.c.id.in_(document_ids)))
    return int(removed.rowcount or 0)


def _insert_document(
    conn: Connection, document_id: str, collection_id: str, item: SourceItemWrite, now: dt.datetime
) -> None:
    conn.execute(
        insert(documents).values(
            id=document_id,
            collection_id=collection_id,
            title=item.title,
            source_type=item.source_type,
            source=item.key[:2000],
            mime_type=item.mime_type,
            content_hash=item.content_hash,
            source_hash=None,
            metadata=item.metadata,
            status="ready",
            attempts=0,
            chunk_count=len(item.chunks),
            created_at=now,
            updated_at=now,
            ready_at=now,
        )
    )
    conn.execute(insert(document_sources).values(document_id=document_id, content=item.content))


def _update_document(
    conn: Connection, document_id: str, item: SourceItemWrite, now: dt.datetime
) -> None:
    conn.execute(
        update(documents)
        .where(documents.c.id == document_id)
        .values(
            title=item.title,
            mime_type=item.mime_type,
            content_hash=item.content_hash,
            metadata=item.metadata,
            status="ready",
            error=None,
            chunk_count=len(item.chunks),
            updated_at=now,
            ready_at=now,
        )
    )
    conn.execute(
        update(document_sources)
        .where(document_sources.c.document_id == document_id)
        .values(content=item.content)
    )


def _item_values(source_id: str, item: SourceItemWrite, now: dt.datetime) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "key_hash": key_hash(item.key),
        "item_key": item.key,
        "item_hash": item.item_hash,
        "etag": item.etag,
        "last_modified": item.last_modified,
        "synced_at": now,
    }


def _source_from_row(row: Any) -> Source:
    m = row._mapping
    return Source(
        id=m["id"],
        collection_id=m["collection_id"],
        type=m["type"],
        location=m["location"],
        mapping=dict(m["mapping"] or {}),
        schedule=m["schedule"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        last_sync_at=m["last_sync_at"],
        last_status=m["last_status"],
        last_counts=SyncCounts(
            added=m["last_added"],
            updated=m["last_updated"],
            deleted=m["last_deleted"],
            failed=m["last_failed"],
            unchanged=m["last_unchanged"],
        ),
        last_error=m["last_error"],
        next_sync_at=m["next_sync_at"],
        fetch_state=dict(m["fetch_state"] or {}),
        secret=m["secret"],
    )


__all__ = ["SqlSources", "key_hash"]
