"""The Store seam: what ragd keeps, as one small protocol per aggregate.

SQLite (embedded default) and PostgreSQL implement every protocol here; services depend
on :class:`Store` (or, where they need less, on the aggregate protocols they use).

Contracts shared by every method unless its docstring says otherwise:

- A method is one short transaction, or a few in a row (a write, then a read of what it
  wrote); it never leaves a transaction open and never returns a lazy result.
- The store's invariants hold inside it: a chunk is never visible to search before its
  document is ``ready``; a document's chunks are swapped atomically; deleting a document
  or collection removes its chunks and full-text entries in the same transaction.
- Errors are :mod:`ragd.errors`: :class:`~ragd.errors.NotFound` for an unknown id,
  :class:`~ragd.errors.Conflict` for a taken unique name, :class:`~ragd.errors.InvalidInput`
  for a value the caller must change, and on a server database
  :class:`~ragd.errors.Unavailable` (``DatabaseUnavailable``) once transient failures
  (a restart, a failover, a deadlock) kept coming until ``RAGD_DATABASE_RETRY_DEADLINE_S``.
  The exceptions a caller is expected to catch are defined here (:class:`LeaseLost`), so
  no caller imports a concrete store module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from ragd.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditEvent,
    AuditFilters,
    AuditPruned,
)
from ragd.domain import (
    ApiKey,
    ChatMessage,
    ChatSession,
    ChunkRecord,
    Collection,
    Document,
    DocumentStatus,
    Filters,
    ImportOutcome,
    ImportPlan,
    Job,
    JobCompletion,
    JobInfo,
    JobStatus,
    NewApiKey,
    NewChatMessage,
    NewDocument,
    NewJob,
    NewSource,
    Page,
    ScoredId,
    Source,
    SourceItem,
    SourceItemWrite,
    StoredChunk,
    SyncOutcome,
    Vector,
)
from ragd.errors import RagdError

T = TypeVar("T")


class LeaseLost(RagdError):
    """The job's lease expired and another worker owns the document now: the caller's
    result is discarded, not an error of the document."""


class StoreLifecycle(Protocol):
    """Schema, health and shutdown: the calls that must answer at once, never retried."""

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``, for health output and logs."""
        ...

    def migrate(self) -> None:
        """Bring the schema to the newest revision; idempotent, and safe when several
        processes start together (they are serialized, one migrates, the rest find the
        schema current)."""
        ...

    def check(self) -> None:
        """Raise unless the database answers a trivial query now (readiness probe)."""
        ...

    def rebuild_keyword_index(self) -> int:
        """Rebuild the keyword index beside the database from its chunks (PostgreSQL with
        ``RAGD_KEYWORD_INDEX=tantivy``; otherwise ``InvalidInput``); chunks indexed."""
        ...

    def close(self) -> None:
        """Release every pooled connection; the store is not used afterwards."""
        ...


class CollectionStore(Protocol):
    """Collections: named groups of documents with a fixed embedding model."""

    def create_collection(
        self, *, name: str, description: str, embedding_model: str, embedding_dim: int
    ) -> Collection:
        """Create an empty collection. Raises ``Conflict`` when ``name`` is taken. On
        PostgreSQL the vector index for ``embedding_dim`` exists when this returns."""
        ...

    def list_collections(self, *, counts: bool = True) -> list[Collection]:
        """Every collection by name; ``counts=False`` leaves document and chunk counts at
        0 and skips scanning those tables, for callers that need identity only."""
        ...

    def get_collection(self, collection_id: str, *, counts: bool = True) -> Collection:
        """One collection by id (counts as in :meth:`list_collections`); ``NotFound``."""
        ...

    def get_collection_by_name(self, name: str, *, counts: bool = True) -> Collection:
        """One collection by its unique name; ``NotFound``."""
        ...

    def update_collection(
        self, collection_id: str, *, name: str | None, description: str | None
    ) -> Collection:
        """Change the given fields (``None`` keeps one). ``NotFound`` for an unknown id,
        ``Conflict`` when the new name is taken; nothing changes on either."""
        ...

    def delete_collection(self, collection_id: str) -> None:
        """Delete the collection with its documents, chunks, vectors and full-text
        entries in one transaction, cancelling its unfinished background jobs (queued
        ones at once, running ones by request; their rows stay); ``NotFound``."""
        ...


class DocumentStore(Protocol):
    """Documents and their chunks, as read by the API (the job queue writes chunks)."""

    def add_document(self, new: NewDocument) -> tuple[Document, bool]:
        """Queue ``new`` unless a live (not failed) document of the collection has the
        same content or source hash: then that one is returned and nothing is written.

        Returns the document and whether it was created. The duplicate check and the
        insert are atomic, so identical uploads racing each other create one document.
        ``NotFound`` when the collection does not exist.
        """
        ...

    def get_document(self, document_id: str) -> Document:
        """One document in any status; ``NotFound``."""
        ...

    def get_documents(self, document_ids: Sequence[str]) -> list[Document]:
        """The documents that exist among ``document_ids`` (unknown ids are skipped,
        order is not kept)."""
        ...

    def list_documents(
        self,
        collection_id: str,
        *,
        status: DocumentStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Document]:
        """One page of the collection's documents, newest first, optionally of one
        status; ``next_cursor`` continues after the last one and is ``None`` on the last
        page. ``NotFound`` for an unknown collection, ``InvalidInput`` for a cursor this
        method did not hand out."""
        ...

    def delete_document(self, document_id: str) -> None:
        """Delete the document with its chunks, vectors and full-text entries in one
        transaction; ``NotFound``."""
        ...

    def list_chunks(self, document_id: str) -> list[StoredChunk]:
        """The document's chunks in order, in any status; ``NotFound``."""
        ...

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Chunks by public id, of ``ready`` documents only; ids that are unknown, not
        ours or of a document not ready are left out (search hits may be stale)."""
        ...

    def status_counts(self) -> dict[str, int]:
        """Documents per status over every collection (statuses with none are absent)."""
        ...

    def status_counts_by_collection(self) -> dict[str, dict[str, int]]:
        """Documents per status of each collection that has any, in one grouped read:
        ``{collection_id: {status: count}}`` (for the ingestion overview)."""
        ...

    def oldest_queued_at(self) -> dt.datetime | None:
        """Since when the longest-waiting *due* queued document has waited (its creation,
        or the end of its retry backoff); ``None`` when none waits. For the queue-age
        metric and its alert."""
        ...


class JobQueue(Protocol):
    """The document row as a durable job: claim with a lease, finish, fail, release.

    Every finishing call checks the lease owner, so a worker that lost its lease cannot
    overwrite the work of the one that took over."""

    def claim_jobs(self, *, owner: str, limit: int, lease_s: float) -> list[Job]:
        """Lease up to ``limit`` due documents to ``owner`` for ``lease_s`` seconds and
        charge each an attempt, oldest first. Due: queued and past any retry time, or
        processing with an expired lease (a crashed worker's). Concurrent claimers never
        get the same document."""
        ...

    def extend_leases(self, *, owner: str, document_ids: Sequence[str], lease_s: float) -> None:
        """Push the leases ``owner`` still holds ``lease_s`` seconds ahead; documents it
        no longer holds are left alone, silently."""
        ...

    def complete_job(self, completion: JobCompletion) -> Document:
        """:meth:`complete_jobs` for one document; ``LeaseLost`` where that returns
        ``None``."""
        ...

    def complete_jobs(self, completions: Sequence[JobCompletion]) -> list[Document | None]:
        """Finish leased documents in one write transaction, in order: swap in each one's
        chunks and mark it ``ready``; ``None`` where the lease was lost (nothing of it is
        written, the rest commits).

        A document whose text duplicates another live one of its collection, including
        an earlier one of the same batch, ends ``failed`` with the original named in its
        error. Any other error rolls the whole batch back, so the caller can retry the
        documents one by one to isolate the bad one.
        """
        ...

    def fail_job(
        self, *, document_id: str, owner: str, error: str, retry_at: dt.datetime | None
    ) -> None:
        """End ``owner``'s lease with ``error`` (cut to 2,000 characters): queued again
        from ``retry_at``, or ``failed`` when it is ``None``. A no-op when ``owner`` no
        longer holds the document."""
        ...

    def release_jobs(self, *, owner: str) -> int:
        """Hand back ``owner``'s unfinished jobs on shutdown, refunding their attempt;
        returns how many."""
        ...

    def release_orphaned_jobs(self, *, host: str, is_alive: Callable[[int], bool]) -> int:
        """Requeue jobs leased by workers on ``host`` (owners ``host:pid:nonce``) whose
        pid ``is_alive`` denies, without waiting for the lease; the attempt stays charged,
        so a document that kills its worker every time still ends ``failed``."""
        ...


class JobStore(Protocol):
    """Background jobs (exports, imports, reindexes, syncs): one table, claimed with a
    lease by any worker on any machine, as documents are (documents keep their own
    queue, :class:`JobQueue`).

    A claim charges an attempt; progress extends the lease; every call that ends a job
    checks the lease, so a worker that lost its lease cannot overwrite the outcome of
    the one that took over. Every change of a job's state appends its audit event
    ``f"{kind}.{step}"`` (:data:`ragd.audit.JOB_STEPS`) in its own transaction."""

    def submit_job(self, new: NewJob) -> JobInfo:
        """Queue ``new`` (due at ``new.run_at`` or now). When ``new.dedup_key`` names a
        job that is still queued, that job is returned and nothing is written: racing
        submissions of one key make one job."""
        ...

    def get_job(self, job_id: str) -> JobInfo:
        """One job in any status; ``NotFound``."""
        ...

    def list_jobs(
        self,
        *,
        kind: str | None = None,
        status: JobStatus | None = None,
        collection_ids: Sequence[str] | None = None,
        include_unscoped: bool = True,
        limit: int,
        cursor: str | None = None,
    ) -> Page[JobInfo]:
        """One page of jobs, newest first. ``collection_ids`` None: jobs of any
        collection, else only of these; ``include_unscoped``: also the jobs without a
        collection. ``InvalidInput`` for a cursor this method did not hand out."""
        ...

    def claim_background_job(
        self, *, owner: str, kinds: Sequence[str], lease_s: float
    ) -> JobInfo | None:
        """Lease the longest-due job of one of ``kinds`` to ``owner`` for ``lease_s``
        seconds and charge it an attempt; ``None`` when none is due. Due: queued and past
        ``next_attempt_at``, or running under an expired lease. Before claiming, jobs
        whose lease expired end ``cancelled`` if that was asked, or ``failed`` when out
        of attempts. Concurrent claimers never get the same job."""
        ...

    def update_job_progress(
        self, job_id: str, *, owner: str, done: int, total: int | None, lease_s: float
    ) -> bool:
        """Record progress (``total`` None keeps the known one) and push the lease
        ``lease_s`` ahead; returns whether a cancel was asked. ``LeaseLost`` unless
        ``owner`` holds the running job."""
        ...

    def finish_job(self, job_id: str, *, owner: str, result: Mapping[str, Any]) -> JobInfo:
        """End the job ``succeeded`` with ``result`` (JSON); ``LeaseLost`` unless
        ``owner`` holds it."""
        ...

    def finish_cancelled_job(self, job_id: str, *, owner: str) -> JobInfo:
        """End the job ``cancelled`` (its handler stopped on request and left nothing
        half-done); ``LeaseLost`` unless ``owner`` holds it."""
        ...

    def fail_background_job(
        self,
        job_id: str,
        *,
        owner: str,
        error: str,
        retry_at: dt.datetime | None,
        error_type: str | None = None,
    ) -> None:
        """End ``owner``'s lease with ``error`` (cut to 2,000 characters): queued again
        from ``retry_at``, or ``failed`` when it is ``None``. A no-op when ``owner`` no
        longer holds the job. ``error_type`` (the exception's class name) is what the
        audit event records: the message may quote what the job read."""
        ...

    def cancel_job(self, job_id: str) -> JobInfo:
        """Cancel: a queued job ends ``cancelled`` at once; a running one is marked
        ``cancel_requested`` for its handler to stop at its next progress report; a
        finished one is left as it is. Returns the job; ``NotFound``."""
        ...

    def release_background_jobs(self, *, owner: str) -> int:
        """Hand back ``owner``'s running jobs on a graceful stop (queued again, the
        attempt refunded; cancelled if that was asked); returns how many."""
        ...

    def release_orphaned_background_jobs(
        self, *, host: str, is_alive: Callable[[int], bool]
    ) -> int:
        """As :meth:`JobQueue.release_orphaned_jobs`, for background jobs: requeue the
        running jobs of dead processes on ``host`` without waiting for their leases
        (the attempt stays charged)."""
        ...

    def active_job_counts(self) -> dict[tuple[str, str], int]:
        """Queued and running jobs by ``(kind, status)``, for the metrics scrape."""
        ...


class ReindexStore(Protocol):
    """Re-chunking and re-embedding a collection as a *generation* of chunks built beside
    its live ones, invisible to every search path, then switched in at once.

    A generation has an id of its own (never a collection's); the methods that write
    one check the reindex job's lease (``LeaseLost``), so only the job's current worker
    builds or switches it."""

    def reindex_pending(self, collection_id: str, *, generation: str, limit: int) -> list[Job]:
        """Up to ``limit`` of the collection's ``ready`` documents that have no chunks in
        ``generation`` yet, oldest first, with their stored content (not leased: the
        records carry an empty ``lease_owner``)."""
        ...

    def reindex_progress(self, collection_id: str, *, generation: str) -> tuple[int, int]:
        """``(done, total)``: the collection's ready documents with chunks in
        ``generation``, and all of its ready documents."""
        ...

    def add_generation_chunks(
        self, generation: str, completions: Sequence[JobCompletion], *, job_id: str, owner: str
    ) -> int:
        """Store each completion's chunks in ``generation`` (replacing the document's
        earlier ones there), in one transaction, while ``owner`` holds ``job_id``;
        documents no longer ``ready`` (deleted, requeued) are skipped. Returns how many
        documents were stored. ``LeaseLost`` otherwise, and nothing is written."""
        ...

    def switch_generation(
        self,
        collection_id: str,
        *,
        generation: str,
        job_id: str,
        owner: str,
        embedding_model: str,
        embedding_dim: int,
        chunk_max_tokens: int | None,
    ) -> int:
        """In one transaction, while ``owner`` holds ``job_id``: unless some ready
        document of the collection still lacks chunks in ``generation`` (then their
        number is returned and nothing changes), replace the collection's chunks with
        the generation's, record the model, dimension and chunk size, and return 0.
        Searches see the old chunks or the new ones, never a mix. On PostgreSQL the
        vector index of ``embedding_dim`` exists first. ``NotFound`` for a collection
        deleted meanwhile; ``LeaseLost``."""
        ...

    def drop_generation(self, generation: str) -> int:
        """Delete every chunk of ``generation`` (a cancelled or failed reindex); how
        many."""
        ...


class KeyStore(Protocol):
    """API key rows: the public prefix and the hash of the key, never the key."""

    def add_key(self, new: NewApiKey) -> ApiKey:
        """Store a new key; ``Conflict`` when its prefix exists."""
        ...

    def upsert_key(self, new: NewApiKey) -> ApiKey:
        """Insert ``new`` or bring the key with its prefix up to date (the bootstrap key).

        A changed hash means a new secret, so that key is active again; an unchanged one
        keeps its revocation, so revoking a bootstrap key survives a restart."""
        ...

    def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    def get_key(self, key_id: str) -> ApiKey:
        """One key by id; ``NotFound``."""
        ...

    def find_key(self, prefix: str) -> ApiKey | None:
        """The key with this prefix, revoked or not, or ``None`` (authentication)."""
        ...

    def revoke_key(self, key_id: str) -> ApiKey:
        """Mark the key revoked; revoking again keeps the first time. ``NotFound``."""
        ...

    def touch_key(self, key_id: str, when: dt.datetime, *, unless_since: dt.datetime) -> None:
        """Record a use at ``when`` unless one was recorded at or after ``unless_since``;
        the condition is in the UPDATE, so many processes still write rarely. Unknown ids
        are ignored."""
        ...

    def has_active_keys(self) -> bool:
        """Whether any key is not revoked (whether authentication is on)."""
        ...


class ChatStore(Protocol):
    """Chat sessions and their messages, owned by an API key (or by nobody)."""

    def add_chat_session(
        self,
        *,
        key_id: str | None,
        title: str | None,
        system_prompt: str | None,
        collection_ids: Sequence[str] | None,
    ) -> ChatSession:
        """Create an empty session owned by ``key_id``."""
        ...

    def get_chat_session(self, session_id: str) -> ChatSession:
        """One session by id, whoever owns it (callers check ownership); ``NotFound``."""
        ...

    def list_chat_sessions(self, key_id: str | None, *, limit: int) -> list[ChatSession]:
        """Up to ``limit`` of the owner's sessions, most recently active first
        (``key_id=None``: the sessions without an owner)."""
        ...

    def delete_chat_session(self, session_id: str) -> None:
        """Delete the session and its messages in one transaction; ``NotFound``."""
        ...

    def add_chat_messages(
        self, session_id: str, messages: Sequence[NewChatMessage]
    ) -> list[ChatMessage]:
        """Append ``messages`` in order in one transaction, numbered on from the last
        ordinal, and mark the session active now. ``NotFound``."""
        ...

    def list_chat_messages(
        self, session_id: str, *, limit: int, after: int | None = None
    ) -> Page[ChatMessage]:
        """Up to ``limit`` messages after ordinal ``after``, oldest first;
        ``next_cursor`` is the last ordinal when more follow. An unknown session has no
        messages (no error: the caller checked the session)."""
        ...


class SearchLegs(Protocol):
    """The two retrieval legs, over chunks of ``ready`` documents only: the part of
    search each database writes in its own SQL."""

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        """The best ``limit`` chunks by BM25 over title, headings and body (any term
        matches), best first, under metadata equality ``filters``. User text is never
        query syntax. No terms or no collections: no hits."""
        ...

    def vector_search(
        self,
        vector: Vector,
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]:
        """The ``limit`` chunks nearest ``vector`` by cosine, best first, under metadata
        equality ``filters``; exact on SQLite and on small scopes, by index otherwise."""
        ...


class SearchIndex(SearchLegs, Protocol):
    """The retrieval legs and the stored vectors (for relevance feedback)."""

    def get_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Vector]:
        """Stored vectors by public chunk id; unknown ids are skipped."""
        ...


@runtime_checkable
class SnapshotSearch(Protocol):
    """A store that can run several legs of one search in one read transaction (the
    embedded SQLite store): a hybrid search then opens one transaction instead of four,
    and its legs and feedback vectors all see the same state of the collections."""

    def search_snapshot(self, work: Callable[[SearchIndex], T]) -> T:
        """``work`` given search legs that all read one snapshot; it must only search
        (it may run again, and must not keep the legs after it returns)."""
        ...


class EmbeddingCache(Protocol):
    """Vectors by (model, text hash), so re-ingesting known text skips the embedder."""

    def cached_embeddings(self, model: str, text_hashes: Iterable[str]) -> dict[str, Vector]:
        """The cached vectors among ``text_hashes`` for ``model`` (misses are absent)."""
        ...

    def cache_embeddings(self, model: str, vectors: dict[str, Vector]) -> None:
        """Remember ``vectors`` by text hash; hashes already cached keep their vector."""
        ...


class ExportSink(Protocol):
    """Receives one collection from :meth:`TransferStore.export_collection`, in this
    order: ``start``, documents, sources, chunks, then chat sessions and messages."""

    def start(self, collection: Collection) -> None:
        """The collection (with counts); called first, and again when a transient failure
        restarts the read: then everything received before is to be discarded."""
        ...

    def documents(self, batch: Sequence[Document]) -> None: ...

    def source(self, document_id: str, content: bytes) -> None:
        """One document's kept source (uploaded bytes or submitted text)."""
        ...

    def chunks(self, batch: Sequence[ChunkRecord]) -> None: ...

    def chat_sessions(self, batch: Sequence[ChatSession]) -> None: ...

    def chat_messages(self, batch: Sequence[ChatMessage]) -> None: ...


class ImportSource(Protocol):
    """An archive's content, readable from the start any number of times (a retried
    import transaction reads it again)."""

    def documents(self) -> Iterator[Sequence[Document]]: ...

    def source(self, document_id: str) -> bytes | None:
        """The document's source, or ``None`` when the archive has none for it."""
        ...

    def chunks(self) -> Iterator[Sequence[ChunkRecord]]: ...

    def chat_sessions(self) -> Iterator[Sequence[ChatSession]]: ...

    def chat_messages(self) -> Iterator[Sequence[ChatMessage]]: ...


class TransferStore(Protocol):
    """A whole collection out of the database and into another one (``ragd export`` and
    ``ragd import``)."""

    def export_collection(
        self, collection_id: str, sink: ExportSink, *, with_chats: bool, batch_size: int
    ) -> None:
        """Hand the collection to ``sink`` from one consistent snapshot (one read
        transaction), ``batch_size`` rows at a time so that memory stays bounded; chat
        sessions are those whose collection list names it. ``NotFound``."""
        ...

    def import_collection(self, plan: ImportPlan, source: ImportSource) -> ImportOutcome:
        """Create the collection ``plan`` names with everything in ``source``, in one
        write transaction: nothing of it is visible before it commits and nothing is left
        when it fails. ``Conflict`` when the name is taken; ``InvalidInput`` when the
        content is inconsistent (a chunk of an unknown document, a vector of the wrong
        size). Document ids are kept unless one already exists in this database (an
        archive imported twice): then every document gets a new id. Chunks and chat
        sessions always get new ids, and citations follow them."""


class SourceStore(Protocol):
    """Synced sources, the documents that hold their items, and webhook deliveries.

    Item writes and deletions take the source's sync lease (``begin_source_sync``) as
    proof of ownership, as job completions take a document's lease: a sync that lost
    it gets ``LeaseLost`` and writes nothing."""

    def add_source(self, new: NewSource) -> Source:
        """Store a new source; ``NotFound`` when its collection does not exist."""
        ...

    def get_source(self, source_id: str) -> Source:
        """One source, with its secret and last sync; ``NotFound``."""
        ...

    def list_sources(self, collection_id: str) -> list[Source]:
        """The collection's sources, oldest first; ``NotFound`` for an unknown collection."""
        ...

    def delete_source(self, source_id: str) -> int:
        """Delete the source with the documents of its items (chunks, vectors, full-text
        entries) in one transaction; returns how many documents went. ``NotFound``."""
        ...

    def set_source_secret(self, source_id: str, secret: str) -> Source:
        """Replace the webhook secret (the old one stops working at once); ``NotFound``."""
        ...

    def list_source_items(self, source_id: str) -> dict[str, SourceItem]:
        """The source's items by key (none for an unknown source)."""
        ...

    def put_source_item(self, source_id: str, *, owner: str, item: SourceItemWrite) -> str:
        """Add ``item`` as a new ready document, or replace the document that holds its
        key: its row, source bytes and chunks change in one transaction, so a search
        sees the old version or the new one, never both. Returns the document id.
        ``LeaseLost`` unless ``owner`` holds the source's sync; ``NotFound``."""
        ...

    def touch_source_item(
        self, source_id: str, key: str, *, etag: str | None, last_modified: str | None
    ) -> None:
        """Record new validators of an unchanged item; unknown keys are ignored."""
        ...

    def delete_source_items(self, source_id: str, *, owner: str, keys: Sequence[str]) -> int:
        """Delete the documents holding ``keys`` (chunks included) in one transaction;
        returns how many. ``LeaseLost`` unless ``owner`` holds the sync."""
        ...

    def begin_source_sync(self, source_id: str, *, owner: str, lease_s: float) -> Source | None:
        """Take the source's sync lease for ``lease_s`` seconds and mark it running. When
        another live sync holds it: ``None``, and that sync will schedule one more run
        when it ends (so the trigger is not lost). ``NotFound``."""
        ...

    def extend_source_sync(self, source_id: str, *, owner: str, lease_s: float) -> bool:
        """Push ``owner``'s lease ahead; False when ``owner`` no longer holds it."""
        ...

    def finish_source_sync(self, source_id: str, *, owner: str, outcome: SyncOutcome) -> Source:
        """Record ``outcome`` and release the lease. When a trigger came meanwhile the next
        run is due at once, else at ``outcome.next_sync_at``. A no-op for an owner that
        lost the lease. ``NotFound``."""
        ...

    def claim_due_sources(self, *, limit: int) -> list[Source]:
        """Up to ``limit`` sources whose ``next_sync_at`` has come, each moved on by its
        interval (or cleared, without one) in the same transaction: concurrent
        schedulers never claim the same due run."""
        ...

    def remember_webhook(self, source_id: str, signature: str, expires_at: dt.datetime) -> bool:
        """Record a delivery's signature until ``expires_at``; False when it was already
        recorded (a replay). Forgets expired deliveries of every source."""


class AuditReader(Protocol):
    """The audit chain as one consistent snapshot sees it (see :meth:`AuditStore.read_audit`)."""

    def head(self) -> tuple[int, str]:
        """The recorded chain head: the last appended ``(seq, hash)``; ``(0, genesis)``
        before the first event."""
        ...

    def events(self) -> Iterator[AuditEvent]:
        """Every stored event by seq, read in pages (bounded memory)."""
        ...

    def checkpoints(self) -> Iterator[AuditCheckpoint]:
        """Every checkpoint by seq, read in pages."""
        ...


class AuditStore(Protocol):
    """The audit log: hash-chained events appended by every change, signed checkpoints.

    Every method of the other protocols that changes state appends its event(s) in its
    own write transaction (the event commits or rolls back with the change), stamped
    with the :data:`ragd.audit.AUDIT_CONTEXT` of the caller."""

    def record_audit(self, entries: Sequence[AuditEntry]) -> int:
        """Append ``entries`` in a transaction of their own (an event with no state
        change of the store's, such as a failed authentication); the last seq."""
        ...

    def checkpoint_audit(self) -> AuditCheckpoint | None:
        """Sign the chain head now unless it is signed already (shutdown); the new
        checkpoint, or None (nothing new, or a store opened without a signing key)."""
        ...

    def list_audit_events(
        self, filters: AuditFilters, *, limit: int, cursor: str | None
    ) -> Page[AuditEvent]:
        """One page of matching events, newest first; ``next_cursor`` continues.
        ``InvalidInput`` for a cursor this method did not hand out."""
        ...

    def read_audit(self, work: Callable[[AuditReader], T]) -> T:
        """``work`` over one consistent snapshot of the chain (a read transaction; it
        may run again on a transient failure, so it must only read)."""
        ...

    def prune_audit(self, before: dt.datetime) -> AuditPruned:
        """Delete the events up to the newest checkpoint signed at or before ``before``
        and the older checkpoints, keeping that one as the anchor of what remains, and
        append an ``audit.prune`` event naming it; one transaction. Nothing is deleted
        when no checkpoint is that old."""
        ...


class Store(
    StoreLifecycle,
    CollectionStore,
    DocumentStore,
    JobQueue,
    JobStore,
    ReindexStore,
    KeyStore,
    ChatStore,
    SearchIndex,
    EmbeddingCache,
    TransferStore,
    AuditStore,
    SourceStore,
    Protocol,
):
    """Everything ragd keeps: what services and the worker are given."""


__all__ = [
    "AuditReader",
    "AuditStore",
    "ChatStore",
    "CollectionStore",
    "DocumentStore",
    "EmbeddingCache",
    "ExportSink",
    "ImportSource",
    "JobQueue",
    "JobStore",
    "KeyStore",
    "LeaseLost",
    "ReindexStore",
    "SearchIndex",
    "SearchLegs",
    "SnapshotSearch",
    "SourceStore",
    "Store",
    "StoreLifecycle",
    "TransferStore",
]
