"""The Store seam: everything ragd keeps, behind one protocol.

SQLite (embedded default) and PostgreSQL implement it; services depend only on this.
Every method is a short transaction of its own; invariants (a chunk never visible before
its document is ready, atomic chunk swaps, cascading deletes) hold inside the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ragd.store.records import (
    Collection,
    Document,
    DocumentStatus,
    Filters,
    Job,
    JobCompletion,
    NewDocument,
    Page,
    ScoredId,
    StoredChunk,
    Vector,
)


class Store(Protocol):
    dialect: str

    def migrate(self) -> None: ...
    def check(self) -> None: ...
    def close(self) -> None: ...

    def create_collection(
        self, *, name: str, description: str, embedding_model: str, embedding_dim: int
    ) -> Collection: ...
    def list_collections(self) -> list[Collection]: ...
    def get_collection(self, collection_id: str) -> Collection: ...
    def get_collection_by_name(self, name: str) -> Collection: ...
    def update_collection(
        self, collection_id: str, *, name: str | None, description: str | None
    ) -> Collection: ...
    def delete_collection(self, collection_id: str) -> None: ...

    def add_document(self, new: NewDocument) -> tuple[Document, bool]: ...
    def get_document(self, document_id: str) -> Document: ...
    def get_documents(self, document_ids: Sequence[str]) -> list[Document]: ...
    def list_documents(
        self,
        collection_id: str,
        *,
        status: DocumentStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Document]: ...
    def delete_document(self, document_id: str) -> None: ...
    def list_chunks(self, document_id: str) -> list[StoredChunk]: ...
    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]: ...
    def status_counts(self) -> dict[str, int]: ...

    def claim_jobs(self, *, owner: str, limit: int, lease_s: float) -> list[Job]: ...
    def extend_leases(self, *, owner: str, document_ids: Sequence[str], lease_s: float) -> None: ...
    def complete_job(self, completion: JobCompletion) -> Document: ...
    def fail_job(
        self, *, document_id: str, owner: str, error: str, retry_at: dt.datetime | None
    ) -> None: ...
    def release_jobs(self, *, owner: str) -> int: ...
    def release_orphaned_jobs(self, *, host: str, is_alive: Callable[[int], bool]) -> int: ...

    def cached_embeddings(self, model: str, text_hashes: Iterable[str]) -> dict[str, Vector]: ...
    def cache_embeddings(self, model: str, vectors: dict[str, Vector]) -> None: ...

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]: ...
    def vector_search(
        self,
        vector: Vector,
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        limit: int,
    ) -> list[ScoredId]: ...
