"""An embedder over any OpenAI-compatible ``/embeddings`` endpoint.

Covers OpenAI, Ollama, vLLM, LM Studio, llama.cpp and hosted embedders: set
``RAGD_EMBEDDING_BASE_URL`` and ``RAGD_EMBEDDING_MODEL``. Retries with backoff (honouring
``Retry-After``) come from the official client; errors become
:class:`~ragd.errors.EmbeddingError` without the key or raw exception text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import openai

from ragd.embedding.base import Matrix, normalize_rows
from ragd.errors import EmbeddingError


class OpenAICompatEmbedder:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        batch_size: int = 256,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self._dimension: int | None = None
        self._error: str | None = None
        self._probed = threading.Event()

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._probe()
        if self._dimension is None:
            raise EmbeddingError(self._error or "embedding endpoint did not answer")
        return self._dimension

    def start_loading(self) -> None:
        threading.Thread(target=self._probe, name="ragd-embedder-probe", daemon=True).start()

    def check(self) -> None:
        if not self._probed.is_set():
            raise EmbeddingError("embedding endpoint not checked yet")
        if self._dimension is None:
            raise EmbeddingError(self._error or "embedding endpoint did not answer")

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        parts = [
            self._embed_batch(list(texts[start : start + self.batch_size]))
            for start in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            return np.empty((0, self.dimension), dtype=np.float32)
        return normalize_rows(np.vstack(parts))

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.embed_documents([text])[0]
        return vector

    def _probe(self) -> None:
        """Learn the dimension from one real call; readiness reports the outcome."""
        try:
            self._dimension = int(self._embed_batch(["ragd dimension probe"]).shape[1])
            self._error = None
        except EmbeddingError as exc:
            self._error = exc.detail
        finally:
            self._probed.set()

    def _embed_batch(self, texts: list[str]) -> Matrix:
        try:
            response = self._client.embeddings.create(model=self.model_name, input=texts)
        except openai.APIStatusError as exc:
            raise EmbeddingError(f"embedding request failed: HTTP {exc.status_code}") from None
        except openai.APITimeoutError:
            raise EmbeddingError("embedding request failed: timed out") from None
        except openai.APIConnectionError:
            raise EmbeddingError("embedding request failed: could not connect") from None
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise EmbeddingError("embedding endpoint returned the wrong number of vectors")
        return np.asarray([row.embedding for row in rows], dtype=np.float32)
