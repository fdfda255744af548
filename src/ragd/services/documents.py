"""Documents: accept text, files and URLs into a collection's ingestion queue.

Everything that can be judged at submission is judged here, so the caller gets a clear
4xx at once: size, type, encoding, emptiness, metadata shape, unsafe URLs. Parsing a
file and fetching a URL are left to the worker, which bounds their time and output:
one small file can stand for minutes of parser work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from ragd.auth import Allowed
from ragd.config import Settings
from ragd.domain import DOCUMENT_STATUSES, Document, DocumentStatus, NewDocument, Page, StoredChunk
from ragd.errors import EmptyDocument, InvalidInput, NotFound, PayloadTooLarge
from ragd.ingest.fetch import check_url, resolve_public_addresses
from ragd.ingest.parsers import detect_mime_type, parse_limits, precheck
from ragd.ingest.parsers.base import MARKDOWN
from ragd.limits import CEILINGS, Limits
from ragd.services.batch import (
    ITEM_ERRORS,
    BatchEntry,
    BatchOutcome,
    FileEntry,
    RejectedEntry,
    TextEntry,
)
from ragd.services.collections import CollectionService
from ragd.services.values import check_scalar, utf8
from ragd.store.base import Store

_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def validate_metadata(metadata: Any, max_bytes: int = CEILINGS.metadata_bytes) -> dict[str, Any]:
    """Flat JSON objects of scalars only: that is what filters can match on."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object")
    for key, value in metadata.items():
        if not _METADATA_KEY.match(key):
            raise InvalidInput(
                f"metadata key {key[:64]!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"metadata value of {key!r} must be a string, number or boolean")
        check_scalar(f"metadata value of {key!r}", value)
    if len(json.dumps(metadata).encode()) > max_bytes:
        raise InvalidInput(f"metadata must be at most {max_bytes} bytes as JSON")
    return dict(metadata)


def parse_metadata_field(
    raw: str | None, max_bytes: int = CEILINGS.metadata_bytes
) -> dict[str, Any]:
    """The multipart ``metadata`` field: a JSON object sent as a string."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise InvalidInput("metadata must be a JSON object encoded as a string") from None
    return validate_metadata(value, max_bytes)


def clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    title = " ".join(title.split())
    if len(title) > CEILINGS.document_title_chars:
        raise InvalidInput(f"title must be at most {CEILINGS.document_title_chars} characters")
    return title or None


def safe_filename(filename: str | None) -> str | None:
    """The last path component, without control characters: uploads name things, they
    never choose where anything is written."""
    if not filename:
        return None
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in {"", ".", ".."}:
        return None
    return name[:255]


class DocumentService:
    """Documents in collections. ``allowed`` is the caller's collection limit (None: all);
    a document in any other collection is reported missing, as if it did not exist."""

    def __init__(
        self,
        store: Store,
        collections: CollectionService,
        settings: Settings,
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.collections = collections
        self.settings = settings
        self.limits = limits or settings.limits()

    def add_text(
        self,
        collection_ref: str,
        text: str,
        *,
        title: str | None = None,
        metadata: Any = None,
        allowed: Allowed = None,
    ) -> tuple[Document, bool]:
        """Queue ``text`` (Markdown or plain) as it was sent. Like an upload's bytes it is
        parsed by the worker, under the parse bounds (time, memory, characters, chunks):
        normalizing and splitting a few megabytes of pathological Markdown is as much
        work as parsing a file. Duplicates are found by the raw text now and by the
        normalized text once the worker has it."""
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        raw = utf8(text, "text")
        if len(raw) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"text is larger than {self.settings.max_upload_mb:g} MB")
        if not text.strip():
            raise EmptyDocument("document contains no text")
        return self.store.add_document(
            NewDocument(
                collection_id=collection.id,
                title=clean_title(title),
                source_type="text",
                source=None,
                mime_type=MARKDOWN,
                content_hash=None,
                source_hash=hashlib.sha256(b"text:" + raw).hexdigest(),
                metadata=validate_metadata(metadata, self.limits.metadata_bytes),
                content=raw,
            )
        )

    def add_file(
        self,
        collection_ref: str,
        data: bytes,
        *,
        filename: str | None,
        declared_type: str | None = None,
        title: str | None = None,
        metadata: Any = None,
        allowed: Allowed = None,
    ) -> tuple[Document, bool]:
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        if not data:
            raise EmptyDocument("file is empty")
        if len(data) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"file is larger than {self.settings.max_upload_mb:g} MB")
        name = safe_filename(filename)
        # The whole file: a ZIP container is told apart (and its bounds checked) by its
        # central directory at the end, an encrypted Office file by its streams.
        zip_limits = parse_limits(self.settings).zip
        mime = detect_mime_type(data, name, declared_type, zip_limits=zip_limits)
        # Parsing is the worker's job, in a bounded child process; only the raw bytes
        # are compared here, the normalized text at completion.
        precheck(data, mime)
        return self.store.add_document(
            NewDocument(
                collection_id=collection.id,
                title=clean_title(title),
                source_type="upload",
                source=name,
                mime_type=mime,
                content_hash=None,
                source_hash=hashlib.sha256(data).hexdigest(),
                metadata=validate_metadata(metadata, self.limits.metadata_bytes),
                content=data,
            )
        )

    def add_url(
        self,
        collection_ref: str,
        url: str,
        *,
        title: str | None = None,
        metadata: Any = None,
        allowed: Allowed = None,
    ) -> tuple[Document, bool]:
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        url = check_url(
            url.strip(),
            allow_private=self.settings.allow_private_urls,
            max_length=self.limits.url_chars,
        )
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        resolve_public_addresses(
            parts.hostname or "", port, allow_private=self.settings.allow_private_urls
        )
        return self.store.add_document(
            NewDocument(
                collection_id=collection.id,
                title=clean_title(title),
                source_type="url",
                source=url,
                mime_type=None,
                content_hash=None,
                source_hash=hashlib.sha256(f"url:{url}".encode()).hexdigest(),
                metadata=validate_metadata(metadata, self.limits.metadata_bytes),
                content=url.encode("utf-8"),
            )
        )

    def check_batch_size(self, count: int) -> None:
        """Refuse a batch of ``count`` items before any is read: empty, or more than
        ``RAGD_MAX_BATCH_DOCUMENTS``."""
        if count < 1:
            raise InvalidInput("the batch has no documents")
        if count > self.limits.batch_documents:
            raise PayloadTooLarge(
                f"the batch has {count} documents; at most {self.limits.batch_documents} "
                "are accepted in one request"
            )

    def add_batch(
        self, collection_ref: str, entries: Iterable[BatchEntry], *, allowed: Allowed = None
    ) -> list[BatchOutcome]:
        """Add each entry as its single upload would be added (same checks, dedup and
        queueing), one transaction per document, answering an outcome per entry in
        order. An item's own problem rejects that item alone; the collection is
        checked once, first, so a batch for a missing collection writes nothing."""
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        outcomes: list[BatchOutcome] = []
        for entry in entries:
            try:
                document, created = self._add_entry(collection.id, entry)
            except ITEM_ERRORS as exc:
                outcomes.append(BatchOutcome(None, False, exc))
            else:
                outcomes.append(BatchOutcome(document, created))
        return outcomes

    def _add_entry(self, collection_id: str, entry: BatchEntry) -> tuple[Document, bool]:
        if isinstance(entry, RejectedEntry):
            raise entry.error
        if isinstance(entry, FileEntry):
            if entry.size > self.settings.max_upload_bytes:  # refused before it is read
                raise PayloadTooLarge(f"file is larger than {self.settings.max_upload_mb:g} MB")
            return self.add_file(
                collection_id,
                entry.read(),
                filename=entry.filename,
                declared_type=entry.content_type,
                metadata=entry.metadata,
            )
        if isinstance(entry, TextEntry):
            return self.add_text(
                collection_id, entry.text, title=entry.title, metadata=entry.metadata
            )
        return self.add_url(collection_id, entry.url, title=entry.title, metadata=entry.metadata)

    def get(self, document_id: str, *, allowed: Allowed = None) -> Document:
        document = self.store.get_document(document_id)
        if allowed is not None and document.collection_id not in allowed:
            raise NotFound(f"document {document_id!r} not found")
        return document

    def list_page(
        self,
        collection_ref: str,
        *,
        status: DocumentStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        allowed: Allowed = None,
    ) -> Page[Document]:
        if limit is None:
            limit = min(self.limits.default_page_size, self.limits.page_size)
        if not 1 <= limit <= self.limits.page_size:
            raise InvalidInput(f"limit must be between 1 and {self.limits.page_size}")
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        return self.store.list_documents(collection.id, status=status, limit=limit, cursor=cursor)

    def list_visible(
        self,
        *,
        status: DocumentStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        allowed: Allowed = None,
    ) -> Page[Document]:
        """One page of the documents in every collection the caller may see: collection
        by collection in their listing order, newest first within each. The cursor names
        a collection and the store's cursor inside it, so a page costs one query per
        collection it reaches, however many there are before it."""
        if limit is None:
            limit = min(self.limits.default_page_size, self.limits.page_size)
        if not 1 <= limit <= self.limits.page_size:
            raise InvalidInput(f"limit must be between 1 and {self.limits.page_size}")
        order = [c.id for c in self.collections.list_all(allowed=allowed, counts=False)]
        start, inner = _read_cursor(cursor, order)
        items: list[Document] = []
        for index in range(start, len(order)):
            page = self.store.list_documents(
                order[index], status=status, limit=limit - len(items), cursor=inner
            )
            inner = None
            items.extend(page.items)
            if page.next_cursor is not None:
                return Page(items, _write_cursor(order[index], page.next_cursor))
            if len(items) >= limit:
                following = order[index + 1] if index + 1 < len(order) else None
                return Page(items, _write_cursor(following, None) if following else None)
        return Page(items, None)

    def delete(self, document_id: str, *, allowed: Allowed = None) -> None:
        if allowed is not None:
            self.get(document_id, allowed=allowed)  # a document never changes collection
        self.store.delete_document(document_id)

    def chunks(self, document_id: str, *, allowed: Allowed = None) -> list[StoredChunk]:
        if allowed is not None:
            self.get(document_id, allowed=allowed)
        return self.store.list_chunks(document_id)

    def status_counts(self, *, allowed: Allowed = None) -> dict[str, dict[DocumentStatus, int]]:
        """Documents per status in each visible collection, every status present (zeros
        too), so a page can show live ingestion progress with one cheap request."""
        found = self.store.status_counts_by_collection()
        visible = self.collections.list_all(allowed=allowed, counts=False)
        return {
            c.id: {status: found.get(c.id, {}).get(status, 0) for status in DOCUMENT_STATUSES}
            for c in visible
        }


def _write_cursor(collection_id: str, inner: str | None) -> str:
    raw = json.dumps([collection_id, inner]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str | None, order: list[str]) -> tuple[int, str | None]:
    """Where a page of :meth:`DocumentService.list_visible` starts: the index of its
    collection in ``order`` and the store's cursor there."""
    if cursor is None:
        return 0, None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        collection_id, inner = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidInput("cursor is not one this listing handed out") from None
    if collection_id not in order or not isinstance(inner, str | None):
        raise InvalidInput("cursor is not one this listing handed out (or its collection is gone)")
    return order.index(collection_id), inner
