"""SQLite's keyword leg: FTS5 ``bm25()`` over the OR of the query's terms.

Two statements give the same ranking. The exact one joins every matching FTS row to its
chunk and document, to keep the scope, the filters and ``ready`` documents, and then
sorts: a query over 5k msmarco chunks matches ~340 rows, and those joins are over a third
of its 2.8 ms (p50, top 100). When a search covers every collection and has no filter,
nearly every match is in scope, so the top ``limit`` rows of the FTS table alone are
ranked first and only those are joined (1.8 ms; ``benchmarks/sqlite_keyword_leg.py``).
That answer is exact when each of them is in scope and ready, or when fewer than
``limit`` rows matched at all; otherwise (a document being reprocessed among them, a
collection created since the check) the exact statement runs after it. Both break ties
by chunk id, so they agree row for row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from ragd.domain import Filters, ScoredId
from ragd.store.sql.convert import chunk_public_id
from ragd.store.sqlite.filters import filter_sql, in_clause

# bm25() column weights for (title, headings, body): a match in the title or a heading
# says more about a chunk than one in its body.
BM25_WEIGHTS = (2.0, 1.5, 1.0)
_BM25 = f"bm25(chunks_fts, {', '.join(str(w) for w in BM25_WEIGHTS)})"
# Built once: a search runs it every time, and building the construct costs more Python
# than SQLite takes to answer it.
_COUNT_COLLECTIONS = text("SELECT count(*) FROM collections")


def keyword_search(
    conn: Connection,
    terms: Sequence[str],
    *,
    collection_ids: Sequence[str],
    filters: Filters,
    limit: int,
) -> list[ScoredId]:
    """The best ``limit`` chunks of ready documents in ``collection_ids`` under
    ``filters``, best first (see the module's docstring for the two ways there)."""
    if not terms or not collection_ids or limit <= 0:
        return []
    match = fts_match(terms)
    if not filters and _covers_every_collection(conn, collection_ids):
        found = whole_index_top(conn, match, collection_ids, limit)
        if found is not None:
            return found
    return exact_top(conn, match, collection_ids, filters, limit)


def fts_match(terms: Sequence[str]) -> str:
    """Any of ``terms``, each a quoted FTS5 string, so no user text is ever FTS5 syntax."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _covers_every_collection(conn: Connection, collection_ids: Sequence[str]) -> bool:
    count = conn.execute(_COUNT_COLLECTIONS).scalar_one()
    return int(count) <= len(set(collection_ids))


def whole_index_top(
    conn: Connection, match: str, collection_ids: Sequence[str], limit: int
) -> list[ScoredId] | None:
    """The FTS table's own top ``limit``, or None when it is not the scope's."""
    params: dict[str, Any] = {"match": match, "limit": limit}
    scope = in_clause("c.collection_id", "col", collection_ids, params)
    # Bandit B608 is silenced below: only constants and placeholders are formatted in.
    sql = (
        f"SELECT r.id AS id, r.rank AS rank, "  # noqa: S608 # nosec B608
        f"coalesce({scope} AND d.status = 'ready', 0) AS kept "
        f"FROM (SELECT rowid AS id, {_BM25} AS rank FROM chunks_fts "
        "WHERE chunks_fts MATCH :match ORDER BY rank, rowid LIMIT :limit) AS r "
        "LEFT JOIN chunks c ON c.id = r.id LEFT JOIN documents d ON d.id = c.document_id "
        "ORDER BY r.rank, r.id"
    )
    rows = conn.execute(text(sql), params).all()
    if len(rows) == limit and not all(row.kept for row in rows):
        return None
    return [ScoredId(chunk_public_id(row.id), -float(row.rank)) for row in rows if row.kept]


def exact_top(
    conn: Connection, match: str, collection_ids: Sequence[str], filters: Filters, limit: int
) -> list[ScoredId]:
    params: dict[str, Any] = {"match": match, "limit": limit}
    scope = in_clause("c.collection_id", "col", collection_ids, params)
    sql = (
        f"SELECT c.id AS id, {_BM25} AS rank "  # noqa: S608 # nosec B608
        "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
        "JOIN documents d ON d.id = c.document_id "
        f"WHERE chunks_fts MATCH :match AND {scope} AND d.status = 'ready'"
        f"{filter_sql(filters, params)} ORDER BY rank, c.id LIMIT :limit"
    )
    rows = conn.execute(text(sql), params).all()
    return [ScoredId(chunk_public_id(row.id), -float(row.rank)) for row in rows]


__all__ = ["BM25_WEIGHTS", "exact_top", "fts_match", "keyword_search", "whole_index_top"]
