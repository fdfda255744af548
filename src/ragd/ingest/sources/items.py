"""From an item's bytes to a :class:`~ragd.domain.SourceItemWrite`: parse and chunk in
the killable parse child (:func:`ragd.ingest.pipeline.prepare`, the worker's own
bounds), then embed through the embedding cache.

A sync embeds the chunks of several items per model call, as the worker does: on CPU
the model is the bottleneck and big batches are what keep it busy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ragd.config import Settings
from ragd.domain import Job, SourceItemWrite, Vector
from ragd.embedding.base import Embedder
from ragd.ingest.parsers import detect_mime_type
from ragd.ingest.parsers.base import MARKDOWN
from ragd.ingest.pipeline import PreparedDocument, prepare
from ragd.store.base import EmbeddingCache

__all__ = ["RawItem", "embed_items", "item_writes", "prepare_item"]


@dataclass(frozen=True)
class RawItem:
    """An item as fetched: ``kind`` says whether ``content`` is Markdown text we made
    (a spreadsheet row) or a file to detect and parse (a page, a file of a folder)."""

    key: str
    content: bytes
    kind: Literal["text", "file"]
    document_source_type: Literal["url", "text", "upload"]
    item_hash: str
    filename: str | None = None
    declared_type: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None


def prepare_item(
    raw: RawItem,
    settings: Settings,
    embedding_model: str,
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> PreparedDocument:
    """Parse and chunk ``raw`` under the worker's bounds (time, memory, pages,
    characters, chunks); raises what :func:`~ragd.ingest.pipeline.prepare` raises."""
    if raw.kind == "text":
        mime: str | None = MARKDOWN
    else:
        mime = detect_mime_type(raw.content[:4096], raw.filename, raw.declared_type)
    job = Job(
        document_id=raw.key[:200],
        collection_id="",
        title=raw.title,
        source_type="text" if raw.kind == "text" else "upload",
        source=raw.filename,
        mime_type=mime,
        content_hash=None,
        attempts=1,
        lease_owner="",
        content=raw.content,
        embedding_model=embedding_model,
    )
    return prepare(job, settings, cancelled=cancelled)


def embed_items(
    prepared: Sequence[PreparedDocument],
    embedder: Embedder,
    cache: EmbeddingCache,
    *,
    batch: int,
) -> dict[str, Vector]:
    """Vectors for every chunk of ``prepared`` by text hash: the cached ones, the rest
    embedded ``batch`` texts per call and cached."""
    model = embedder.model_name
    vectors = cache.cached_embeddings(model, [h for doc in prepared for h in doc.text_hashes])
    missing: dict[str, str] = {}
    for doc in prepared:
        for h, text in zip(doc.text_hashes, doc.embed_texts, strict=True):
            if h not in vectors:
                missing[h] = text
    hashes, texts = list(missing), list(missing.values())
    fresh: dict[str, Vector] = {}
    for start in range(0, len(texts), batch):
        matrix = embedder.embed_documents(texts[start : start + batch])
        fresh.update(zip(hashes[start : start + batch], matrix, strict=True))
    if fresh:
        cache.cache_embeddings(model, fresh)
    vectors.update(fresh)
    return vectors


def item_writes(
    pairs: Sequence[tuple[RawItem, PreparedDocument]], vectors: dict[str, Vector]
) -> list[SourceItemWrite]:
    """What the store swaps in for each item, its chunks with their vectors."""
    return [_write(raw, doc, vectors) for raw, doc in pairs]


def _write(raw: RawItem, doc: PreparedDocument, vectors: dict[str, Vector]) -> SourceItemWrite:
    chunks = doc.new_chunks(vectors)
    return SourceItemWrite(
        key=raw.key,
        title=raw.title or doc.parsed.title,
        source_type=raw.document_source_type,
        mime_type=doc.parsed.mime_type,
        metadata=dict(raw.metadata),
        content=raw.content,
        content_hash=doc.content_hash,
        item_hash=raw.item_hash,
        etag=raw.etag,
        last_modified=raw.last_modified,
        chunks=chunks,
    )
