"""Plain records that cross the Store seam, so no SQLAlchemy row leaks upward."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from ragd.auth import Scope

Vector = npt.NDArray[np.float32]
DocumentStatus = Literal["queued", "processing", "ready", "failed"]
DOCUMENT_STATUSES: tuple[DocumentStatus, ...] = ("queued", "processing", "ready", "failed")
FeedbackLeg = Literal["search", "rescore"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_JOB_STATUSES: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")
MetadataValue = str | int | float | bool | None
Filters = dict[str, MetadataValue]
T = TypeVar("T")


@dataclass(frozen=True)
class FusionWeights:
    """How a hybrid ranking weighs its legs, handed whole to a store that fuses in SQL."""

    keyword_weight: float
    final_keyword_weight: float
    feedback_docs: int
    feedback_weight: float
    # Adaptive fusion: both keyword weights are scaled by min(1, agreement / this), the
    # agreement being the share of the two legs' top ``agreement_depth`` chunks they
    # have in common; 0 keeps the weights fixed (plain convex fusion).
    agreement_full: float = 0.0
    agreement_depth: int = 10
    # The feedback round's vector leg: ``search`` the collection again with the fed-back
    # vector, or ``rescore`` the first pass's candidates (both legs' hits) with it, which
    # saves a second nearest-neighbour search (docs/performance.md).
    feedback_leg: FeedbackLeg = "search"


@dataclass(frozen=True)
class Collection:
    id: str
    name: str
    description: str
    embedding_model: str
    embedding_dim: int
    created_at: dt.datetime
    updated_at: dt.datetime
    document_count: int = 0
    chunk_count: int = 0
    chunk_max_tokens: int | None = None
    """The collection's chunk size (None: the server's default)."""


@dataclass(frozen=True)
class Document:
    id: str
    collection_id: str
    title: str | None
    source_type: str
    source: str | None
    mime_type: str | None
    content_hash: str | None
    source_hash: str | None
    metadata: dict[str, Any]
    status: DocumentStatus
    error: str | None
    attempts: int
    chunk_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
    ready_at: dt.datetime | None


@dataclass(frozen=True)
class NewDocument:
    """What a service hands the store to queue a document for ingestion."""

    collection_id: str
    title: str | None
    source_type: str
    source: str | None
    mime_type: str | None
    content_hash: str | None
    source_hash: str | None
    metadata: dict[str, Any]
    content: bytes
    status: DocumentStatus = "queued"
    error: str | None = None


@dataclass(frozen=True)
class Job:
    """A claimed document: everything a worker needs to process it."""

    document_id: str
    collection_id: str
    title: str | None
    source_type: str
    source: str | None
    mime_type: str | None
    content_hash: str | None
    attempts: int
    lease_owner: str
    content: bytes
    embedding_model: str
    chunk_max_tokens: int | None = None
    """The collection's chunk size (None: the server's default)."""


@dataclass(frozen=True)
class NewJob:
    """A background job to queue: exports, imports, reindexes, syncs (not documents,
    whose row is their own ingestion job).

    ``dedup_key`` coalesces bursts: while a queued job has the same key, submitting
    returns that one instead. ``run_at`` delays the first attempt (a scheduled job);
    ``created_by`` names the actor (a key prefix, or ``local`` for the CLI)."""

    kind: str
    collection_id: str | None
    params: dict[str, Any]
    created_by: str
    max_attempts: int
    dedup_key: str | None = None
    run_at: dt.datetime | None = None


@dataclass(frozen=True)
class JobInfo:
    """A background job as stored: its state, progress, outcome and lease."""

    id: str
    kind: str
    status: JobStatus
    collection_id: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    progress_done: int
    progress_total: int | None
    error: str | None
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    cancel_requested: bool
    dedup_key: str | None
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES

    def rate(self, now: dt.datetime) -> float | None:
        """Units of progress per second since the job first started (until it finished,
        or ``now``); ``None`` before it started or before any progress."""
        if self.started_at is None or self.progress_done <= 0:
            return None
        elapsed = ((self.finished_at or now) - self.started_at).total_seconds()
        return self.progress_done / elapsed if elapsed > 0 else None

    def eta(self, now: dt.datetime) -> float | None:
        """Seconds until a running job should be done at its current rate; ``None``
        when that cannot be told (not running, no total, no progress yet)."""
        rate = self.rate(now)
        if self.status != "running" or self.progress_total is None or not rate:
            return None
        return max(self.progress_total - self.progress_done, 0) / rate


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    token_count: int
    char_start: int
    char_end: int
    text_hash: str
    embedding: Vector


@dataclass(frozen=True)
class StoredChunk:
    id: str
    document_id: str
    collection_id: str
    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    token_count: int
    char_start: int
    char_end: int
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredId:
    """A chunk id with the score one retrieval leg gave it (higher is better)."""

    chunk_id: str
    score: float


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class JobCompletion:
    """A processed job's result: parsed facts about the document and its chunks."""

    document_id: str
    lease_owner: str
    title: str | None
    mime_type: str
    content_hash: str
    chunks: list[NewChunk]


@dataclass(frozen=True)
class NewApiKey:
    """A key to store: its public prefix and the hash of the whole key, never the key."""

    name: str
    prefix: str
    key_hash: str
    scope: Scope
    collection_ids: tuple[str, ...] | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    key_hash: str
    scope: Scope
    collection_ids: tuple[str, ...] | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class ChatSession:
    id: str
    key_id: str | None
    title: str | None
    system_prompt: str | None
    collection_ids: tuple[str, ...] | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class NewChatMessage:
    role: Literal["user", "assistant"]
    content: str
    citations: list[dict[str, Any]]


@dataclass(frozen=True)
class ChatMessage:
    id: str
    session_id: str
    ordinal: int
    role: str
    content: str
    citations: list[dict[str, Any]]
    created_at: dt.datetime


# -- synced sources: collections that ragd keeps in step with a URL list, sitemap,
# published spreadsheet or server folder ---------------------------------------------

SourceType = Literal["urls", "sitemap", "spreadsheet", "folder"]
SOURCE_TYPES: tuple[SourceType, ...] = ("urls", "sitemap", "spreadsheet", "folder")
# never: not synced yet; running: a sync holds the source; ok: every item synced;
# partial: some items failed (the rest synced); failed: the listing itself failed.
SyncStatus = Literal["never", "running", "ok", "partial", "failed"]


@dataclass(frozen=True)
class SyncCounts:
    """What one sync did to the items of its source."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class NewSource:
    """A source to store; ``secret`` is the webhook key, shown to its creator once."""

    collection_id: str
    type: SourceType
    location: str | list[str]
    mapping: dict[str, Any]
    schedule: dict[str, Any] | None
    secret: str = field(repr=False)
    next_sync_at: dt.datetime | None


@dataclass(frozen=True)
class Source:
    id: str
    collection_id: str
    type: SourceType
    location: str | list[str]
    mapping: dict[str, Any]
    schedule: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    last_sync_at: dt.datetime | None
    last_status: SyncStatus
    last_counts: SyncCounts
    last_error: str | None
    next_sync_at: dt.datetime | None
    # Validators of the listing itself (a spreadsheet's ETag), for a conditional fetch.
    fetch_state: dict[str, Any]
    secret: str = field(repr=False)

    @property
    def interval_s(self) -> int | None:
        found = (self.schedule or {}).get("interval_s")
        return int(found) if found is not None else None


@dataclass(frozen=True)
class SourceItem:
    """One synced item: which document holds it and how to tell if it changed."""

    key: str
    document_id: str
    item_hash: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class SourceItemWrite:
    """A new or changed item, parsed, chunked and embedded, ready to swap in."""

    key: str
    title: str | None
    source_type: str
    mime_type: str
    metadata: dict[str, Any]
    content: bytes
    content_hash: str
    item_hash: str
    etag: str | None
    last_modified: str | None
    chunks: list[NewChunk]


@dataclass(frozen=True)
class SyncOutcome:
    """How a sync ended, recorded on its source."""

    status: SyncStatus
    counts: SyncCounts
    error: str | None
    finished_at: dt.datetime
    next_sync_at: dt.datetime | None
    fetch_state: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation, as chat history reaches a generator:
    ``role`` is ``user`` or ``assistant``."""

    role: str
    content: str


# -- export and import: a collection carried whole between deployments ----------------------


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk whole, as an export archive carries it: its public id (``chk_N`` of the
    source database, for remapping citations), text hash and float32 vector bytes.
    ``embedding`` is ``None`` only on import, when the target embeds with another model."""

    id: str
    document_id: str
    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    token_count: int
    char_start: int
    char_end: int
    text_hash: str
    embedding: bytes | None


@dataclass(frozen=True)
class ImportPlan:
    """What an import creates: the collection as it will be named, and whether the
    archive's vectors are kept (same model and dimension as the target's embedder) or its
    documents are queued to be embedded again."""

    name: str
    description: str
    embedding_model: str
    embedding_dim: int
    reuse_embeddings: bool
    with_chats: bool
    signed_by: str | None = None  # the archive's signing key id (audit detail)


@dataclass(frozen=True)
class ImportOutcome:
    """What one import wrote, in the transaction that made it visible."""

    collection: Collection
    documents: int
    chunks: int
    requeued: int
    sources: int
    chat_sessions: int
    chat_messages: int
    document_ids_kept: bool
