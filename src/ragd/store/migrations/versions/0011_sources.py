"""Synced sources: their items, and the webhook deliveries seen in the replay window.

A source (URL list, sitemap, published spreadsheet, server folder) belongs to a
collection; each of its items is held by one document (``source_items``), so a sync can
tell new, changed and removed items apart and replace a changed document's chunks in
place. ``webhook_deliveries`` remembers the signatures of recent webhook calls so that a
replayed request is refused by every replica.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ragd.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "collection_id",
            sa.String(40),
            sa.ForeignKey(
                "collections.id",
                ondelete="CASCADE",
                name="fk_sources_collection_id_collections",
            ),
            nullable=False,
        ),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("location", sa.JSON, nullable=False),
        sa.Column("mapping", sa.JSON, nullable=False),
        sa.Column("schedule", sa.JSON, nullable=True),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("fetch_state", sa.JSON, nullable=False),
        sa.Column("next_sync_at", UTCDateTime, nullable=True),
        sa.Column("last_sync_at", UTCDateTime, nullable=True),
        sa.Column("last_status", sa.String(10), nullable=False),
        sa.Column("last_added", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.Integer, nullable=False),
        sa.Column("last_deleted", sa.Integer, nullable=False),
        sa.Column("last_failed", sa.Integer, nullable=False),
        sa.Column("last_unchanged", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sync_owner", sa.String(80), nullable=True),
        sa.Column("sync_lease_expires_at", UTCDateTime, nullable=True),
        sa.Column("sync_requested", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
    )
    op.create_index("ix_sources_collection", "sources", ["collection_id"])
    op.create_index("ix_sources_next_sync", "sources", ["next_sync_at"])
    op.create_table(
        "source_items",
        sa.Column(
            "source_id",
            sa.String(40),
            sa.ForeignKey(
                "sources.id", ondelete="CASCADE", name="fk_source_items_source_id_sources"
            ),
            nullable=False,
        ),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("item_key", sa.Text, nullable=False),
        sa.Column(
            "document_id",
            sa.String(40),
            sa.ForeignKey(
                "documents.id", ondelete="CASCADE", name="fk_source_items_document_id_documents"
            ),
            nullable=False,
        ),
        sa.Column("item_hash", sa.String(64), nullable=False),
        sa.Column("etag", sa.String(500), nullable=True),
        sa.Column("last_modified", sa.String(500), nullable=True),
        sa.Column("synced_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("source_id", "key_hash", name="pk_source_items"),
        sa.UniqueConstraint("document_id", name="uq_source_items_document_id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "source_id",
            sa.String(40),
            sa.ForeignKey(
                "sources.id", ondelete="CASCADE", name="fk_webhook_deliveries_source_id_sources"
            ),
            nullable=False,
        ),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("source_id", "signature", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_expires", "webhook_deliveries", ["expires_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("source_items")
    op.drop_index("ix_sources_next_sync", table_name="sources")
    op.drop_index("ix_sources_collection", table_name="sources")
    op.drop_table("sources")
