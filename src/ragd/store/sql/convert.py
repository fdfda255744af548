"""Row ↔ record conversions and the small encodings the stores share."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import numpy as np
from sqlalchemy import Row

from ragd.domain import Collection, Document, StoredChunk, Vector
from ragd.errors import InvalidInput

CHUNK_ID_PREFIX = "chk_"


def chunk_public_id(row_id: int) -> str:
    return f"{CHUNK_ID_PREFIX}{row_id}"


def chunk_row_id(public_id: str) -> int | None:
    """The integer key behind a public chunk id, or None when it cannot be one of ours."""
    digits = public_id.removeprefix(CHUNK_ID_PREFIX)
    if public_id == digits or not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        return None
    row_id = int(digits)
    # Only the canonical spelling: "chk_01" or "chk_١" must not alias "chk_1".
    return row_id if chunk_public_id(row_id) == public_id else None


def vector_to_bytes(vector: Vector) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def vector_from_bytes(data: bytes) -> Vector:
    return np.frombuffer(data, dtype=np.float32)


def collection_from_row(row: Row[Any], document_count: int = 0, chunk_count: int = 0) -> Collection:
    m = row._mapping
    return Collection(
        id=m["id"],
        name=m["name"],
        description=m["description"],
        embedding_model=m["embedding_model"],
        embedding_dim=m["embedding_dim"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        document_count=document_count,
        chunk_count=chunk_count,
        chunk_max_tokens=m["chunk_max_tokens"],
    )


def document_from_row(row: Row[Any]) -> Document:
    m = row._mapping
    return Document(
        id=m["id"],
        collection_id=m["collection_id"],
        title=m["title"],
        source_type=m["source_type"],
        source=m["source"],
        mime_type=m["mime_type"],
        content_hash=m["content_hash"],
        source_hash=m["source_hash"],
        metadata=dict(m["metadata"] or {}),
        status=m["status"],
        error=m["error"],
        attempts=m["attempts"],
        chunk_count=m["chunk_count"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        ready_at=m["ready_at"],
    )


def chunk_from_row(row: Row[*tuple[Any, ...]]) -> StoredChunk:
    m = row._mapping
    return StoredChunk(
        id=chunk_public_id(m["id"]),
        document_id=m["document_id"],
        collection_id=m["collection_id"],
        ordinal=m["ordinal"],
        text=m["text"],
        heading_path=tuple(m["heading_path"] or ()),
        token_count=m["token_count"],
        char_start=m["char_start"],
        char_end=m["char_end"],
        title=m.get("title"),
        metadata=dict(m.get("metadata") or {}),
    )


def encode_cursor(created_at: dt.datetime, document_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), document_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Parse a cursor from :func:`encode_cursor`; anything else is the caller's mistake."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, document_id = json.loads(base64.urlsafe_b64decode(padded))
        when = dt.datetime.fromisoformat(created)
        if not isinstance(document_id, str) or when.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidInput("cursor is not valid; use next_cursor from a previous page") from None
    return when, document_id
