"""Appending to the audit chain inside the caller's transaction, and signing checkpoints.

Every store method that changes state calls :meth:`AuditChain.append` as the *last*
statement of its write transaction, so the change and its event commit or roll back
together. Appending locks the one ``audit_head`` row (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's write lock, taken at ``BEGIN IMMEDIATE``, already serializes
writers), numbers the events on from the head and chains their hashes: the chain stays
linear and gap-free with any number of processes. The lock is taken last so it is held
only for the few statements before commit, and since nothing takes a lock after it, it
cannot be part of a deadlock cycle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ragd.audit import (
    MAX_DETAIL_BYTES,
    MAX_TARGETS,
    AuditCheckpoint,
    AuditEntry,
    canonical_json,
    checkpoint_message,
    current_context,
    event_hash,
)
from ragd.signing import Signer
from ragd.store.tables import audit_checkpoints, audit_events, audit_head, utcnow

_HEAD_ID = 1


@dataclass
class AuditChain:
    """How this store extends the chain: checkpoint every ``checkpoint_every`` events,
    signed by ``signer()`` (loaded on first use; ``None``: no checkpoints, for stores
    opened without settings)."""

    checkpoint_every: int = 1000
    signer: Callable[[], Signer] | None = None

    def append(self, conn: Connection, entries: Sequence[AuditEntry]) -> int:
        """Append ``entries`` in order under the head lock; returns the last seq."""
        if not entries:
            return -1
        seq, prev = lock_head(conn)
        first = seq
        context = current_context()
        at = utcnow()
        rows: list[dict[str, Any]] = []
        for entry in entries:
            seq += 1
            target = tuple(str(t) for t in entry.target)[:MAX_TARGETS]
            detail = dict(entry.detail or {})
            encoded_detail = canonical_json(detail).decode("utf-8")
            if len(encoded_detail) > MAX_DETAIL_BYTES:
                detail = {"truncated": True}
                encoded_detail = canonical_json(detail).decode("utf-8")
            fields: dict[str, Any] = {
                "seq": seq,
                "at": at,
                "actor": context.actor[:64],
                "action": entry.action,
                "target": target,
                "request_id": context.request_id,
                "client": context.client,
                "detail": detail,
                "prev_hash": prev,
            }
            prev = event_hash(**fields)
            fields.update(
                target=canonical_json(list(target)).decode("utf-8"),
                detail=encoded_detail,
                hash=prev,
            )
            rows.append(fields)
        conn.execute(insert(audit_events), rows)
        head = update(audit_head).where(audit_head.c.id == _HEAD_ID)
        conn.execute(head.values(seq=seq, hash=prev))
        every = self.checkpoint_every
        if self.signer is not None and seq // every > first // every:
            self._sign(conn, seq, prev, at)
        return seq

    def checkpoint(self, conn: Connection) -> AuditCheckpoint | None:
        """Sign the head unless it is signed already or empty (shutdown); the new
        checkpoint, or None."""
        if self.signer is None:
            return None
        seq, head_hash = lock_head(conn)
        if seq == 0:
            return None
        signed = select(audit_checkpoints.c.seq).where(audit_checkpoints.c.seq == seq)
        if conn.execute(signed).first() is not None:
            return None
        return self._sign(conn, seq, head_hash, utcnow())

    def _sign(self, conn: Connection, seq: int, head_hash: str, at: dt.datetime) -> AuditCheckpoint:
        assert self.signer is not None
        signer = self.signer()
        message = checkpoint_message(seq=seq, hash=head_hash, key_id=signer.key_id, at=at)
        checkpoint = AuditCheckpoint(
            seq=seq, hash=head_hash, signature=signer.sign_b64(message), key_id=signer.key_id, at=at
        )
        conn.execute(
            insert(audit_checkpoints).values(
                seq=seq,
                hash=head_hash,
                signature=checkpoint.signature,
                key_id=checkpoint.key_id,
                at=at,
            )
        )
        return checkpoint


def lock_head(conn: Connection) -> tuple[int, str]:
    """The head's ``(seq, hash)``, locked until the transaction ends."""
    row = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash)
        .where(audit_head.c.id == _HEAD_ID)
        .with_for_update()
    ).one()
    return int(row.seq), str(row.hash)


__all__ = ["AuditChain", "lock_head"]
