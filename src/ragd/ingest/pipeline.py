"""Parse → chunk → (embed) for one job; functions the worker composes.

Embedding is left to the worker so it can batch the chunks of many documents into one
model call: on CPU the model is the bottleneck, and big batches are what keep it busy.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ragd.config import Settings
from ragd.domain import Job, NewChunk, Vector
from ragd.ingest.chunking import Chunk, chunk_document
from ragd.ingest.fetch import fetch_url
from ragd.ingest.isolation import run_isolated
from ragd.ingest.parsers import (
    ParsedDocument,
    ParseLimits,
    detect_mime_type,
    parse_document,
    parse_limits,
    parse_text,
)
from ragd.ingest.textnorm import content_hash, decode_text
from ragd.telemetry.metrics import INGEST_STAGE_DURATION


@dataclass(frozen=True)
class PreparedDocument:
    """A parsed and chunked document waiting for its vectors."""

    job: Job
    parsed: ParsedDocument
    content_hash: str
    chunks: list[Chunk]
    embed_texts: list[str]
    text_hashes: list[str]

    def new_chunks(self, vectors: Mapping[str, Vector]) -> list[NewChunk]:
        """The chunks as the store writes them, each with its vector (looked up by the
        text hash, so chunks repeated across documents are embedded once)."""
        return [
            NewChunk(
                ordinal=chunk.ordinal,
                text=chunk.text,
                heading_path=chunk.heading_path,
                token_count=chunk.token_count,
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                text_hash=text_hash,
                embedding=np.asarray(vectors[text_hash], dtype=np.float32),
            )
            for chunk, text_hash in zip(self.chunks, self.text_hashes, strict=True)
        ]


@dataclass(frozen=True)
class ParseTask:
    """Everything the parse child needs, picklable: the bytes and the bounds."""

    source_type: str
    content: bytes
    mime_type: str | None
    filename: str | None
    title: str | None
    limits: ParseLimits
    max_tokens: int
    overlap_tokens: int
    max_chunks: int


@dataclass(frozen=True)
class ParseOutcome:
    parsed: ParsedDocument
    chunks: list[Chunk]
    chunk_s: float  # of the child's time, so the parent can report the two stages


def parse_task(job: Job, settings: Settings) -> ParseTask:
    """The job's bytes as the child will read them, fetching URLs here, in the worker,
    so the API never waits on a remote server (the fetch has its own deadline)."""
    content, mime, filename = job.content, job.mime_type, job.source
    max_tokens, overlap_tokens = chunk_budget(job.chunk_max_tokens, settings)
    limits = parse_limits(settings)
    if job.source_type == "url":
        fetched = fetch_url(
            job.source or "",
            allow_private=settings.allow_private_urls,
            timeout_s=settings.url_timeout_s,
            max_bytes=settings.max_upload_bytes,
        )
        content, filename = fetched.content, fetched.filename
        mime = detect_mime_type(
            fetched.content, fetched.filename, fetched.content_type, zip_limits=limits.zip
        )
    return ParseTask(
        source_type=job.source_type,
        content=content,
        mime_type=mime,
        filename=filename,
        title=job.title,
        limits=limits,
        max_tokens=max_tokens,
        overlap_tokens=overlap_tokens,
        max_chunks=settings.max_chunks_per_document,
    )


def chunk_budget(max_tokens: int | None, settings: Settings) -> tuple[int, int]:
    """Tokens per chunk and overlap: the collection's chunk size when it has one (a
    reindex chose it), with an overlap kept well below it; else the server's."""
    if max_tokens is None:
        return settings.chunk_max_tokens, settings.chunk_overlap_tokens
    return max_tokens, min(settings.chunk_overlap_tokens, max_tokens // 4)


def parse_and_chunk(task: ParseTask) -> ParseOutcome:
    """Parse then chunk, both bounded; runs in the parse child (see ``isolation``), since
    chunking a huge text is as much work as parsing it."""
    if task.source_type == "text":
        parsed = parse_text(decode_text(task.content), title=task.title, markdown=True)
        task.limits.check_chars(len(parsed.text))
    else:
        mime = task.mime_type or detect_mime_type(
            task.content, task.filename, None, zip_limits=task.limits.zip
        )
        parsed = parse_document(task.content, mime, filename=task.filename, limits=task.limits)
    started = time.perf_counter()
    chunks = chunk_document(
        parsed.text,
        max_tokens=task.max_tokens,
        overlap_tokens=task.overlap_tokens,
        max_chunks=task.max_chunks,
        markdown=parsed.markdown,
    )
    return ParseOutcome(parsed, chunks, time.perf_counter() - started)


def embed_text(title: str | None, heading_path: tuple[str, ...], text: str) -> str:
    """What the model sees for a chunk: its document title and section headings give
    a short chunk the context a reader would have."""
    context = [part for part in (title, " > ".join(heading_path)) if part]
    return "\n".join([*context, text])


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare(
    job: Job, settings: Settings, *, cancelled: Callable[[], bool] = lambda: False
) -> PreparedDocument:
    """Fetch, then parse and chunk in a killable child within the configured bounds.

    Raises :class:`~ragd.ingest.isolation.Cancelled` when ``cancelled()`` turns true
    while the child works (the document was deleted or its lease lost)."""
    started = time.perf_counter()
    task = parse_task(job, settings)
    outcome = run_isolated(
        parse_and_chunk,
        task,
        timeout_s=settings.parse_timeout_s,
        max_memory_mb=settings.parse_max_memory_mb or None,
        cancelled=cancelled,
    )
    # "parse" includes the fetch and the child's start-up and hand-over.
    elapsed = time.perf_counter() - started
    INGEST_STAGE_DURATION.labels(stage="parse").observe(max(elapsed - outcome.chunk_s, 0.0))
    INGEST_STAGE_DURATION.labels(stage="chunk").observe(outcome.chunk_s)
    parsed, chunks = outcome.parsed, outcome.chunks
    title = job.title or parsed.title
    texts = [embed_text(title, chunk.heading_path, chunk.text) for chunk in chunks]
    return PreparedDocument(
        job=job,
        parsed=parsed,
        content_hash=content_hash(parsed.text),
        chunks=chunks,
        embed_texts=texts,
        text_hashes=[text_hash(t) for t in texts],
    )
