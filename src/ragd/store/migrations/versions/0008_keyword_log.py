"""PostgreSQL: an ordered log of chunk inserts and deletes, for a keyword index beside it.

The optional tantivy keyword index (``RAGD_KEYWORD_INDEX=tantivy``) lives outside the
database, so it is fed from this log: statement-level triggers on ``chunks`` write one row
per inserted or deleted chunk in the same transaction as the change (every path that adds
or removes chunks, as the BM25 statistics triggers of 0004 do). Each row carries the
writing transaction's id (``xid8``), so an indexer that applied everything visible in a
snapshot can tell a reader exactly which rows it has not seen (those not visible in that
snapshot), whatever order the transactions committed in.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None

_STATEMENTS = [
    """
    CREATE TABLE keyword_log (
      seq bigserial PRIMARY KEY,
      xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
      chunk_id bigint NOT NULL,
      op char(1) NOT NULL CHECK (op IN ('i', 'd'))
    )
    """,
    "CREATE INDEX ix_keyword_log_xid ON keyword_log (xid)",
    """
    CREATE FUNCTION ragd_keyword_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO keyword_log (chunk_id, op) SELECT id, 'i' FROM new_rows ORDER BY id;
      RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION ragd_keyword_log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO keyword_log (chunk_id, op) SELECT id, 'd' FROM old_rows ORDER BY id;
      RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER chunks_keyword_log_insert AFTER INSERT ON chunks "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION ragd_keyword_log_insert()",
    "CREATE TRIGGER chunks_keyword_log_delete AFTER DELETE ON chunks "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION ragd_keyword_log_delete()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS chunks_keyword_log_delete ON chunks")
    op.execute("DROP TRIGGER IF EXISTS chunks_keyword_log_insert ON chunks")
    op.execute("DROP FUNCTION IF EXISTS ragd_keyword_log_delete()")
    op.execute("DROP FUNCTION IF EXISTS ragd_keyword_log_insert()")
    op.execute("DROP TABLE IF EXISTS keyword_log")
