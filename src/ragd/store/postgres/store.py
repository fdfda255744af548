"""The server store: PostgreSQL with pgvector for vectors and full text with BM25 ranking.

Many API replicas and workers share one database, so everything a process might cache
lives in the database: BM25 statistics are kept by triggers (see migration 0004), HNSW
indexes by PostgreSQL. Every transaction retries transient failures until
``RAGD_DATABASE_RETRY_DEADLINE_S`` and then raises ``DatabaseUnavailable`` (503): see
:class:`~ragd.store.postgres.dialect.PostgresDialect`.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pgvector.sqlalchemy  # noqa: F401 - teaches SQLAlchemy's reflection the vector type

from ragd.audit import AuditEntry
from ragd.config import Settings
from ragd.domain import Filters, FusionWeights, ScoredId, Vector
from ragd.errors import InvalidInput
from ragd.store.postgres.dialect import PostgresDialect, create_postgres_engine
from ragd.store.postgres.search import hybrid_sql, vector_literal
from ragd.store.postgres.search_index import PostgresSearchIndex
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.database import Database
from ragd.store.sql.store import SqlStore

if TYPE_CHECKING:
    from ragd.store.postgres.keyword_index import TantivyKeywordIndex


class PostgresStore(SqlStore):
    """The shared SQL over PostgreSQL, with its dialect and search legs, and the hybrid
    ranking in one statement."""

    def __init__(self, url: str, settings: Settings, audit: AuditChain | None = None) -> None:
        self._pg = PostgresDialect(settings)
        db = Database(create_postgres_engine(url, settings), self._pg)
        self._index = PostgresSearchIndex(
            db,
            self._pg,
            exact_below=settings.vector_exact_below,
            keyword_index=_keyword_index(settings),
            keyword_candidates=settings.keyword_candidates,
            keyword_exact_below=settings.keyword_exact_below,
            parallel_workers=settings.search_parallel_workers,
        )
        super().__init__(db, self._index, audit)

    def rebuild_keyword_index(self) -> int:
        """Rebuild this host's keyword index from ``chunks`` (waits for a running
        indexer's round); the number of chunks indexed. The index lives beside the
        database, not in it, so its audit events (``keyword_index.start``, then
        ``.finish`` or ``.fail``) are transactions of their own around the rebuild."""
        index = self._index.keyword_index
        if index is None:
            raise InvalidInput(
                "there is no keyword index to rebuild: set RAGD_KEYWORD_INDEX=tantivy"
            )
        host = {"host": socket.gethostname()[:64]}
        self.record_audit([AuditEntry("keyword_index.start", (), host)])
        try:
            count = index.sync(self._db.engine, rebuild=True) or 0
        except Exception as exc:
            failed = {**host, "error_type": type(exc).__name__}
            self.record_audit([AuditEntry("keyword_index.fail", (), failed)])
            raise
        self.record_audit([AuditEntry("keyword_index.finish", (), {**host, "chunks": count})])
        return count

    def close(self) -> None:
        if self._index.keyword_index is not None:
            self._index.keyword_index.stop()
        super().close()

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
        candidates = self._index.keyword_candidates_for(terms, collection_ids, filters, depth)
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
            candidates=candidates,
            keyword_exact_below=self._index.keyword_exact_below,
        )
        # Planned once per connection when the keyword index gave candidates and no filter
        # applies: the plan (the candidates by primary key, HNSW for the vectors) is then
        # the same whatever the values, and the per-run plans cost more than planning.
        # Not under a filter, whose selectivity may rightly change the vector plan, nor on
        # the exact keyword path, whose plan depends on the query's terms.
        generic = candidates is not None and not filters
        return self._index.ranked(sql, params, generic_plan=generic)


def _keyword_index(settings: Settings) -> TantivyKeywordIndex | None:
    if settings.keyword_index == "off":
        return None
    try:
        from ragd.store.postgres.keyword_index import TantivyKeywordIndex
    except ImportError:
        raise InvalidInput(
            "RAGD_KEYWORD_INDEX=tantivy needs the tantivy package: "
            "pip install 'ragd[keyword-index]'"
        ) from None
    return TantivyKeywordIndex(
        settings.resolved_keyword_index_dir,
        interval_s=settings.keyword_index_interval_s,
        retention_s=settings.keyword_log_retention_s,
    )


__all__ = ["PostgresStore"]
