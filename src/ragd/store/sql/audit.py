"""The audit log over SQL: :class:`~ragd.store.base.AuditStore` for every database.

Appending lives in :mod:`.audit_chain` (called inside every changing transaction); this
module records events of their own, lists them, reads the chain for verification in
one snapshot, signs checkpoints and prunes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, inspect, select
from sqlalchemy.exc import DBAPIError

from ragd.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditEvent,
    AuditFilters,
    AuditPruned,
    format_at,
)
from ragd.domain import Page
from ragd.errors import ConfigError, InvalidInput
from ragd.store.base import AuditReader
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.database import Database
from ragd.store.tables import audit_checkpoints, audit_events, audit_head

T = TypeVar("T")
# Rows per round trip while a verification streams the chain: memory stays bounded.
_SCAN_PAGE = 1000
_CURSOR = re.compile(r"[0-9]{1,18}")


class SqlAudit:
    """Audit operations over ``audit_events``, ``audit_head`` and ``audit_checkpoints``."""

    _db: Database
    _audit: AuditChain

    def record_audit(self, entries: Sequence[AuditEntry]) -> int:
        return self._db.write(lambda conn: self._audit.append(conn, entries))

    def checkpoint_audit(self) -> AuditCheckpoint | None:
        return self._db.write(self._audit.checkpoint)

    def list_audit_events(
        self, filters: AuditFilters, *, limit: int, cursor: str | None
    ) -> Page[AuditEvent]:
        query = select(audit_events)
        if cursor is not None:
            query = query.where(audit_events.c.seq < _decode_cursor(cursor))
        if filters.action is not None:
            query = query.where(audit_events.c.action == filters.action)
        if filters.actor is not None:
            query = query.where(audit_events.c.actor == filters.actor)
        if filters.target is not None:
            # target is a JSON list of ids: match one whole, quoted element.
            quoted = json.dumps(filters.target)
            pattern = "%" + quoted.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            query = query.where(audit_events.c.target.like(pattern + "%", escape="\\"))
        if filters.since is not None:
            query = query.where(audit_events.c.at >= filters.since)
        if filters.until is not None:
            query = query.where(audit_events.c.at < filters.until)
        query = query.order_by(audit_events.c.seq.desc()).limit(limit + 1)
        rows = self._migrated(lambda: self._db.read(lambda conn: conn.execute(query).all()))
        items = [event_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=str(items[-1].seq) if more else None)

    def read_audit(self, work: Callable[[AuditReader], T]) -> T:
        return self._migrated(lambda: self._db.snapshot(lambda conn: work(_Reader(conn))))

    def _migrated(self, read: Callable[[], T]) -> T:
        """``read()``; when it fails because the audit tables do not exist (a database
        never migrated, or the wrong one: the audit commands do not migrate), a
        ``ConfigError`` that says so instead of the database's own error. Looked up only
        after a failure, so a read that works costs nothing more."""
        try:
            return read()
        except DBAPIError:
            if inspect(self._db.engine).has_table(audit_head.name):
                raise
            raise ConfigError(
                f"the {self._db.dialect.name} database has no audit log: it was never "
                "migrated (is RAGD_DATABASE_URL the deployment's database? `ragd migrate` "
                "creates the schema)"
            ) from None

    def prune_audit(self, before: dt.datetime) -> AuditPruned:
        def work(conn: Connection) -> AuditPruned:
            anchor = conn.execute(
                select(audit_checkpoints)
                .where(audit_checkpoints.c.at <= before)
                .order_by(audit_checkpoints.c.seq.desc())
                .limit(1)
            ).first()
            if anchor is None:
                return AuditPruned(anchor_seq=None, deleted=0)
            deleted = conn.execute(delete(audit_events).where(audit_events.c.seq <= anchor.seq))
            conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq < anchor.seq))
            if deleted.rowcount:
                detail = {
                    "anchor_seq": int(anchor.seq),
                    "anchor_hash": anchor.hash,
                    "deleted": int(deleted.rowcount),
                    "before": format_at(before),
                }
                self._audit.append(conn, [AuditEntry("audit.prune", (), detail)])
            return AuditPruned(anchor_seq=int(anchor.seq), deleted=int(deleted.rowcount))

        return self._db.write(work)


@dataclass
class _Reader:
    """The chain as one snapshot sees it, read in pages."""

    conn: Connection

    def head(self) -> tuple[int, str]:
        row = self.conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
        return int(row.seq), str(row.hash)

    def events(self) -> Iterator[AuditEvent]:
        last = -1
        while True:
            rows = self.conn.execute(
                select(audit_events)
                .where(audit_events.c.seq > last)
                .order_by(audit_events.c.seq)
                .limit(_SCAN_PAGE)
            ).all()
            for row in rows:
                yield event_from_row(row)
            if len(rows) < _SCAN_PAGE:
                return
            last = int(rows[-1].seq)

    def checkpoints(self) -> Iterator[AuditCheckpoint]:
        last = -1
        while True:
            rows = self.conn.execute(
                select(audit_checkpoints)
                .where(audit_checkpoints.c.seq > last)
                .order_by(audit_checkpoints.c.seq)
                .limit(_SCAN_PAGE)
            ).all()
            for row in rows:
                yield AuditCheckpoint(
                    seq=int(row.seq),
                    hash=row.hash,
                    signature=row.signature,
                    key_id=row.key_id,
                    at=row.at,
                )
            if len(rows) < _SCAN_PAGE:
                return
            last = int(rows[-1].seq)


def event_from_row(row: Any) -> AuditEvent:
    """An event as stored; ``target`` or ``detail`` that is not valid JSON any more
    (someone edited the table) decodes to a value that cannot hash as the original."""
    m = row._mapping
    target = _decode(m["target"])
    detail = _decode(m["detail"])
    return AuditEvent(
        seq=int(m["seq"]),
        at=m["at"],
        actor=m["actor"],
        action=m["action"],
        target=tuple(str(t) for t in target) if isinstance(target, list) else (str(target),),
        request_id=m["request_id"],
        client=m["client"],
        detail=detail if isinstance(detail, dict) else {"undecodable": str(m["detail"])},
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return {"undecodable": str(text)}


def _decode_cursor(cursor: str) -> int:
    if not _CURSOR.fullmatch(cursor):
        raise InvalidInput("cursor is not valid; use next_cursor from a previous page")
    return int(cursor)


__all__ = ["SqlAudit", "event_from_row"]
