"""Everything PostgreSQL does differently from the shared SQL, in one object.

Many API replicas and workers share one server, so what SQLite gets from its single
write lock is taken explicitly here (advisory locks for migrations, vector indexes and
duplicate checks), transient failures are retried until
``RAGD_DATABASE_RETRY_DEADLINE_S`` and then raise ``DatabaseUnavailable`` (503), and an
HNSW index is kept per embedding dimension. Full text is a generated ``tsvector`` column
with trigger-kept BM25 statistics (migration 0004), so new chunks need no indexing call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.dml import Insert

from ragd.config import Settings
from ragd.domain import NewChunk, NewDocument
from ragd.store.postgres.search import HNSW_MAX_DIM, hnsw_index_sql
from ragd.store.retry import RetryPolicy

if TYPE_CHECKING:
    from ragd.store.sql.dialect import Transactions

T = TypeVar("T")

# pg_advisory_xact_lock keys: fixed numbers so that every process agrees.
_MIGRATION_LOCK = 0x7261_6764_0001
_INDEX_LOCK = 0x7261_6764_0002
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def postgres_engine_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver ragd ships."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def create_postgres_engine(url: str, settings: Settings) -> Engine:
    """A pooled engine with the timeouts and HNSW search settings from ``settings``."""
    return create_engine(
        postgres_engine_url(url),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_s,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": settings.database_connect_timeout_s,
            # Iterative HNSW scans keep going until enough rows pass the filters.
            "options": (
                f"-c statement_timeout={settings.database_statement_timeout_ms} "
                f"-c hnsw.ef_search={settings.hnsw_ef_search} "
                "-c hnsw.iterative_scan=relaxed_order"
            ),
            "application_name": "ragd",
        },
    )


class PostgresDialect:
    """The :class:`~ragd.store.sql.dialect.Dialect` of a shared PostgreSQL server."""

    name = "postgresql"
    write_options: Mapping[str, Any] = {}
    # READ COMMITTED takes a snapshot per statement; an export reads several tables.
    snapshot_options: Mapping[str, Any] = {"isolation_level": "REPEATABLE READ"}

    def __init__(self, settings: Settings) -> None:
        self._retry = RetryPolicy(settings.database_retry_deadline_s)
        # Dimensions whose HNSW index this process has seen exist (indexes are never
        # dropped, so the set only grows).
        self._indexed_dims: set[int] = set()

    def run(self, attempt: Callable[[], T]) -> T:
        return self._retry.run(attempt)

    def insert_ignore(self, table: Table) -> Insert:
        return pg_insert(table).on_conflict_do_nothing()

    def lock_migrations(self, conn: Connection) -> None:
        # Building an index over a large table may take longer than a request may.
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(_ADVISORY_LOCK, {"key": _MIGRATION_LOCK})

    def after_migrate(self, db: Transactions) -> None:
        """An HNSW index for every dimension in use (a collection created by an older
        version, or the index dropped by hand)."""
        query = text("SELECT DISTINCT embedding_dim FROM collections")
        dims = db.run(lambda conn: list(conn.execute(query).scalars()), write=False, retried=False)
        for dim in dims:
            self._ensure_index(db, dim, retried=False)

    def prepare_dimension(self, db: Transactions, dim: int) -> None:
        self._ensure_index(db, dim, retried=True)

    def lock_duplicate_check(self, conn: Connection, new: NewDocument) -> None:
        # READ COMMITTED would let two identical uploads both miss each other; a lock per
        # collection and content makes the check-then-insert atomic, as SQLite's is.
        key = f"{new.collection_id}:{new.content_hash or ''}:{new.source_hash or ''}"
        lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        conn.execute(_ADVISORY_LOCK, {"key": lock})

    def index_chunks(self, conn: Connection, entries: Sequence[tuple[int, str, NewChunk]]) -> None:
        """The ``tsvector`` is a generated column of the chunk row: nothing to add."""

    def index_moved_chunks(self, conn: Connection, collection_id: str) -> None:
        """The ``tsvector`` is a generated column, the statistics follow by trigger."""

    def _ensure_index(self, db: Transactions, dim: int, *, retried: bool) -> None:
        """A partial HNSW index for ``dim`` (collections of different models share the
        table); above pgvector's HNSW limit the search is exact and needs none."""
        if dim in self._indexed_dims or dim > HNSW_MAX_DIM:
            return

        def create(conn: Connection) -> None:
            conn.execute(_ADVISORY_LOCK, {"key": _INDEX_LOCK})
            conn.execute(text(hnsw_index_sql(dim)))

        db.run(create, write=True, retried=retried)
        self._indexed_dims.add(dim)


__all__ = ["PostgresDialect", "create_postgres_engine", "postgres_engine_url"]
