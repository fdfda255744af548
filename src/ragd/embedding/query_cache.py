"""Remembered query embeddings: a repeated query skips the model.

Users repeat queries (a refreshed page, the same question from a chat client, an
evaluation run twice), and on a small collection the embedding is most of a search. The
cache is per process, bounded (least recently used goes first) and keyed by the model,
the backend and the query with its whitespace collapsed, which the tokenizers ignore.
Cached vectors are read-only, so no caller can change what the next one gets.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ragd.embedding.base import Embedder, Matrix
from ragd.telemetry.metrics import QUERY_EMBEDDING_CACHE

Key = tuple[str, str, str]


def cache_key(model: str, backend: str, text: str) -> Key:
    return (model, backend, " ".join(text.split()))


class QueryCachingEmbedder:
    """An :class:`Embedder` whose ``embed_query`` answers repeats from memory; documents
    pass straight through (the store has its own embedding cache for those)."""

    def __init__(self, inner: Embedder, size: int) -> None:
        self.inner = inner
        self.size = size
        self.model_name = inner.model_name
        self._entries: OrderedDict[Key, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def backend(self) -> str:
        """What computes the vectors; part of the key, as two backends may differ in the
        last float bits."""
        return str(getattr(self.inner, "backend", type(self.inner).__name__))

    def start_loading(self) -> None:
        self.inner.start_loading()

    def check(self) -> None:
        self.inner.check()

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return self.inner.embed_documents(texts)

    def foreground_active(self) -> bool:
        probe = getattr(self.inner, "foreground_active", None)
        return bool(probe()) if probe else False

    def holds(self, text: str) -> bool:
        """Whether ``text`` would be answered from memory (counts nothing, moves
        nothing): a caller may then skip handing the call to another thread."""
        with self._lock:
            return cache_key(self.model_name, self.backend, text) in self._entries

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        key = cache_key(self.model_name, self.backend, text)
        with self._lock:
            vector = self._entries.get(key)
            if vector is not None:
                self._entries.move_to_end(key)
        if vector is not None:
            QUERY_EMBEDDING_CACHE.labels(result="hit").inc()
            return vector
        QUERY_EMBEDDING_CACHE.labels(result="miss").inc()
        vector = np.array(self.inner.embed_query(text), dtype=np.float32)
        vector.setflags(write=False)
        with self._lock:
            self._entries[key] = vector
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return vector

    def __len__(self) -> int:
        return len(self._entries)
