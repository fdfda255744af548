"""What the tools answer: pydantic models for structured content (their JSON Schema is
each tool's ``outputSchema``) and the plain text an MCP host shows its model.

Every passage carries the ``ragd://documents/{id}`` resource of its document, so a
client can open the whole text of anything it was shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from ragd.domain import Collection, Document
from ragd.services.answers import AnswerResult
from ragd.services.search import SearchHit

from .text import snippet

DOCUMENT_URI = "ragd://documents/{document_id}"


def document_uri(document_id: str) -> str:
    return DOCUMENT_URI.format(document_id=document_id)


class Hit(BaseModel):
    n: int = Field(description="Rank, from 1.")
    chunk_id: str
    document_id: str
    collection_id: str
    title: str | None
    score: float
    heading_path: list[str]
    text: str
    metadata: dict[str, Any]
    resource_uri: str = Field(description="The document's MCP resource (its full text).")


class SearchOutput(BaseModel):
    results: list[Hit]


class CitationOut(BaseModel):
    n: int = Field(description="The number the answer cites as [n].")
    document_id: str
    chunk_id: str
    title: str | None
    snippet: str = Field(description="The start of the cited passage.")
    score: float
    resource_uri: str


class AskOutput(BaseModel):
    answer: str
    citations: list[CitationOut]


class CollectionOut(BaseModel):
    id: str
    name: str
    description: str
    document_count: int
    chunk_count: int
    embedding_model: str
    created_at: dt.datetime


class CollectionsOutput(BaseModel):
    collections: list[CollectionOut]


class ChunkOut(BaseModel):
    id: str
    ordinal: int
    heading_path: list[str]
    text: str


class DocumentOutput(BaseModel):
    id: str
    collection_id: str
    title: str | None
    status: str = Field(description="queued, processing, ready or failed.")
    error: str | None
    source_type: str
    source: str | None
    mime_type: str | None
    metadata: dict[str, Any]
    chunk_count: int
    created_at: dt.datetime
    ready_at: dt.datetime | None
    resource_uri: str
    excerpt: str = Field(description="The document's text, up to max_chars.")
    truncated: bool = Field(description="True when the text goes on past the excerpt.")
    chunks: list[ChunkOut] | None = Field(
        None, description="With include_chunks: the chunks whose text fits in max_chars."
    )


def search_output(hits: list[SearchHit]) -> SearchOutput:
    return SearchOutput(
        results=[
            Hit(
                n=n,
                chunk_id=h.chunk_id,
                document_id=h.document_id,
                collection_id=h.collection_id,
                title=h.title,
                score=h.score,
                heading_path=list(h.heading_path),
                text=h.text,
                metadata=h.metadata,
                resource_uri=document_uri(h.document_id),
            )
            for n, h in enumerate(hits, start=1)
        ]
    )


def ask_output(result: AnswerResult) -> AskOutput:
    return AskOutput(
        answer=result.answer,
        citations=[
            CitationOut(
                n=c.n,
                document_id=c.document_id,
                chunk_id=c.chunk_id,
                title=c.title,
                snippet=snippet(c.text),
                score=c.score,
                resource_uri=document_uri(c.document_id),
            )
            for c in result.citations
        ],
    )


def collections_output(found: list[Collection]) -> CollectionsOutput:
    return CollectionsOutput(
        collections=[
            CollectionOut(
                id=c.id,
                name=c.name,
                description=c.description,
                document_count=c.document_count,
                chunk_count=c.chunk_count,
                embedding_model=c.embedding_model,
                created_at=c.created_at,
            )
            for c in found
        ]
    )


def document_output(
    document: Document, excerpt: str, truncated: bool, chunks: list[ChunkOut] | None
) -> DocumentOutput:
    return DocumentOutput(
        id=document.id,
        collection_id=document.collection_id,
        title=document.title,
        status=document.status,
        error=document.error,
        source_type=document.source_type,
        source=document.source,
        mime_type=document.mime_type,
        metadata=document.metadata,
        chunk_count=document.chunk_count,
        created_at=document.created_at,
        ready_at=document.ready_at,
        resource_uri=document_uri(document.id),
        excerpt=excerpt,
        truncated=truncated,
        chunks=chunks,
    )


# --- the text a host puts in front of its model -----------------------------------------


def _label(title: str | None, document_id: str) -> str:
    return title or document_id


def search_text(output: SearchOutput) -> str:
    if not output.results:
        return "No passages matched."
    blocks = [
        f"[{h.n}] {_label(h.title, h.document_id)} (document {h.document_id}, "
        f"chunk {h.chunk_id}, score {h.score:.4f})\n{h.text}"
        for h in output.results
    ]
    return "\n\n".join(blocks)


def ask_text(output: AskOutput) -> str:
    if not output.citations:
        return output.answer
    sources = "\n".join(
        f"[{c.n}] {_label(c.title, c.document_id)} (document {c.document_id}, "
        f"chunk {c.chunk_id}): {c.snippet}"
        for c in output.citations
    )
    return f"{output.answer}\n\nSources:\n{sources}"


def collections_text(output: CollectionsOutput) -> str:
    if not output.collections:
        return "No collections."
    return "\n".join(
        f"{c.name} ({c.id}): {c.document_count} documents, {c.chunk_count} chunks"
        + (f" — {c.description}" if c.description else "")
        for c in output.collections
    )


def document_text_block(output: DocumentOutput) -> str:
    head = f"{_label(output.title, output.id)} (document {output.id}, {output.status}"
    head += f", {output.chunk_count} chunks)"
    if output.error:
        head += f"\nerror: {output.error}"
    body = output.excerpt
    if output.truncated:
        body += f"\n\n[truncated; read {output.resource_uri} for the whole text]"
    return f"{head}\n\n{body}" if body else head
