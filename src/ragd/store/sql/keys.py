"""API key rows: add, list, find by prefix, revoke, touch, and the bootstrap upsert.

A mixin over :class:`~ragd.store.sql.store.SqlStore` so that the collections and
documents code stays one concern; the SQL is portable, so every database shares it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ragd.domain import ApiKey, NewApiKey
from ragd.errors import Conflict, NotFound
from ragd.store.sql.store import SqlStore
from ragd.store.tables import api_keys, new_id, utcnow


class KeysStore(SqlStore):
    """Key operations over the ``keys`` table."""

    def add_key(self, new: NewApiKey) -> ApiKey:
        key_id = new_id("key")
        try:
            with self._write() as conn:
                conn.execute(
                    insert(api_keys).values(id=key_id, **_values(new), created_at=utcnow())
                )
        except IntegrityError:
            raise Conflict(f"a key with prefix {new.prefix!r} already exists") from None
        return self.get_key(key_id)

    def upsert_key(self, new: NewApiKey) -> ApiKey:
        """Insert ``new``, or bring the key with its prefix up to date.

        A changed hash means a new secret, so that key is active again; an unchanged
        one keeps its revocation, so revoking a bootstrap key survives a restart.
        """
        with self._write() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.prefix == new.prefix)).first()
            if row is None:
                conn.execute(
                    insert(api_keys).values(id=new_id("key"), **_values(new), created_at=utcnow())
                )
            else:
                values = _values(new)
                if row.key_hash != new.key_hash:
                    values["revoked_at"] = None
                conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(**values))
        found = self.find_key(new.prefix)
        if found is None:  # deleted by hand between the two transactions
            raise NotFound(f"key with prefix {new.prefix!r} not found")
        return found

    def list_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(
                select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
            ).all()
        return [_key_from_row(row) for row in rows]

    def get_key(self, key_id: str) -> ApiKey:
        with self._read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"key {key_id!r} not found")
        return _key_from_row(row)

    def find_key(self, prefix: str) -> ApiKey | None:
        with self._read() as conn:
            return _find(conn, prefix)

    def revoke_key(self, key_id: str) -> ApiKey:
        """Mark a key revoked; revoking it again keeps the first time."""
        with self._write() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.get_key(key_id)  # NotFound when there is no such key

    def touch_key(self, key_id: str, when: dt.datetime, *, unless_since: dt.datetime) -> None:
        """Record a use, unless one was recorded at or after ``unless_since``: the
        condition sits in the UPDATE so that several processes still write rarely."""
        with self._write() as conn:
            conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    or_(
                        api_keys.c.last_used_at.is_(None),
                        api_keys.c.last_used_at < unless_since,
                    ),
                )
                .values(last_used_at=when)
            )

    def has_active_keys(self) -> bool:
        with self._read() as conn:
            found = conn.execute(
                select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)
            ).first()
        return found is not None


def _values(new: NewApiKey) -> dict[str, Any]:
    return {
        "name": new.name,
        "prefix": new.prefix,
        "key_hash": new.key_hash,
        "scope": new.scope,
        "collection_ids": None if new.collection_ids is None else list(new.collection_ids),
    }


def _find(conn: Connection, prefix: str) -> ApiKey | None:
    row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()
    return None if row is None else _key_from_row(row)


def _key_from_row(row: Any) -> ApiKey:
    m = row._mapping
    allowed = m["collection_ids"]
    return ApiKey(
        id=m["id"],
        name=m["name"],
        prefix=m["prefix"],
        key_hash=m["key_hash"],
        scope=m["scope"],
        collection_ids=None if allowed is None else tuple(allowed),
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )
