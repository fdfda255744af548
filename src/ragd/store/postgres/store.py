"""The server store: PostgreSQL with pgvector for vectors and full text with BM25 ranking.

Many API replicas and workers share one database, so everything a process might cache
lives in the database: BM25 statistics are kept by triggers (see migration 0004), HNSW
indexes by PostgreSQL. Every transaction retries transient failures until
``RAGD_DATABASE_RETRY_DEADLINE_S`` and then raises ``DatabaseUnavailable`` (503): see
:class:`~ragd.store.postgres.dialect.PostgresDialect`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pgvector.sqlalchemy  # noqa: F401 - teaches SQLAlchemy's reflection the vector type

from ragd.config import Settings
from ragd.domain import Filters, FusionWeights, ScoredId, Vector
from ragd.store.postgres.dialect import PostgresDialect, create_postgres_engine
from ragd.store.postgres.search import hybrid_sql, vector_literal
from ragd.store.postgres.search_index import PostgresSearchIndex
from ragd.store.sql.database import Database
from ragd.store.sql.store import SqlStore


class PostgresStore(SqlStore):
    """The shared SQL over PostgreSQL, with its dialect and search legs, and the hybrid
    ranking in one statement."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._pg = PostgresDialect(settings)
        db = Database(create_postgres_engine(url, settings), self._pg)
        self._index = PostgresSearchIndex(db, self._pg, exact_below=settings.vector_exact_below)
        super().__init__(db, self._index)

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
        """Both legs, convex fusion and the feedback round in one round trip
        (:class:`ragd.retrieval.hybrid.HybridStore`)."""
        if not collection_ids or limit <= 0:
            return []
        self._pg.prepare_dimension(self._db, len(vector))
        sql, params = hybrid_sql(
            terms,
            vector_literal(vector),
            len(vector),
            list(collection_ids),
            filters,
            depth=depth,
            limit=limit,
            weights=weights,
            exact_below=self._index.exact_below,
        )
        return self._index.ranked(sql, params)


__all__ = ["PostgresStore"]
