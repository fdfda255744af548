"""Embedding engines behind the :class:`Embedder` protocol, chosen from settings."""

from __future__ import annotations

from ragd.config import Settings
from ragd.embedding.base import Embedder, normalize_rows
from ragd.embedding.local import LocalEmbedder


def build_embedder(settings: Settings) -> Embedder:
    return LocalEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )


__all__ = ["Embedder", "LocalEmbedder", "build_embedder", "normalize_rows"]
