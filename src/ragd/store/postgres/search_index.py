"""PostgreSQL's search legs.

The SQL is built in :mod:`ragd.store.postgres.search`; this runs it. Each leg first makes
sure the HNSW index of the query's dimension exists (a collection may predate it).

With a keyword index (``RAGD_KEYWORD_INDEX=tantivy``) the keyword leg scores only its
candidates, plus the chunks inserted since the index's watermark; see
:mod:`ragd.store.postgres.keyword_index`. Without one, lagging too far, or under a filter
that leaves few chunks, it runs the exact statement over every matching chunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, text

from ragd.domain import Filters, ScoredId, Vector
from ragd.store.postgres.dialect import PostgresDialect
from ragd.store.postgres.search import (
    keyword_plan_sql,
    keyword_sql,
    survivors_sql,
    vector_literal,
    vector_sql,
)
from ragd.store.sql.convert import chunk_public_id
from ragd.store.sql.database import Database

if TYPE_CHECKING:
    from ragd.store.postgres.keyword_index import TantivyKeywordIndex

# More unseen log rows than this and the index is too far behind: the exact path.
PENDING_CAP = 10_000
# A filter that would need more candidates than this to fill a result: the exact path.
MAX_CANDIDATES = 20_000


LocalSettings = tuple[str, dict[str, str]] | None


def local_settings_sql(values: Mapping[str, str]) -> LocalSettings:
    """One statement that sets ``values`` for the current transaction only (one round
    trip, whatever it sets), or None when there is nothing to set."""
    if not values:
        return None
    calls = ", ".join(f"set_config('{name}', :setting_{n}, true)" for n, name in enumerate(values))
    return f"SELECT {calls}", {f"setting_{n}": value for n, value in enumerate(values.values())}


class PostgresSearchIndex:
    """The :class:`~ragd.store.base.SearchLegs` of PostgreSQL.

    ``exact_below``: scopes with fewer ready chunks are searched exactly, which is cheap
    there and never misses; larger ones go through the HNSW index. ``keyword_index``,
    when set, gives the keyword leg its candidates (``keyword_candidates`` of them at
    least); filtered scopes below ``keyword_exact_below`` chunks are scored exactly.
    ``parallel_workers``: the parallel workers a search statement may start (-1: the
    server's setting)."""

    def __init__(
        self,
        db: Database,
        dialect: PostgresDialect,
        *,
        exact_below: int,
        keyword_index: TantivyKeywordIndex | None = None,
        keyword_candidates: int = 100,
        keyword_exact_below: int = 10_000,
        parallel_workers: int = 0,
    ) -> None:
        self._db = db
        self._dialect = dialect
        self.exact_below = exact_below
        self.keyword_index = keyword_index
        self.keyword_candidates = keyword_candidates
        self.keyword_exact_below = keyword_exact_below
        self.parallel_workers = parallel_workers
        # What each ranking statement's transaction sets, built once, by whether the
        # statement runs on a generic plan.
        workers = {"max_parallel_workers_per_gather": str(parallel_workers)}
        common = {} if parallel_workers < 0 else workers
        generic = {"plan_cache_mode": "force_generic_plan"}
        self.local_settings: dict[bool, LocalSettings] = {
            False: local_settings_sql(common),
            True: local_settings_sql(generic | common),
        }

    def keyword_search(
        self, terms: Sequence[str], *, collection_ids: Sequence[str], filters: Filters, limit: int
    ) -> list[ScoredId]:
        candidates = self.keyword_candidates_for(terms, collection_ids, filters, limit)
        sql, params = keyword_sql(
            terms,
            list(collection_ids),
            filters,
            limit,
            candidates,
            keyword_exact_below=self.keyword_exact_below,
        )
        return self.ranked(sql, params, generic_plan=candidates is not None)

    def keyword_candidates_for(
        self, terms: Sequence[str], collection_ids: Sequence[str], filters: Filters, depth: int
    ) -> list[int] | None:
        """The chunk row ids that hold the keyword top ``depth`` of the scope, or None
        for the exact statement over all matching chunks."""
        index = self.keyword_index
        if index is None:
            return None
        index.start(self._db.engine)
        view = index.view()
        if view is None:
            return None
        scope = list(collection_ids)
        sql, params = keyword_plan_sql(
            terms,
            scope,
            filters,
            watermark=view.watermark,
            pending_cap=PENDING_CAP,
            exact_cap=self.keyword_exact_below,
        )
        plan = self._db.read(lambda conn: conn.execute(text(sql), params).one())
        if plan.behind or plan.pending >= PENDING_CAP:
            return None
        if plan.scope_chunks is not None and plan.scope_chunks < self.keyword_exact_below:
            return None
        lexemes: list[str] = list(plan.lexemes or [])
        inserted: list[int] = list(plan.inserted or [])
        # Deleted chunks the index still holds may take places among the candidates.
        # A deep ask (the hybrid's 100) gets three times its depth: 300, as measured for
        # its fusion; a top 10 needs far fewer (docs/scaling.md, "Fewer candidates").
        wanted = max(self.keyword_candidates, 3 * depth) + int(plan.pending)
        found = view.candidates(lexemes, scope, wanted)
        if filters and not found.complete:
            survivors = self._survivors(found.ids, scope, filters)
            if survivors < depth:
                # The filter rejects most candidates: ask for as many more as it takes
                # to keep ``depth`` of them, with a margin, or give up on the index.
                share = max(survivors, 1) / max(len(found.ids), 1)
                wanted = math.ceil(1.5 * depth / share)
                if wanted > MAX_CANDIDATES:
                    return None
                found = view.candidates(lexemes, scope, wanted)
        return found.ids + inserted

    def _survivors(self, ids: list[int], scope: list[str], filters: Filters) -> int:
        sql, params = survivors_sql(ids, scope, filters)
        return int(self._db.read(lambda conn: conn.execute(text(sql), params).scalar_one()))

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

    def ranked(
        self, sql: str, params: dict[str, Any], *, generic_plan: bool = False
    ) -> list[ScoredId]:
        """Run a ranking statement whose rows are ``(id, score)``, best first (a leg, or
        the store's one-statement hybrid ranking).

        ``generic_plan``: once psycopg has prepared the statement (its fifth run on a
        connection), plan it once rather than per run. For the re-score of the keyword
        index's candidates the plan never depends on the values (a primary-key lookup of
        the candidates), while planning its CTEs took ~4 ms of a ~11 ms keyword leg at
        1M chunks, and the unfiltered hybrid statement ran in 0.62-0.75 of the time on its
        generic plan, same rows (docs/scaling.md, "Format 2").

        Parallel workers (``parallel_workers``, default none): a vector search's exact
        branch, which runs only for a small scope, is planned as a parallel sort over
        every chunk, and its workers start before its one-time filter turns it off. At
        1M chunks that cost a vector search 17.7 ms p50 against 1.6 ms without workers,
        and the hybrid statement 40 against 11.4 ms, the same rows (docs/scaling.md,
        "Parallel workers")."""
        local = self.local_settings[generic_plan]

        def work(conn: Connection) -> Sequence[Row[Any]]:
            if local:
                conn.execute(text(local[0]), local[1])
            return conn.execute(text(sql), params).all()

        rows = self._db.read(work)
        return [ScoredId(chunk_public_id(row.id), float(row.score)) for row in rows]
