"""The Embedder seam: texts in, L2-normalized float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into vectors; ``dimension`` is known once the model is loaded."""

    model_name: str

    @property
    def dimension(self) -> int: ...

    def start_loading(self) -> None:
        """Begin loading in the background so start-up is not blocked by the model."""

    def check(self) -> None:
        """Raise :class:`~ragd.errors.EmbeddingError` unless ready to embed right now."""

    def embed_documents(self, texts: Sequence[str]) -> Matrix: ...

    def embed_query(self, text: str) -> npt.NDArray[np.float32]: ...


def normalize_rows(matrix: npt.ArrayLike) -> Matrix:
    """Unit-length rows, so cosine similarity is a dot product everywhere downstream."""
    array = np.asarray(matrix, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: Matrix = (array / norms).astype(np.float32)
    return normalized
