"""A chunk's ``tsvector`` stays in its row (PostgreSQL only).

PostgreSQL moves a row's long values out of line (TOAST) once the row passes ~2 kB. A
chunk row is its 384-dimension vector (1.5 kB, kept inline since 0004: ``STORAGE MAIN``),
its text and its ``tsvector``: ~2.8 kB for a 100-word chunk, so the text and the
``tsvector`` went to the TOAST table, and scoring a keyword hit read its ``tsvector``
through the TOAST index. ``STORAGE MAIN`` for ``search_tsv`` too: PostgreSQL then moves
the text out first, compresses the ``tsvector`` in place if the row is still too long, and
moves a MAIN value out only for a row past a whole page (8 kB).

Measured on 9,829 chunks of the 1M synthetic corpus copied into each layout
(docs/scaling.md, "Filters at 1M"): testing each against a query 23.3 → 9.5 ms, reading
300 ``tsvector``\\ s by id 1.9 → 1.1 ms, and an exact vector scan unchanged (8.0 ms). Keeping
the whole row inline instead (``toast_tuple_target`` 4080, tried first) made that scan
17% slower for its larger heap.

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


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE chunks ALTER COLUMN search_tsv SET STORAGE MAIN")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE chunks ALTER COLUMN search_tsv SET STORAGE EXTENDED")
