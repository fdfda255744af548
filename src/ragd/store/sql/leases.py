"""The lease SQL both queues share: documents (their row is their ingestion job) and
background jobs (the ``jobs`` table).

A row is due when it is queued and past its retry time, or when it is running under a
lease that expired (its worker crashed or hung: anyone may take it over). Owners read
``host:pid:nonce``, so a worker starting on a host can requeue what dead processes of
that host left at once, without waiting for their leases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement


def due(table: Table, *, running: str, now: dt.datetime) -> ColumnElement[bool]:
    """Rows of ``table`` a claimer may take now; ``running`` is the table's status of a
    leased row (``processing`` for documents, ``running`` for jobs)."""
    return or_(
        and_(
            table.c.status == "queued",
            or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
        ),
        and_(table.c.status == running, table.c.lease_expires_at < now),
    )


def leased_by_dead_owners(
    conn: Connection, table: Table, *, running: str, host: str, is_alive: Callable[[int], bool]
) -> list[Any]:
    """Ids of ``table``'s rows leased by processes of ``host`` that ``is_alive`` denies."""
    leased = select(table.c.id, table.c.lease_owner).where(
        table.c.status == running, table.c.lease_owner.like(f"{host}:%")
    )
    rows = conn.execute(leased).all()
    return [row.id for row in rows if not is_alive(owner_pid(row.lease_owner))]


def owner_pid(owner: str) -> int:
    """The pid in a ``host:pid:nonce`` owner, or -1 when it is not one."""
    parts = owner.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1


__all__ = ["due", "leased_by_dead_owners", "owner_pid"]
