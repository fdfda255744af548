"""Exact vector search over an in-memory matrix per collection.

SQLite cannot load vector extensions in this Python, and exact numpy search over 100k×384
float32 takes ~16 ms, so the embedded store keeps each collection's vectors as one
normalized matrix. The collection's ``chunks_version`` tells when the database changed
(in this process or another); a reload then fetches only the ids that are new.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragd.domain import Vector

IdArray = npt.NDArray[np.int64]

_blas_limited = False
_blas_lock = threading.Lock()


def single_threaded_blas() -> None:
    """Run numpy's OpenBLAS on one thread in this process (once; not when the operator
    set ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS``).

    Why: a search is one matrix-vector product over a collection's matrix. OpenBLAS
    splits it across every core, and each call then waits for all of its threads; when
    another thread holds a core (the query embedder's, a request's, the ingestion
    worker's, another process's), one product took 5-8 ms instead of 0.15 ms on 5k x
    384, twice per hybrid search. Concurrency in a server comes from its requests, so
    one thread per product is also what serves more of them at once. Only OpenBLAS is
    limited: torch and ONNX Runtime keep their own thread settings.
    """
    global _blas_limited
    with _blas_lock:
        if (
            _blas_limited
            or os.environ.get("OPENBLAS_NUM_THREADS")
            or os.environ.get("OMP_NUM_THREADS")
        ):
            return
        from threadpoolctl import ThreadpoolController

        ThreadpoolController().select(internal_api="openblas").limit(limits=1)
        _blas_limited = True


@dataclass
class _Entry:
    version: int
    ids: IdArray
    matrix: npt.NDArray[np.float32]


class VectorCache:
    """Per-collection matrices, refreshed incrementally when the version moves."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(
        self,
        collection_id: str,
        version: int,
        load_ids: Callable[[], IdArray],
        load_vectors: Callable[[IdArray], npt.NDArray[np.float32]],
    ) -> tuple[IdArray, npt.NDArray[np.float32]]:
        with self._lock:
            entry = self._entries.get(collection_id)
            if entry is not None and entry.version == version:
                return entry.ids, entry.matrix
            ids = load_ids()
            matrix = load_vectors(ids) if entry is None else _refresh(entry, ids, load_vectors)
            self._entries[collection_id] = _Entry(version, ids, matrix)
            return ids, matrix

    def forget(self, collection_id: str) -> None:
        with self._lock:
            self._entries.pop(collection_id, None)


def _refresh(
    entry: _Entry, ids: IdArray, load_vectors: Callable[[IdArray], npt.NDArray[np.float32]]
) -> npt.NDArray[np.float32]:
    known = np.isin(ids, entry.ids, assume_unique=True)
    dim = entry.matrix.shape[1] if entry.matrix.ndim == 2 else 0
    matrix = np.empty((len(ids), dim), dtype=np.float32) if dim else None
    new_vectors = load_vectors(ids[~known])
    if matrix is None:
        return new_vectors if len(new_vectors) else np.empty((0, 0), dtype=np.float32)
    positions = np.searchsorted(entry.ids, ids[known])
    matrix[known] = entry.matrix[positions]
    if len(new_vectors):
        matrix[~known] = new_vectors
    return matrix


def top_k(
    query: Vector,
    ids: IdArray,
    matrix: npt.NDArray[np.float32],
    limit: int,
    allowed: npt.NDArray[np.bool_] | None = None,
) -> list[tuple[int, float]]:
    """Best ``limit`` rows by cosine similarity (vectors are normalized: a dot product)."""
    if len(ids) == 0 or limit <= 0:
        return []
    scores = matrix @ query.astype(np.float32)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    limit = min(limit, len(scores))
    best = np.argpartition(-scores, limit - 1)[:limit]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in best if np.isfinite(scores[i])]
