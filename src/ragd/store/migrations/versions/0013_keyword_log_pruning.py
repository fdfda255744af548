"""Pruning of ``keyword_log``: what each keyword indexer has seen, and the horizon.

``keyword_log`` (0008) gets one row per chunk insert and delete, forever, unless rows
every indexer has applied are deleted. Each host's indexer records in
``keyword_indexers`` the ``xmin`` of a snapshot it has fully applied (every log row with
an older transaction id is in its index) and when it last did; log rows older than the
smallest such ``xmin`` among indexers heard from within the retention window are
deleted, and ``keyword_log_horizon`` remembers that bound. An index whose watermark is
older than the horizon may lack deleted rows' changes: searches skip it (the exact
statement) and its indexer rebuilds it from ``chunks``. PostgreSQL only, like 0008.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_STATEMENTS = [
    """
    CREATE TABLE keyword_indexers (
      name text PRIMARY KEY,
      seen_xmin xid8 NOT NULL,
      seen_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE keyword_log_horizon (
      id smallint PRIMARY KEY CHECK (id = 1),
      pruned_below xid8 NOT NULL
    )
    """,
    "INSERT INTO keyword_log_horizon (id, pruned_below) VALUES (1, '0')",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS keyword_log_horizon")
    op.execute("DROP TABLE IF EXISTS keyword_indexers")
