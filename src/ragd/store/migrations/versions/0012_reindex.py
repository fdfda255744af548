"""Reindexing: a collection's own chunk size, and chunks that move between collections.

A reindex builds a collection's new chunks under a *generation* id of its own (in
``chunks.collection_id``, where search never looks) and switches by moving them to the
collection in one transaction. ``collections.chunk_max_tokens`` keeps the chunk size a
reindex chose, so documents ingested later are chunked the same way (NULL: the server's
``RAGD_CHUNK_MAX_TOKENS``).

On PostgreSQL, moving chunks is an UPDATE of ``collection_id``, which the BM25 statistics
triggers of 0004 and the keyword log of 0008 did not follow (they watch inserts and
deletes): here the same functions run on UPDATE too, the old rows' statistics removed and
the new rows' added, and every updated chunk logged as inserted again (the keyword index
replaces a chunk it re-reads), so both stay true in the switching transaction.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TRIGGERS = {
    "chunks_keyword_stats_update_1_remove": (
        "OLD TABLE AS old_rows",
        "ragd_keyword_stats_remove()",
    ),
    "chunks_keyword_stats_update_2_add": ("NEW TABLE AS new_rows", "ragd_keyword_stats_add()"),
    "chunks_keyword_log_update": ("NEW TABLE AS new_rows", "ragd_keyword_log_insert()"),
}


def upgrade() -> None:
    op.add_column("collections", sa.Column("chunk_max_tokens", sa.Integer, nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (transition, function) in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER UPDATE ON chunks REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON chunks")
    op.drop_column("collections", "chunk_max_tokens")
