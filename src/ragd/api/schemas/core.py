"""Pydantic request and response models: the HTTP contract, one Create/Update/Public
set per resource. Bounds come from :mod:`ragd.limits` (the ceilings); fields an operator
may tighten name their limit, so the OpenAPI document shows the configured value."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragd.api.schemas.bounds import filters_field, limited
from ragd.auth import Scope
from ragd.domain import DocumentStatus, MetadataValue
from ragd.limits import CEILINGS, COLLECTION_NAME_PATTERN

Metadata = dict[str, MetadataValue]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_NAME_CHARS = CEILINGS.collection_name_chars
_DESCRIPTION_CHARS = CEILINGS.description_chars
_TITLE_CHARS = CEILINGS.document_title_chars


class CollectionCreate(_Strict):
    name: str = Field(min_length=1, max_length=_NAME_CHARS, pattern=COLLECTION_NAME_PATTERN)
    description: str = Field("", max_length=_DESCRIPTION_CHARS)


class CollectionUpdate(_Strict):
    name: str | None = Field(
        None, min_length=1, max_length=_NAME_CHARS, pattern=COLLECTION_NAME_PATTERN
    )
    description: str | None = Field(None, max_length=_DESCRIPTION_CHARS)


class CollectionPublic(BaseModel):
    id: str
    name: str
    description: str
    embedding_model: str
    embedding_dim: int
    document_count: int
    chunk_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class CollectionList(BaseModel):
    collections: list[CollectionPublic]


class TextDocumentCreate(_Strict):
    text: str = Field(min_length=1, description="Plain text or Markdown.")
    title: str | None = Field(None, max_length=_TITLE_CHARS)
    metadata: Metadata | None = Field(
        None, description=f"Flat JSON object, at most {CEILINGS.metadata_bytes // 1024} KB."
    )


class UrlDocumentCreate(_Strict):
    url: str = Field(
        min_length=1,
        max_length=CEILINGS.url_chars,
        description="http(s) URL to fetch.",
        json_schema_extra=limited("maxLength", "url_chars"),
    )
    title: str | None = Field(None, max_length=_TITLE_CHARS)
    metadata: Metadata | None = None


class DocumentPublic(BaseModel):
    id: str
    collection_id: str
    title: str | None
    source_type: str
    source: str | None
    mime_type: str | None
    content_hash: str | None
    metadata: dict[str, Any]
    status: DocumentStatus
    error: str | None
    attempts: int
    chunk_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
    ready_at: dt.datetime | None


class ItemProblem(BaseModel):
    """Why one item of a batch was rejected: the problem its single upload would get."""

    type: str
    title: str
    status: int
    detail: str


class BatchItem(BaseModel):
    index: int = Field(description="Position in the batch: the file part, or the NDJSON line.")
    status: Literal["created", "duplicate", "rejected"] = Field(
        description="created: queued for ingestion; duplicate: the same content is already "
        "in the collection (the existing document); rejected: see problem."
    )
    filename: str | None = Field(None, description="The file part's name (multipart only).")
    document: DocumentPublic | None
    problem: ItemProblem | None


class BatchResult(BaseModel):
    """One result per item, in order; one bad item never rejects the others."""

    items: list[BatchItem]
    created: int
    duplicates: int
    rejected: int


class DocumentList(BaseModel):
    documents: list[DocumentPublic]
    next_cursor: str | None


class IngestionStatus(BaseModel):
    """Where ingestion stands: the queue depth and each visible collection's documents
    by status, for progress displays that should not page through every document."""

    queue_depth: int = Field(description="Documents queued or processing.")
    collections: dict[str, dict[DocumentStatus, int]] = Field(
        description="Collection id → documents per status (every status, zeros included)."
    )


class ChunkPublic(BaseModel):
    id: str
    document_id: str
    collection_id: str
    ordinal: int
    text: str
    heading_path: list[str]
    token_count: int
    char_start: int
    char_end: int


class ChunkList(BaseModel):
    chunks: list[ChunkPublic]


def _query_text() -> Any:
    return Field(
        min_length=1,
        max_length=CEILINGS.query_chars,
        json_schema_extra=limited("maxLength", "query_chars"),
    )


class SearchRequest(_Strict):
    query: str = _query_text()
    collections: list[str] | None = Field(
        None, max_length=100, description="Collection ids; all collections when omitted."
    )
    top_k: int = Field(10, ge=1, le=CEILINGS.top_k, json_schema_extra=limited("maximum", "top_k"))
    mode: Literal["hybrid", "keyword", "vector"] = "hybrid"
    filters: Metadata | None = filters_field("Metadata key → required value.")


class SearchResult(BaseModel):
    chunk_id: str
    document_id: str
    collection_id: str
    title: str | None
    text: str
    score: float
    metadata: dict[str, Any]
    heading_path: list[str]


class SearchResponse(BaseModel):
    results: list[SearchResult]


class AskRequest(_Strict):
    question: str = _query_text()
    collections: list[str] | None = Field(None, max_length=100)
    top_k: int = Field(5, ge=1, le=CEILINGS.answer_top_k)
    filters: Metadata | None = filters_field()
    stream: bool = Field(
        False,
        description="Answer as Server-Sent Events (text/event-stream): `delta` events "
        '(`{"text"}`), one `citations` event, then `done`; a failure after the stream '
        'started arrives as an `error` event (`{"type","title","status","detail"}`).',
    )


class CitationPublic(BaseModel):
    n: int
    document_id: str
    chunk_id: str
    title: str | None
    text: str
    score: float


class AskResponse(BaseModel):
    answer: str
    citations: list[CitationPublic]


class CheckResult(BaseModel):
    status: Literal["ok", "fail"]
    detail: str | None = None
    latency_ms: float
    required: bool = Field(True, description="A failing required check makes /readyz 503.")


class ReadyResponse(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, CheckResult]


class Problem(BaseModel):
    """RFC 9457 problem details, the shape of every error."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class KeyCreate(_Strict):
    name: str = Field(min_length=1, max_length=CEILINGS.key_name_chars)
    scope: Scope = Field(
        description="read: search, ask, list, get; write: + ingest, delete "
        "documents, create/patch collections; admin: + keys, delete collections."
    )
    collections: list[str] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Collection ids the key is limited to; every collection when omitted.",
    )


class KeyPublic(BaseModel):
    """A key as listed: its prefix names it; the secret is never shown again."""

    id: str
    name: str
    prefix: str
    scope: Scope
    collections: list[str] | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The full key. Shown only in this response: store it now.")


class KeyList(BaseModel):
    keys: list[KeyPublic]
