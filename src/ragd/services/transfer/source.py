"""A verified, unpacked archive as the store's :class:`~ragd.store.base.ImportSource`.

Every read starts from the files again, so a retried import transaction sees the same
rows; nothing is held beyond one row group.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from ragd.domain import ChatMessage, ChatSession, ChunkRecord, Document
from ragd.errors import InvalidInput
from ragd.services.transfer import tables
from ragd.services.transfer.archive import Unpacked
from ragd.services.transfer.manifest import (
    CHAT_MESSAGES,
    CHAT_SESSIONS,
    CHUNKS,
    DOCUMENT_ID,
    DOCUMENTS,
    SOURCES_DIR,
)

_MAX_SOURCE_BYTES = 2 * 1024 * 1024 * 1024


class ArchiveSource:
    """Records from an unpacked archive's tables; vectors only when ``with_vectors``."""

    def __init__(self, unpacked: Unpacked, *, with_vectors: bool) -> None:
        self.root = unpacked.root
        self.manifest = unpacked.manifest
        self.dim = unpacked.manifest.embedding_dim
        self.with_vectors = with_vectors
        self.has_chats = (
            CHAT_SESSIONS in self.manifest.members and CHAT_MESSAGES in self.manifest.members
        )

    def check_counts(self) -> None:
        """The tables hold as many rows as the manifest counts (read from the Parquet
        footers, no rows loaded)."""
        counts = self.manifest.counts
        expected = [
            (DOCUMENTS, tables.DOCUMENTS_SCHEMA, "documents"),
            (CHUNKS, tables.chunks_schema(self.dim), "chunks"),
        ]
        if self.has_chats:
            expected += [
                (CHAT_SESSIONS, tables.CHAT_SESSIONS_SCHEMA, "chat_sessions"),
                (CHAT_MESSAGES, tables.CHAT_MESSAGES_SCHEMA, "chat_messages"),
            ]
        for name, schema, key in expected:
            table = tables.open_table(self.root / name, schema, key)
            if table.metadata.num_rows != counts.get(key, -1):
                raise InvalidInput(
                    f"the archive's {name} does not hold the rows its manifest counts"
                )
        sources = sum(1 for name in self.manifest.members if name.startswith(SOURCES_DIR))
        if sources != counts.get("sources", -1):
            raise InvalidInput("the archive does not hold the sources its manifest counts")

    def documents(self) -> Iterator[Sequence[Document]]:
        for batch in self._batches(DOCUMENTS, tables.DOCUMENTS_SCHEMA):
            yield tables.documents_from(batch)

    def source(self, document_id: str) -> bytes | None:
        if not DOCUMENT_ID.match(document_id):
            return None
        path = self.root / SOURCES_DIR / document_id
        if SOURCES_DIR + document_id not in self.manifest.members or not path.is_file():
            return None
        if path.stat().st_size > _MAX_SOURCE_BYTES:
            raise InvalidInput(f"the archive's source of {document_id} is too large")
        return path.read_bytes()

    def chunks(self) -> Iterator[Sequence[ChunkRecord]]:
        for batch in self._batches(CHUNKS, tables.chunks_schema(self.dim)):
            yield tables.chunks_from(batch, self.dim, with_vectors=self.with_vectors)

    def chat_sessions(self) -> Iterator[Sequence[ChatSession]]:
        if self.has_chats:
            for batch in self._batches(CHAT_SESSIONS, tables.CHAT_SESSIONS_SCHEMA):
                yield tables.sessions_from(batch)

    def chat_messages(self) -> Iterator[Sequence[ChatMessage]]:
        if self.has_chats:
            for batch in self._batches(CHAT_MESSAGES, tables.CHAT_MESSAGES_SCHEMA):
                yield tables.messages_from(batch)

    def _batches(self, name: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        yield from tables.batches(tables.open_table(self.root / name, schema, name), name)
