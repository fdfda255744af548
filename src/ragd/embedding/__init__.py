"""Embedding engines behind the :class:`Embedder` protocol, chosen from settings."""

from __future__ import annotations

from ragd.config import Settings
from ragd.embedding.base import Embedder, normalize_rows
from ragd.embedding.local import LocalEmbedder
from ragd.embedding.query_cache import QueryCachingEmbedder


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder, behind the query cache unless its size is 0."""
    embedder = _model(settings)
    if settings.query_cache_size > 0:
        return QueryCachingEmbedder(embedder, settings.query_cache_size)
    return embedder


def _model(settings: Settings) -> Embedder:
    """A remote OpenAI-compatible embedder when a base URL is set, else the local model."""
    if settings.embedding_base_url:
        from ragd.embedding.openai_compat import OpenAICompatEmbedder

        key = settings.embedding_api_key
        return OpenAICompatEmbedder(
            base_url=settings.embedding_base_url,
            model=settings.embedding_model,
            api_key=key.get_secret_value() if key else None,
            batch_size=settings.embedding_batch_size,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )
    return LocalEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        threads=settings.embedding_threads,
        cache_dir=settings.resolved_embedding_onnx_dir,
    )


__all__ = [
    "Embedder",
    "LocalEmbedder",
    "QueryCachingEmbedder",
    "build_embedder",
    "normalize_rows",
]
