"""Background jobs: one table for exports, imports, reindexes and source syncs.

Documents keep their own queue (the document row is its ingestion job); everything else
that runs in the background is a row here, claimed with a lease by any worker on any
machine, as documents are. At most one *queued* job per ``dedup_key`` (a partial unique
index), so a burst of identical submissions coalesces into one job. ``collection_id``
has no foreign key: a job's row is its history and outlives the collection (deleting a
collection cancels its unfinished jobs instead).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ragd.store.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("collection_id", sa.String(40), nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("progress_done", sa.Integer, nullable=False),
        sa.Column("progress_total", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(80), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime, nullable=True),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_jobs_status_next", "jobs", ["status", "next_attempt_at"])
    op.create_index("ix_jobs_created", "jobs", ["created_at", "id"])
    op.create_index("ix_jobs_collection_created", "jobs", ["collection_id", "created_at", "id"])
    op.create_index(
        "uq_jobs_dedup_queued",
        "jobs",
        ["dedup_key"],
        unique=True,
        sqlite_where=_QUEUED,
        postgresql_where=_QUEUED,
    )


def downgrade() -> None:
    op.drop_index("uq_jobs_dedup_queued", table_name="jobs")
    op.drop_index("ix_jobs_collection_created", table_name="jobs")
    op.drop_index("ix_jobs_created", table_name="jobs")
    op.drop_index("ix_jobs_status_next", table_name="jobs")
    op.drop_table("jobs")
