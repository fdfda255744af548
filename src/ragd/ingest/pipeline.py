"""Parse → chunk → (embed) for one job; pure functions the worker composes.

Embedding is left to the worker so it can batch the chunks of many documents into one
model call: on CPU the model is the bottleneck, and big batches are what keep it busy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ragd.config import Settings
from ragd.domain import Job
from ragd.ingest.chunking import Chunk, chunk_document
from ragd.ingest.fetch import fetch_url
from ragd.ingest.parsers import ParsedDocument, detect_mime_type, parse_document, parse_text
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


def parse_job(job: Job, settings: Settings) -> ParsedDocument:
    """Read the job's source into normalized text, fetching URLs here, in the worker,
    so the API never waits on a remote server."""
    if job.source_type == "text":
        return parse_text(decode_text(job.content), title=job.title, markdown=True)
    if job.source_type == "url":
        fetched = fetch_url(
            job.source or "",
            allow_private=settings.allow_private_urls,
            timeout_s=settings.url_timeout_s,
            max_bytes=settings.max_upload_bytes,
        )
        mime = detect_mime_type(fetched.content[:4096], fetched.filename, fetched.content_type)
        return parse_document(fetched.content, mime, filename=fetched.filename)
    mime = job.mime_type or detect_mime_type(job.content[:4096], job.source, None)
    return parse_document(job.content, mime, filename=job.source)


def embed_text(title: str | None, heading_path: tuple[str, ...], text: str) -> str:
    """What the model sees for a chunk: its document title and section headings give
    a short chunk the context a reader would have."""
    context = [part for part in (title, " > ".join(heading_path)) if part]
    return "\n".join([*context, text])


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare(job: Job, settings: Settings) -> PreparedDocument:
    with INGEST_STAGE_DURATION.labels(stage="parse").time():
        parsed = parse_job(job, settings)
    with INGEST_STAGE_DURATION.labels(stage="chunk").time():
        chunks = chunk_document(
            parsed.text,
            max_tokens=settings.chunk_max_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
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
