"""PostgreSQL's search legs.

The SQL is built in :mod:`ragd.store.postgres.search`; this runs it. Each leg first makes
sure the HNSW index of the query's dimension exists (a collection may predate it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from ragd.domain import Filters, ScoredId, Vector
from ragd.store.postgres.dialect import PostgresDialect
from ragd.store.postgres.search import keyword_sql, vector_literal, vector_sql
from ragd.store.sql.convert import chunk_public_id
from ragd.store.sql.database import Database


class PostgresSearchIndex:
    """The :class:`~ragd.store.base.SearchLegs` of PostgreSQL.

    ``exact_below``: scopes with fewer ready chunks are searched exactly, which is cheap
    there and never misses; larger ones go through the HNSW index."""

    def __init__(self, db: Database, dialect: PostgresDialect, *, exact_below: int) -> None:
        self._db = db
        self._dialect = dialect
        self.exact_below = exact_below

    def keyword_search(
        self, terms: Sequence[str], *, collection_ids: Sequence[str], filters: Filters, limit: int
    ) -> list[ScoredId]:
        return self.ranked(*keyword_sql(terms, list(collection_ids), filters, limit))

    def vector_search(
        self, vector: Vector, *, collection_ids: Sequence[str], filters: Filters, limit: int
    ) -> list[ScoredId]:
        self._dialect.prepare_dimension(self._db, len(vector))
        sql, params = vector_sql(
            vector_literal(vector),
            len(vector),
            list(collection_ids),
            filters,
            limit,
            exact_below=self.exact_below,
        )
        return self.ranked(sql, params)

    def ranked(self, sql: str, params: dict[str, Any]) -> list[ScoredId]:
        """Run a ranking statement whose rows are ``(id, score)``, best first (a leg, or
        the store's one-statement hybrid ranking)."""
        rows = self._db.read(lambda conn: conn.execute(text(sql), params).all())
        return [ScoredId(chunk_public_id(row.id), float(row.score)) for row in rows]


__all__ = ["PostgresSearchIndex"]
