"""Collections over SQL: :class:`~ragd.store.base.CollectionStore` for every database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ragd.audit import AuditEntry
from ragd.domain import Collection
from ragd.errors import Conflict, NotFound
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.background_jobs import cancel_collection_jobs
from ragd.store.sql.convert import collection_from_row
from ragd.store.sql.database import Database
from ragd.store.tables import chunks, collections, documents, new_id, utcnow


class SqlCollections:
    """Collection rows, with document and chunk counts on request."""

    _db: Database
    _audit: AuditChain

    def create_collection(
        self, *, name: str, description: str, embedding_model: str, embedding_dim: int
    ) -> Collection:
        self._db.dialect.prepare_dimension(self._db, embedding_dim)
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
        event = AuditEntry(
            "collection.create",
            (collection_id,),
            {"name": name, "embedding_model": embedding_model, "embedding_dim": embedding_dim},
        )

        def work(conn: Connection) -> None:
            conn.execute(insert(collections).values(**values))
            self._audit.append(conn, [event])

        try:
            self._db.write(work)
        except IntegrityError:
            raise Conflict(f"a collection named {name!r} already exists") from None
        return self.get_collection(collection_id)

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
        statement = update(collections).where(collections.c.id == collection_id).values(**values)
        detail: dict[str, Any] = {"fields": sorted(k for k in values if k != "updated_at")}
        if name is not None:
            detail["name"] = name

        def work(conn: Connection) -> int:
            changed: int = conn.execute(statement).rowcount
            if changed:
                event = AuditEntry("collection.update", (collection_id,), detail)
                self._audit.append(conn, [event])
            return changed

        try:
            changed = self._db.write(work)
        except IntegrityError:
            raise Conflict(f"a collection named {name!r} already exists") from None
        if changed == 0:
            raise NotFound(f"collection {collection_id!r} not found")
        return self.get_collection(collection_id)

    def delete_collection(self, collection_id: str) -> None:
        def work(conn: Connection) -> int:
            document_count = conn.execute(
                select(func.count()).where(documents.c.collection_id == collection_id)
            ).scalar_one()
            # Chunks first and explicitly: their full-text rows go with them, and the
            # cascade would otherwise do it row by row through documents.
            removed = conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id))
            # And the chunks of a reindex's generation being built (their own
            # collection_id), which would otherwise only go row by row by cascade.
            of_collection = select(documents.c.id).where(documents.c.collection_id == collection_id)
            conn.execute(delete(chunks).where(chunks.c.document_id.in_(of_collection)))
            # A job's row outlives its collection; the work on it must not.
            job_events = cancel_collection_jobs(conn, collection_id)
            deleted: int = conn.execute(
                delete(collections).where(collections.c.id == collection_id)
            ).rowcount
            if deleted:
                counts = {"documents": int(document_count), "chunks": int(removed.rowcount)}
                event = AuditEntry("collection.delete", (collection_id,), counts)
                self._audit.append(conn, [event, *job_events])
            return deleted

        if self._db.write(work) == 0:
            raise NotFound(f"collection {collection_id!r} not found")

    def _collections_where(self, *conditions: Any, counts: bool = True) -> list[Collection]:
        """Collections matching ``conditions``; ``counts=False`` skips the document and
        chunk totals, which scan those tables, for callers that only need identity."""
        if not counts:
            plain = select(collections).where(*conditions).order_by(collections.c.name)
            rows = self._db.read(lambda conn: conn.execute(plain).all())
            return [collection_from_row(row) for row in rows]
        query = _counted().where(*conditions).order_by(collections.c.name)
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return [collection_from_row(row, row.document_count, row.chunk_count) for row in rows]


def collection_with_counts(conn: Connection, collection_id: str) -> Collection | None:
    """The collection with its document and chunk counts, in the caller's transaction."""
    row = conn.execute(_counted().where(collections.c.id == collection_id)).first()
    if row is None:
        return None
    return collection_from_row(row, row.document_count, row.chunk_count)


def _counted() -> Any:
    """Collections with their document and chunk counts."""
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


__all__ = ["SqlCollections", "collection_with_counts"]
