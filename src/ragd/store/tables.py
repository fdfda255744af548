"""SQLAlchemy 2 tables shared by every Store and by the Alembic migrations.

Core tables rather than ORM classes: the stores do bulk inserts, atomic chunk swaps and
dialect-specific search SQL, which read more plainly as Core statements.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata_obj = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id(prefix: str) -> str:
    """An opaque, unguessable id with a type prefix (``col_``, ``doc_``) for readable logs."""
    return f"{prefix}_{secrets.token_hex(12)}"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stored: dt.datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=dt.UTC)
        return stored.astimezone(dt.UTC)


class Embedding(TypeDecorator[bytes]):
    """A float32 vector held as bytes in Python on every database.

    SQLite stores the bytes as a BLOB; PostgreSQL stores a pgvector ``vector`` (of any
    dimension: each collection fixes its own), so HNSW indexes and ``<=>`` work on it.
    The stores and the job queue keep handling plain bytes either way.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import VECTOR

            return dialect.type_descriptor(VECTOR())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        import numpy as np

        return np.frombuffer(value, dtype=np.float32)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        import numpy as np

        return np.asarray(value, dtype=np.float32).tobytes()


# Metadata is JSONB on PostgreSQL: containment filters (``@>``) use its GIN index.
MetadataJSON = JSON().with_variant(JSONB(), "postgresql")

collections = Table(
    "collections",
    metadata_obj,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("embedding_model", String(500), nullable=False),
    Column("embedding_dim", Integer, nullable=False),
    # Bumped whenever the collection's chunk set changes: in-process vector caches
    # compare it to know when to reload, so several processes stay coherent.
    Column("chunks_version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

documents = Table(
    "documents",
    metadata_obj,
    Column("id", String(40), primary_key=True),
    Column(
        "collection_id",
        String(40),
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("title", String(500), nullable=True),
    Column("source_type", String(10), nullable=False),  # upload | text | url
    Column("source", String(2000), nullable=True),  # filename or URL
    Column("mime_type", String(100), nullable=True),
    Column("content_hash", String(64), nullable=True),  # sha-256 of normalized text
    Column("source_hash", String(64), nullable=True),  # sha-256 of the raw upload
    Column("metadata", MetadataJSON, nullable=False, default=dict),
    Column("status", String(12), nullable=False),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("chunk_count", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ready_at", UTCDateTime, nullable=True),
    Index("ix_documents_collection_created", "collection_id", "created_at", "id"),
    Index("ix_documents_status_next", "status", "next_attempt_at"),
    Index("ix_documents_collection_content", "collection_id", "content_hash"),
    Index("ix_documents_collection_source", "collection_id", "source_hash"),
)

# The uploaded bytes or submitted text, kept in the database so that any worker on any
# machine can (re)process a document without a shared disk.
document_sources = Table(
    "document_sources",
    metadata_obj,
    Column(
        "document_id",
        String(40),
        ForeignKey("documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("content", LargeBinary, nullable=False),
)

chunks = Table(
    "chunks",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "document_id",
        String(40),
        ForeignKey("documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Denormalized so that search never needs a join to scope by collection.
    Column("collection_id", String(40), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("heading_path", JSON, nullable=False, default=list),
    # The document's title, copied so that a database can index it with the chunk
    # (PostgreSQL's generated tsvector can only read its own row).
    Column("title", Text, nullable=True),
    Column("token_count", Integer, nullable=False),
    Column("char_start", Integer, nullable=False),
    Column("char_end", Integer, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("embedding", Embedding, nullable=False),  # float32, L2-normalized
    UniqueConstraint("document_id", "ordinal"),
    Index("ix_chunks_collection", "collection_id"),
    # Public chunk ids (chk_<id>) must never be reused: vector caches and stored
    # citations identify a chunk by its id alone.
    sqlite_autoincrement=True,
)

embedding_cache = Table(
    "embedding_cache",
    metadata_obj,
    Column("model", String(500), primary_key=True),
    Column("text_hash", String(64), primary_key=True),
    Column("embedding", LargeBinary, nullable=False),
)

# Synced sources: a collection's URL list, sitemap, published spreadsheet or server
# folder, kept in step by sync jobs. ``secret`` signs its webhook: HMAC verification
# needs the key itself, so it is stored as is (it only triggers a sync of this source)
# and shown to nobody after creation or rotation.
sources = Table(
    "sources",
    metadata_obj,
    Column("id", String(40), primary_key=True),
    Column(
        "collection_id",
        String(40),
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("type", String(16), nullable=False),  # urls | sitemap | spreadsheet | folder
    Column("location", JSON, nullable=False),  # a URL or path, or a list of URLs
    Column("mapping", JSON, nullable=False, default=dict),
    Column("schedule", JSON, nullable=True),  # {"interval_s": N}; None: webhook/manual
    Column("secret", String(100), nullable=False),
    Column("fetch_state", JSON, nullable=False, default=dict),
    Column("next_sync_at", UTCDateTime, nullable=True),
    Column("last_sync_at", UTCDateTime, nullable=True),
    Column("last_status", String(10), nullable=False, default="never"),
    Column("last_added", Integer, nullable=False, default=0),
    Column("last_updated", Integer, nullable=False, default=0),
    Column("last_deleted", Integer, nullable=False, default=0),
    Column("last_failed", Integer, nullable=False, default=0),
    Column("last_unchanged", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    # One sync of a source at a time: whoever holds this lease; a trigger that finds
    # it held sets ``sync_requested`` so the holder's end schedules another run.
    Column("sync_owner", String(80), nullable=True),
    Column("sync_lease_expires_at", UTCDateTime, nullable=True),
    Column("sync_requested", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_sources_collection", "collection_id"),
    Index("ix_sources_next_sync", "next_sync_at"),
)

# Which document holds each item of a source: the item's key (URL, row key, relative
# path) is its identity, ``item_hash`` the sha-256 of what was fetched, so an unchanged
# item costs no parse. Deleting the document (by hand) forgets the item: the next sync
# adds it again.
source_items = Table(
    "source_items",
    metadata_obj,
    Column("source_id", String(40), ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("key_hash", String(64), primary_key=True),  # sha-256 of item_key
    Column("item_key", Text, nullable=False),
    Column(
        "document_id",
        String(40),
        ForeignKey("documents.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("item_hash", String(64), nullable=False),
    Column("etag", String(500), nullable=True),
    Column("last_modified", String(500), nullable=True),
    Column("synced_at", UTCDateTime, nullable=False),
)

# Webhook deliveries seen within the replay window, by signature: a replayed request
# is refused on every replica, since they share the database.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata_obj,
    Column("source_id", String(40), ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("signature", String(64), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_webhook_deliveries_expires", "expires_at"),
)

# API keys: only the sha-256 of each key is kept; the prefix finds the row and names the
# key in lists and logs. A revoked key keeps its row so that lists and audits can say so.
api_keys = Table(
    "keys",
    metadata_obj,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("scope", String(10), nullable=False),  # read | write | admin
    Column("collection_ids", JSON, nullable=True),  # None: every collection
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Chat sessions belong to the key that made them (``key_id`` None: the no-key caller on
# loopback, or auth disabled). Messages are numbered per session by ``ordinal``.
chat_sessions = Table(
    "chat_sessions",
    metadata_obj,
    Column("id", String(40), primary_key=True),
    Column("key_id", String(40), nullable=True),
    Column("title", String(200), nullable=True),
    Column("system_prompt", Text, nullable=True),
    Column("collection_ids", JSON, nullable=True),  # None: every collection the key reads
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_chat_sessions_key_updated", "key_id", "updated_at"),
)

chat_messages = Table(
    "chat_messages",
    metadata_obj,
    Column("id", String(40), primary_key=True),
    Column(
        "session_id",
        String(40),
        ForeignKey("chat_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("ordinal", Integer, nullable=False),
    Column("role", String(16), nullable=False),  # user | assistant
    Column("content", Text, nullable=False),
    Column("citations", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("session_id", "ordinal", name="uq_chat_messages_session_ordinal"),
)

# A 64-bit sequence number; on SQLite the INTEGER primary key is the rowid itself.
AuditSeq = BigInteger().with_variant(Integer(), "sqlite")

# The audit log (migration 0010): an append-only, hash-chained list of every change.
# ``seq`` is given by the writer, not the database: it is the head's seq plus one,
# taken under the head row's lock, so it has no gaps. ``target`` and ``detail`` are
# canonical JSON text (ragd.audit), so what is hashed is what is stored, on every database.
audit_events = Table(
    "audit_events",
    metadata_obj,
    Column("seq", AuditSeq, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("client", String(64), nullable=True),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_action_seq", "action", "seq"),
    Index("ix_audit_events_actor_seq", "actor", "seq"),
    Index("ix_audit_events_at", "at"),
)

# One row (id 1): the last event's seq and hash. Appending locks it, which keeps the
# chain linear with many writers; verify also checks that the chain reaches it.
audit_head = Table(
    "audit_head",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Signatures over (seq, hash) of the chain, every RAGD_AUDIT_CHECKPOINT_EVERY events and
# on shutdown. Kept beside the chain rather than in it: seq stays the events' own count,
# and a shutdown with nothing new to sign adds nothing.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata_obj,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("signature", String(200), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Background jobs (exports, imports, reindexes, syncs): claimed with a lease like
# documents. ``collection_id`` has no foreign key: the row is the job's history and
# outlives the collection. At most one queued job per ``dedup_key`` (bursts coalesce).
jobs = Table(
    "jobs",
    metadata_obj,
    Column("id", String(40), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # queued|running|succeeded|failed|cancelled
    Column("collection_id", String(40), nullable=True),
    Column("params", JSON, nullable=False),
    Column("result", JSON, nullable=True),
    Column("progress_done", Integer, nullable=False, default=0),
    Column("progress_total", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    # When a queued job is due: its retry time, or its "run at" when scheduled.
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("dedup_key", String(200), nullable=True),
    Column("created_by", String(80), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_jobs_status_next", "status", "next_attempt_at"),
    Index("ix_jobs_created", "created_at", "id"),
    Index("ix_jobs_collection_created", "collection_id", "created_at", "id"),
    Index(
        "uq_jobs_dedup_queued",
        "dedup_key",
        unique=True,
        sqlite_where=text("status = 'queued'"),
        postgresql_where=text("status = 'queued'"),
    ),
)
