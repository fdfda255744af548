"""API key rows over SQL: :class:`~ragd.store.base.KeyStore` for every database.

Add, list, find by prefix, revoke, touch, and the bootstrap upsert; the SQL is
portable, so every database shares it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ragd.audit import AuditEntry
from ragd.domain import ApiKey, NewApiKey
from ragd.errors import Conflict, NotFound
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.database import Database
from ragd.store.tables import api_keys, new_id, utcnow


class SqlKeys:
    """Key operations over the ``keys`` table."""

    _db: Database
    _audit: AuditChain

    def add_key(self, new: NewApiKey) -> ApiKey:
        key_id = new_id("key")
        statement = insert(api_keys).values(id=key_id, **_values(new), created_at=utcnow())

        def work(conn: Connection) -> None:
            conn.execute(statement)
            self._audit.append(conn, [_created(key_id, new)])

        try:
            self._db.write(work)
        except IntegrityError:
            raise Conflict(f"a key with prefix {new.prefix!r} already exists") from None
        return self.get_key(key_id)

    def upsert_key(self, new: NewApiKey) -> ApiKey:

        def work(conn: Connection) -> None:
            row = conn.execute(select(api_keys).where(api_keys.c.prefix == new.prefix)).first()
            if row is None:
                key_id = new_id("key")
                conn.execute(
                    insert(api_keys).values(id=key_id, **_values(new), created_at=utcnow())
                )
                self._audit.append(conn, [_created(key_id, new)])
                return
            values = _values(new)
            if row.key_hash != new.key_hash:
                values["revoked_at"] = None
            changed = sorted(k for k, v in values.items() if row._mapping[k] != v)
            if not changed:  # every start upserts the bootstrap key: no change, no event
                return
            conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(**values))
            detail = {"prefix": new.prefix, "fields": changed}
            self._audit.append(conn, [AuditEntry("key.update", (row.id,), detail)])

        self._db.write(work)
        found = self.find_key(new.prefix)
        if found is None:  # deleted by hand between the two transactions
            raise NotFound(f"key with prefix {new.prefix!r} not found")
        return found

    def list_keys(self) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return [_key_from_row(row) for row in rows]

    def get_key(self, key_id: str) -> ApiKey:
        query = select(api_keys).where(api_keys.c.id == key_id)
        row = self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(f"key {key_id!r} not found")
        return _key_from_row(row)

    def find_key(self, prefix: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.prefix == prefix)
        row = self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else _key_from_row(row)

    def revoke_key(self, key_id: str) -> ApiKey:
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(api_keys.c.prefix)
        )

        def work(conn: Connection) -> None:
            revoked = conn.execute(statement).first()
            if revoked is not None:
                event = AuditEntry("key.revoke", (key_id,), {"prefix": revoked.prefix})
                self._audit.append(conn, [event])

        self._db.write(work)
        return self.get_key(key_id)  # NotFound when there is no such key

    def touch_key(self, key_id: str, when: dt.datetime, *, unless_since: dt.datetime) -> None:
        statement = (
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < unless_since),
            )
            .values(last_used_at=when)
        )
        self._db.write(lambda conn: conn.execute(statement))

    def has_active_keys(self) -> bool:
        query = select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)
        return self._db.read(lambda conn: conn.execute(query).first()) is not None


def _values(new: NewApiKey) -> dict[str, Any]:
    return {
        "name": new.name,
        "prefix": new.prefix,
        "key_hash": new.key_hash,
        "scope": new.scope,
        "collection_ids": None if new.collection_ids is None else list(new.collection_ids),
    }


def _created(key_id: str, new: NewApiKey) -> AuditEntry:
    """``key.create``: the prefix, name and scope; never the secret or its hash."""
    detail = {
        "prefix": new.prefix,
        "name": new.name,
        "scope": new.scope,
        "collections": None if new.collection_ids is None else list(new.collection_ids),
    }
    return AuditEntry("key.create", (key_id,), detail)


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


__all__ = ["SqlKeys"]
