"""Chunk rows up to 4 kB stay whole in their heap page (PostgreSQL only).

PostgreSQL moves a row's long values out of line (TOAST) once the row passes ~2 kB. A
chunk row is its 384-dimension vector (1.5 kB, kept inline since 0004), its text and its
``tsvector``, ~2.8 kB for a 100-word chunk: the text and the ``tsvector`` went to the
TOAST table, so scoring a hit read its ``tsvector`` through the TOAST index. Testing
9,770 chunks against a query took 35 ms that way and 12 ms with the rows whole
(docs/scaling.md, "Filters at 1M"). With ``toast_tuple_target`` at 4080 bytes (two rows
to an 8 kB page) rows below it are stored whole; larger ones are compressed, and moved
out only as far as needed to fit it.

The setting applies to rows written from now on: a collection written before keeps its
layout until it is re-ingested or reindexed (``ragd reindex``), or until an operator
rewrites the table (``VACUUM FULL chunks``, which locks it while it runs).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Two rows to a page: 8 kB less the page header, halved, as PostgreSQL computes it.
TOAST_TUPLE_TARGET = 4080


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE chunks SET (toast_tuple_target = {TOAST_TUPLE_TARGET})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE chunks RESET (toast_tuple_target)")
