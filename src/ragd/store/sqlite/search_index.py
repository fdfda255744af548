"""SQLite's search legs: FTS5 ``bm25()`` for keywords, numpy over cached matrices for
vectors (SQLite cannot load vector extensions in this Python; see
:mod:`ragd.store.sqlite.vector_cache`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, select, text

from ragd.domain import Filters, ScoredId, Vector
from ragd.store.sql.convert import chunk_public_id
from ragd.store.sql.database import Database
from ragd.store.sqlite.vector_cache import IdArray, VectorCache, single_threaded_blas, top_k
from ragd.store.tables import chunks, collections

# bm25() column weights for (title, headings, body): a match in the title or a heading
# says more about a chunk than one in its body.
_BM25_WEIGHTS = (2.0, 1.5, 1.0)
_VECTOR_LOAD_BATCH = 5000


class SqliteSearchIndex:
    """The :class:`~ragd.store.base.SearchLegs` of an embedded SQLite file; the vector
    matrices live in this process and follow ``chunks_version``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._vectors = VectorCache()
        single_threaded_blas()

    # -- keyword leg --------------------------------------------------------------------

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        # Every term is a quoted FTS5 string, so no user text is ever FTS5 syntax.
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        params: dict[str, Any] = {"match": match, "limit": limit}
        scope = _in_clause("c.collection_id", "col", collection_ids, params)
        weights = ", ".join(str(w) for w in _BM25_WEIGHTS)
        # Bandit B608 is silenced below: only constants and placeholders are formatted in.
        sql = (
            f"SELECT c.id AS id, bm25(chunks_fts, {weights}) AS rank "  # noqa: S608 # nosec B608
            "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
            "JOIN documents d ON d.id = c.document_id "
            f"WHERE chunks_fts MATCH :match AND {scope} AND d.status = 'ready'"
            f"{_filter_sql(filters, params)} ORDER BY rank LIMIT :limit"
        )
        rows = self._db.read(lambda conn: conn.execute(text(sql), params).all())
        return [ScoredId(chunk_public_id(row.id), -float(row.rank)) for row in rows]

    # -- vector leg ---------------------------------------------------------------------

    def vector_search(
        self,
        vector: Vector,
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        found: list[tuple[int, float]] = []
        for collection_id in collection_ids:
            ids, matrix = self._collection_matrix(collection_id)
            allowed = self._allowed_mask(collection_id, ids, filters) if filters else None
            found.extend(top_k(vector, ids, matrix, limit, allowed))
        found.sort(key=lambda pair: -pair[1])
        return [ScoredId(chunk_public_id(cid), score) for cid, score in found[:limit]]

    def _collection_matrix(self, collection_id: str) -> tuple[IdArray, npt.NDArray[np.float32]]:
        # One read transaction: the version, the ids and the vectors come from the same
        # snapshot, so a delete racing the load cannot leave ids without vectors.
        def work(conn: Connection) -> tuple[IdArray, npt.NDArray[np.float32]]:
            version = conn.execute(
                select(collections.c.chunks_version).where(collections.c.id == collection_id)
            ).scalar()
            if version is None:
                self._vectors.forget(collection_id)
                return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)

            def load_ids() -> IdArray:
                rows = conn.execute(
                    select(chunks.c.id)
                    .where(chunks.c.collection_id == collection_id)
                    .order_by(chunks.c.id)
                ).scalars()
                return np.fromiter(rows, dtype=np.int64)

            def load_vectors(ids: IdArray) -> npt.NDArray[np.float32]:
                return _load_vectors(conn, ids)

            return self._vectors.get(collection_id, version, load_ids, load_vectors)

        return self._db.read(work)

    def _allowed_mask(
        self, collection_id: str, ids: IdArray, filters: Filters
    ) -> npt.NDArray[np.bool_]:
        # Driven from the documents (fewer rows than chunks, and the filter is on them),
        # then their chunks by the (document_id, ordinal) index.
        params: dict[str, Any] = {"collection_id": collection_id}
        sql = (
            "SELECT c.id FROM documents d CROSS JOIN chunks c ON c.document_id = d.id "  # noqa: S608 # nosec B608
            f"WHERE d.collection_id = :collection_id{_filter_sql(filters, params)}"
        )
        allowed = self._db.read(
            lambda conn: np.fromiter(conn.execute(text(sql), params).scalars(), dtype=np.int64)
        )
        return np.isin(ids, allowed)


def _load_vectors(conn: Connection, ids: IdArray) -> npt.NDArray[np.float32]:
    parts: list[npt.NDArray[np.float32]] = []
    for start in range(0, len(ids), _VECTOR_LOAD_BATCH):
        batch = [int(i) for i in ids[start : start + _VECTOR_LOAD_BATCH]]
        rows = dict(
            conn.execute(
                select(chunks.c.id, chunks.c.embedding).where(chunks.c.id.in_(batch))
            ).all()
        )
        parts.extend(np.frombuffer(rows[i], dtype=np.float32) for i in batch)
    if not parts:
        return np.empty((0, 0), dtype=np.float32)
    return np.vstack(parts)


def _in_clause(column: str, prefix: str, values: Sequence[str], params: dict[str, Any]) -> str:
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f":{prefix}{i}")
    return f"{column} IN ({', '.join(names)})"


def _filter_sql(filters: Filters, params: dict[str, Any]) -> str:
    """Metadata equality filters as bound-parameter SQL over ``d.metadata``.

    Keys reach SQL only as bound JSON paths, values only as parameters.
    """
    clauses = []
    for i, (key, value) in enumerate(sorted(filters.items())):
        if '"' in key:
            # A JSON path cannot quote it, and no stored key has one: match nothing
            # rather than a different key with the quote dropped.
            clauses.append(" AND 0")
            continue
        params[f"fpath{i}"] = '$."' + key + '"'
        extracted = f"json_extract(d.metadata, :fpath{i})"
        if value is None:
            clauses.append(f" AND {extracted} IS NULL")
        elif isinstance(value, bool):
            params[f"fval{i}"] = 1 if value else 0
            clauses.append(
                f" AND json_type(d.metadata, :fpath{i}) IN ('true', 'false')"
                f" AND {extracted} = :fval{i}"
            )
        else:
            params[f"fval{i}"] = value
            clauses.append(f" AND {extracted} = :fval{i}")
    return "".join(clauses)


__all__ = ["SqliteSearchIndex"]
