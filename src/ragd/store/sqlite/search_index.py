"""SQLite's search legs: FTS5 ``bm25()`` for keywords, numpy over cached matrices for
vectors (SQLite cannot load vector extensions in this Python; see
:mod:`ragd.store.sqlite.vector_cache`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, select, text

from ragd.domain import Filters, ScoredId, Vector
from ragd.store.base import SearchIndex
from ragd.store.sql.convert import chunk_public_id, chunk_row_id
from ragd.store.sql.database import Database
from ragd.store.sql.documents import read_vectors
from ragd.store.sqlite import keyword_leg
from ragd.store.sqlite.filters import filter_sql
from ragd.store.sqlite.vector_cache import IdArray, VectorCache, single_threaded_blas, top_k
from ragd.store.tables import chunks, collections

_VECTOR_LOAD_BATCH = 5000

T = TypeVar("T")


class SqliteSearchIndex:
    """The :class:`~ragd.store.base.SearchLegs` of an embedded SQLite file; the vector
    matrices live in this process and follow ``chunks_version``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._vectors = VectorCache()
        single_threaded_blas()

    def search_snapshot(self, work: Callable[[SearchIndex], T]) -> T:
        """``work`` over legs that share one read transaction (see
        :class:`~ragd.store.base.SnapshotSearch`)."""
        return self._db.read(lambda conn: work(_SnapshotLegs(conn, self._vectors)))

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        return self.search_snapshot(
            lambda legs: legs.keyword_search(
                terms, collection_ids=collection_ids, filters=filters, limit=limit
            )
        )

    def vector_search(
        self,
        vector: Vector,
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        return self.search_snapshot(
            lambda legs: legs.vector_search(
                vector, collection_ids=collection_ids, filters=filters, limit=limit
            )
        )


@dataclass(frozen=True)
class _Searchable:
    """One collection's matrix as of the snapshot, and the rows a filter allows."""

    ids: IdArray
    matrix: npt.NDArray[np.float32]
    allowed: npt.NDArray[np.bool_] | None


def _row_vector(ids: IdArray, matrix: npt.NDArray[np.float32], row_id: int) -> Vector | None:
    """The matrix row of chunk ``row_id`` (``ids`` are sorted), or None."""
    position = int(np.searchsorted(ids, row_id))
    if position < len(ids) and ids[position] == row_id:
        found: Vector = matrix[position]
        return found
    return None


class _SnapshotLegs:
    """The search legs inside one read transaction. A collection's matrix and filter
    mask are looked up once per snapshot, so the feedback round's second vector search
    and the feedback vectors themselves cost no further reads."""

    def __init__(self, conn: Connection, cache: VectorCache) -> None:
        self._conn = conn
        self._cache = cache
        self._matrices: dict[str, tuple[IdArray, npt.NDArray[np.float32]]] = {}
        self._masks: dict[tuple[str, str], npt.NDArray[np.bool_]] = {}

    # -- keyword leg --------------------------------------------------------------------

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        return keyword_leg.keyword_search(
            self._conn, terms, collection_ids=collection_ids, filters=filters, limit=limit
        )

    # -- vector leg ---------------------------------------------------------------------

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
        found: list[tuple[int, float]] = []
        for searchable in self._searchables(collection_ids, filters):
            found.extend(
                top_k(vector, searchable.ids, searchable.matrix, limit, searchable.allowed)
            )
        found.sort(key=lambda pair: -pair[1])
        return [ScoredId(chunk_public_id(cid), score) for cid, score in found[:limit]]

    def get_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Vector]:
        """From the matrices this snapshot already holds (the feedback chunks were found
        in them); any other id is read from the table, as the store does."""
        found: dict[str, Vector] = {}
        missing: list[str] = []
        for chunk_id in chunk_ids:
            vector = self._held_vector(chunk_id)
            if vector is None:
                missing.append(chunk_id)
            else:
                found[chunk_id] = vector
        if missing:
            found.update(read_vectors(self._conn, missing))
        return {chunk_id: found[chunk_id] for chunk_id in chunk_ids if chunk_id in found}

    def _held_vector(self, chunk_id: str) -> Vector | None:
        row_id = chunk_row_id(chunk_id)
        if row_id is None:
            return None
        for ids, matrix in self._matrices.values():
            vector = _row_vector(ids, matrix, row_id)
            if vector is not None:
                return vector
        return None

    def _searchables(self, collection_ids: Sequence[str], filters: Filters) -> list[_Searchable]:
        searchables = []
        for collection_id in collection_ids:
            ids, matrix = self._matrix(collection_id)
            allowed = self._allowed_mask(collection_id, ids, filters) if filters else None
            searchables.append(_Searchable(ids, matrix, allowed))
        return searchables

    def _matrix(self, collection_id: str) -> tuple[IdArray, npt.NDArray[np.float32]]:
        # The version, the ids and the vectors come from this transaction's snapshot, so
        # a delete racing the load cannot leave ids without vectors.
        if collection_id in self._matrices:
            return self._matrices[collection_id]
        conn = self._conn
        version = conn.execute(
            select(collections.c.chunks_version).where(collections.c.id == collection_id)
        ).scalar()
        if version is None:
            self._cache.forget(collection_id)
            held = np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
        else:

            def load_ids() -> IdArray:
                rows = conn.execute(
                    select(chunks.c.id)
                    .where(chunks.c.collection_id == collection_id)
                    .order_by(chunks.c.id)
                ).scalars()
                return np.fromiter(rows, dtype=np.int64)

            def load_vectors(ids: IdArray) -> npt.NDArray[np.float32]:
                return _load_vectors(conn, ids)

            held = self._cache.get(collection_id, version, load_ids, load_vectors)
        self._matrices[collection_id] = held
        return held

    def _allowed_mask(
        self, collection_id: str, ids: IdArray, filters: Filters
    ) -> npt.NDArray[np.bool_]:
        key = (collection_id, json.dumps(filters, sort_keys=True))
        if key in self._masks:
            return self._masks[key]
        # Driven from the documents (fewer rows than chunks, and the filter is on them),
        # then their chunks by the (document_id, ordinal) index.
        params: dict[str, Any] = {"collection_id": collection_id}
        sql = (
            "SELECT c.id FROM documents d CROSS JOIN chunks c ON c.document_id = d.id "  # noqa: S608 # nosec B608
            f"WHERE d.collection_id = :collection_id{filter_sql(filters, params)}"
        )
        allowed = np.fromiter(self._conn.execute(text(sql), params).scalars(), dtype=np.int64)
        mask = np.isin(ids, allowed)
        self._masks[key] = mask
        return mask


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


__all__ = ["SqliteSearchIndex"]
