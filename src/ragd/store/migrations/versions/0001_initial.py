"""Initial schema: collections, documents (also the ingestion jobs), sources, chunks,
embedding cache, and on SQLite the FTS5 index over chunks.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ragd.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_FTS_SQLITE = [
    # A plain FTS5 table keyed by chunk rowid. Title and headings get their own columns
    # so that bm25() can weight them. (Contentless tables with delete support need
    # SQLite 3.43; keeping a copy of the text works on every SQLite Python ships with.)
    "CREATE VIRTUAL TABLE chunks_fts USING fts5("
    "title, headings, body, tokenize='porter unicode61 remove_diacritics 2')",
    # Foreign-key cascades fire triggers, so deleting a document or collection removes
    # its full-text rows in the same transaction.
    "CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN "
    "DELETE FROM chunks_fts WHERE rowid = old.id; END",
]


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("embedding_model", sa.String(500), nullable=False),
        sa.Column("embedding_dim", sa.Integer, nullable=False),
        sa.Column("chunks_version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("name", name="uq_collections_name"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "collection_id",
            sa.String(40),
            sa.ForeignKey(
                "collections.id",
                ondelete="CASCADE",
                name="fk_documents_collection_id_collections",
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(500)),
        sa.Column("source_type", sa.String(10), nullable=False),
        sa.Column("source", sa.String(2000)),
        sa.Column("mime_type", sa.String(100)),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("source_hash", sa.String(64)),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(80)),
        sa.Column("lease_expires_at", UTCDateTime),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("ready_at", UTCDateTime),
    )
    op.create_index(
        "ix_documents_collection_created", "documents", ["collection_id", "created_at", "id"]
    )
    op.create_index("ix_documents_status_next", "documents", ["status", "next_attempt_at"])
    op.create_index(
        "ix_documents_collection_content", "documents", ["collection_id", "content_hash"]
    )
    op.create_index("ix_documents_collection_source", "documents", ["collection_id", "source_hash"])
    op.create_table(
        "document_sources",
        sa.Column(
            "document_id",
            sa.String(40),
            sa.ForeignKey(
                "documents.id",
                ondelete="CASCADE",
                name="fk_document_sources_document_id_documents",
            ),
            primary_key=True,
        ),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "document_id",
            sa.String(40),
            sa.ForeignKey(
                "documents.id", ondelete="CASCADE", name="fk_chunks_document_id_documents"
            ),
            nullable=False,
        ),
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("heading_path", sa.JSON, nullable=False),
        sa.Column("token_count", sa.Integer, nullable=False),
        sa.Column("char_start", sa.Integer, nullable=False),
        sa.Column("char_end", sa.Integer, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("document_id", "ordinal", name="uq_chunks_document_id_ordinal"),
        # AUTOINCREMENT: a deleted chunk's id is never handed to a new chunk.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_chunks_collection", "chunks", ["collection_id"])
    op.create_table(
        "embedding_cache",
        sa.Column("model", sa.String(500), primary_key=True),
        sa.Column("text_hash", sa.String(64), primary_key=True),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _FTS_SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS chunks_fts_delete")
        op.execute("DROP TABLE IF EXISTS chunks_fts")
    op.drop_table("embedding_cache")
    op.drop_table("chunks")
    op.drop_table("document_sources")
    op.drop_table("documents")
    op.drop_table("collections")
