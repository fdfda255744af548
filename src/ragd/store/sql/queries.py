"""Statements more than one aggregate runs inside its own transaction.

They take the open connection, so a caller's check and its write share one transaction
(and one retry), and no aggregate calls another's public, self-transacting method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from ragd.domain import Document
from ragd.errors import NotFound
from ragd.store.sql.convert import document_from_row
from ragd.store.tables import collections, documents


def require_collection(conn: Connection, collection_id: str) -> None:
    """``NotFound`` unless the collection exists."""
    found = conn.execute(select(collections.c.id).where(collections.c.id == collection_id))
    if found.first() is None:
        raise NotFound(f"collection {collection_id!r} not found")


def document_row(conn: Connection, document_id: str) -> Any:
    """The document's row; ``NotFound``."""
    row = conn.execute(select(documents).where(documents.c.id == document_id)).first()
    if row is None:
        raise NotFound(f"document {document_id!r} not found")
    return row


def documents_by_id(conn: Connection, document_ids: Sequence[str]) -> list[Document]:
    """The documents that exist among ``document_ids``."""
    query = select(documents).where(documents.c.id.in_(list(document_ids)))
    return [document_from_row(row) for row in conn.execute(query).all()]


def bump_chunks_version(conn: Connection, collection_id: str) -> None:
    """Tell caches of the collection's chunks (the SQLite vector matrix, in any process)
    that its chunks changed."""
    conn.execute(
        update(collections)
        .where(collections.c.id == collection_id)
        .values(chunks_version=collections.c.chunks_version + 1)
    )


__all__ = ["bump_chunks_version", "document_row", "documents_by_id", "require_collection"]
