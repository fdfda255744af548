"""The server store: PostgreSQL with pgvector for vectors and full text with BM25 ranking.

Many API replicas and workers share one database, so everything a process might cache
lives in the database: BM25 statistics are kept by triggers (see migration 0004), HNSW
indexes by PostgreSQL. Every public method retries transient failures until
``RAGD_DATABASE_RETRY_DEADLINE_S`` and then raises :class:`DatabaseUnavailable` (503).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from typing import Any

import pgvector.sqlalchemy  # noqa: F401 - teaches SQLAlchemy's reflection the vector type
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ragd.config import Settings
from ragd.domain import Collection, Filters, FusionWeights, NewDocument, ScoredId, Vector
from ragd.store.base import Store
from ragd.store.postgres.search import (
    HNSW_MAX_DIM,
    hnsw_index_sql,
    hybrid_sql,
    keyword_sql,
    vector_literal,
    vector_sql,
)
from ragd.store.retry import RetryPolicy
from ragd.store.sql.chat import ChatStore
from ragd.store.sql.jobs import JobsStore
from ragd.store.sql.keys import KeysStore

# pg_advisory_xact_lock keys: fixed numbers so that every process agrees.
_MIGRATION_LOCK = 0x7261_6764_0001
_INDEX_LOCK = 0x7261_6764_0002
# Methods that must answer at once rather than retry (health checks, shutdown).
_NOT_RETRIED = frozenset({"check", "close", "migrate"})


def postgres_engine_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver ragd ships."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


class PostgresStore(KeysStore, JobsStore, ChatStore):
    dialect = "postgresql"

    def __init__(self, url: str, settings: Settings) -> None:
        engine = create_engine(
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
        super().__init__(engine)
        self.exact_below = settings.vector_exact_below
        self._indexed_dims: set[int] = set()
        self._wrap_with_retries(RetryPolicy(settings.database_retry_deadline_s))

    def _wrap_with_retries(self, policy: RetryPolicy) -> None:
        for name, member in inspect.getmembers(Store):
            if name.startswith("_") or name in _NOT_RETRIED or not callable(member):
                continue
            setattr(self, name, policy.wrap(getattr(self, name)))

    # -- schema -------------------------------------------------------------------------

    def _lock_migrations(self, conn: Connection) -> None:
        # Building an index over a large table may take longer than a request may.
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})

    def migrate(self) -> None:
        super().migrate()
        with self._read() as conn:
            dims = conn.execute(text("SELECT DISTINCT embedding_dim FROM collections")).scalars()
            wanted = list(dims)
        for dim in wanted:
            self._ensure_vector_index(dim)

    def _ensure_vector_index(self, dim: int) -> None:
        """An HNSW index for this dimension (partial, so collections of different models
        share the table); above pgvector's HNSW limit the search is exact."""
        if dim in self._indexed_dims or dim > HNSW_MAX_DIM:
            return
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INDEX_LOCK})
            conn.execute(text(hnsw_index_sql(dim)))
        self._indexed_dims.add(dim)

    def create_collection(
        self, *, name: str, description: str, embedding_model: str, embedding_dim: int
    ) -> Collection:
        self._ensure_vector_index(embedding_dim)
        return super().create_collection(
            name=name,
            description=description,
            embedding_model=embedding_model,
            embedding_dim=embedding_dim,
        )

    def _insert_ignore(self, table: Any) -> Any:
        return pg_insert(table).on_conflict_do_nothing()

    def _find_duplicate(self, conn: Connection, new: NewDocument) -> Any:
        # READ COMMITTED would let two identical uploads both miss each other; a lock per
        # collection and content makes the check-then-insert atomic, as SQLite's is.
        key = f"{new.collection_id}:{new.content_hash or ''}:{new.source_hash or ''}"
        lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
        return super()._find_duplicate(conn, new)

    # -- search legs --------------------------------------------------------------------

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        if not terms or not collection_ids:
            return []
        sql, params = keyword_sql(terms, list(collection_ids), filters, limit)
        with self._read() as conn:
            rows = conn.execute(text(sql), params).all()
        return [ScoredId(f"chk_{row.id}", float(row.score)) for row in rows]

    def vector_search(
        self,
        vector: Vector,
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        if not collection_ids or limit <= 0:
            return []
        self._ensure_vector_index(len(vector))
        sql, params = vector_sql(
            vector_literal(vector),
            len(vector),
            list(collection_ids),
            filters,
            limit,
            exact_below=self.exact_below,
        )
        with self._read() as conn:
            rows = conn.execute(text(sql), params).all()
        return [ScoredId(f"chk_{row.id}", float(row.score)) for row in rows]

    def hybrid_search(
        self,
        terms: Sequence[str],
        vector: Vector,
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        depth: int,
        limit: int,
        weights: FusionWeights,
    ) -> list[ScoredId]:
        """Both legs, convex fusion and the feedback round in one round trip."""
        if not collection_ids or limit <= 0:
            return []
        self._ensure_vector_index(len(vector))
        sql, params = hybrid_sql(
            terms,
            vector_literal(vector),
            len(vector),
            list(collection_ids),
            filters,
            depth=depth,
            limit=limit,
            weights=weights,
            exact_below=self.exact_below,
        )
        with self._read() as conn:
            rows = conn.execute(text(sql), params).all()
        return [ScoredId(f"chk_{row.id}", float(row.score)) for row in rows]


__all__ = ["PostgresStore", "postgres_engine_url"]
