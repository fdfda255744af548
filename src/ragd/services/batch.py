"""What one item of a batch upload is, and what became of it.

A transport turns a batch body (files of a multipart form, lines of NDJSON) into
:data:`BatchEntry` values; :meth:`ragd.services.documents.DocumentService.add_batch`
adds each through the same path as a single upload and answers one
:class:`BatchOutcome` per entry, in order. An item the transport could not even read (a
malformed line) arrives as a :class:`RejectedEntry`, so it keeps its place in the
answer and never stops the items after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ragd.domain import Document
from ragd.errors import (
    FetchError,
    InvalidInput,
    ParseError,
    PayloadTooLarge,
    RagdError,
    UnsupportedMediaType,
)

ITEM_ERRORS: tuple[type[RagdError], ...] = (
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    ParseError,
    FetchError,
)
"""Errors that reject one item: what a single upload would answer with a 4xx for the
item itself. Anything else (the database away, the collection gone) stops the batch."""


@dataclass(frozen=True)
class FileEntry:
    """An uploaded file, kept by the transport (on disk past a megabyte) until added."""

    read: Callable[[], bytes]
    size: int
    filename: str | None
    content_type: str | None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class TextEntry:
    text: str
    title: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class UrlEntry:
    url: str
    title: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class RejectedEntry:
    """An item refused before it reached the service (not JSON, nested too deep...)."""

    error: RagdError


BatchEntry = FileEntry | TextEntry | UrlEntry | RejectedEntry


@dataclass(frozen=True)
class BatchOutcome:
    """One item's fate: created (queued), a duplicate of ``document``, or ``error``."""

    document: Document | None
    created: bool
    error: RagdError | None = None

    @property
    def status(self) -> Literal["created", "duplicate", "rejected"]:
        if self.error is not None:
            return "rejected"
        return "created" if self.created else "duplicate"
