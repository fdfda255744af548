"""The body of ``POST /v1/collections/{id}/documents:batch``: files, or NDJSON lines.

Two content types, as for the single upload: ``multipart/form-data`` with one ``file``
part per document (and an optional ``metadata`` field given to every file), or
``application/x-ndjson`` with one JSON document per line, each read exactly like the
single upload's JSON body (``text`` or ``url``, ``title``, ``metadata``, the same
nesting limit). Neither is held whole in memory: the multipart parser keeps each file
on disk past a megabyte and NDJSON is spooled the same way, then read a line at a time
while the documents are added.

Everything about the batch as a whole is judged before a document is written: the body
cap (``RAGD_MAX_BATCH_MB``, enforced by the body-limit middleware for this path), the
item count (``RAGD_MAX_BATCH_DOCUMENTS``), the media type and the shared ``metadata``.
Anything about one item (a malformed line, an empty or unsupported file) becomes that
item's rejection and never stops the others.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from tempfile import SpooledTemporaryFile
from typing import IO, Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ragd.api.bodies import MAX_DEPTH, json_document, parse_json
from ragd.api.deps import ContainerDep
from ragd.api.middleware import has_nul_escape
from ragd.api.schemas.bounds import LIMIT_MARKER
from ragd.api.schemas.core import TextDocumentCreate, UrlDocumentCreate
from ragd.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ragd.limits import CEILINGS
from ragd.services.batch import BatchEntry, FileEntry, RejectedEntry, TextEntry, UrlEntry
from ragd.services.documents import DocumentService, parse_metadata_field

NDJSON = "application/x-ndjson"
_SPOOL_BYTES = 1024 * 1024
# Besides the files: 'metadata', and a little room for fields clients add on their own.
_MAX_FORM_FIELDS = 10
_WRONG_TYPE = (
    "send multipart/form-data with one 'file' part per document, or application/x-ndjson "
    "with one JSON document ('text' or 'url') per line"
)


@dataclass(frozen=True)
class BatchBody:
    """The items of one batch, in order; ``entries`` may be read once, lazily."""

    count: int
    entries: Iterable[BatchEntry]
    filenames: list[str | None]


async def batch_body(request: Request, container: ContainerDep) -> AsyncIterator[BatchBody]:
    """The batch's items, valid as a whole (count, media type, shared metadata); the
    files or the spooled lines stay open until the route has added them."""
    documents = container.documents
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await _form(request, documents.limits.batch_documents)
        try:
            yield _file_entries(form, documents)
        finally:
            await form.close()
    elif content_type == NDJSON:
        spool: IO[bytes] = SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
        try:
            async for chunk in request.stream():
                await run_in_threadpool(spool.write, chunk)
            count = await run_in_threadpool(_count_lines, spool)
            documents.check_batch_size(count)
            yield BatchBody(count, _line_entries(spool), [None] * count)
        finally:
            spool.close()
    else:
        raise UnsupportedMediaType(_WRONG_TYPE)


BatchBodyDep = Annotated[BatchBody, Depends(batch_body)]


# -- multipart ---------------------------------------------------------------------------


async def _form(request: Request, max_files: int) -> FormData:
    try:
        async with aclosing(request.stream()) as stream:
            parser = MultiPartParser(
                request.headers, stream, max_files=max_files, max_fields=_MAX_FORM_FIELDS
            )
            return await parser.parse()
    except MultiPartException as exc:
        if exc.message.startswith("Too many files"):
            raise PayloadTooLarge(
                f"the batch has more than {max_files} files; at most {max_files} are "
                "accepted in one request"
            ) from None
        raise HTTPException(400, exc.message) from None


def _file_entries(form: FormData, documents: DocumentService) -> BatchBody:
    shared = form.get("metadata")
    if not isinstance(shared, str | None):
        raise InvalidInput("'metadata' must be a plain form field")
    metadata = parse_metadata_field(shared, documents.limits.metadata_bytes)
    parts = form.getlist("file")
    documents.check_batch_size(len(parts))
    return BatchBody(
        len(parts),
        [_file_entry(part, metadata) for part in parts],
        [part.filename if isinstance(part, UploadFile) else None for part in parts],
    )


def _file_entry(part: UploadFile | str, metadata: dict[str, Any]) -> BatchEntry:
    if not isinstance(part, UploadFile):
        return RejectedEntry(InvalidInput("this 'file' part is a plain field, not a file"))
    return FileEntry(
        read=partial(_read, part),
        size=part.size or 0,
        filename=part.filename,
        content_type=part.content_type,
        metadata=metadata,
    )


def _read(upload: UploadFile) -> bytes:
    upload.file.seek(0)
    return upload.file.read()


# -- NDJSON --------------------------------------------------------------------------------


def _count_lines(spool: IO[bytes]) -> int:
    spool.seek(0)
    return sum(1 for line in spool if line.strip())


def _line_entries(spool: IO[bytes]) -> Iterator[BatchEntry]:
    """One entry per non-blank line, read as the documents are added."""
    spool.seek(0)
    for line in spool:
        if line.strip():
            yield _line_entry(line)


def _line_entry(line: bytes) -> BatchEntry:
    if has_nul_escape(line):
        return RejectedEntry(InvalidInput("text must not contain NUL characters (\\u0000)"))
    try:
        payload = parse_json(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return RejectedEntry(InvalidInput("line is not valid JSON"))
    except HTTPException:
        return RejectedEntry(InvalidInput(f"line is JSON nested deeper than {MAX_DEPTH} levels"))
    try:
        document = json_document(payload, "a line")
    except InvalidInput as exc:
        return RejectedEntry(exc)
    if isinstance(document, TextDocumentCreate):
        return TextEntry(document.text, document.title, document.metadata)
    return UrlEntry(document.url, document.title, document.metadata)


# -- OpenAPI -------------------------------------------------------------------------------

BATCH_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Files as multipart `file` parts, or NDJSON: one JSON document "
        "(`text` or `url`, with `title` and `metadata`) per line; the schema below is one "
        "line. Blank lines are skipped and do not count as items.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": CEILINGS.batch_documents,
                            LIMIT_MARKER: {"maxItems": "batch_documents"},
                            "items": {"type": "string", "format": "binary"},
                        },
                        "metadata": {
                            "type": "string",
                            "description": "A flat JSON object, encoded as a string, given "
                            "to every file of the batch.",
                        },
                    },
                }
            },
            NDJSON: {
                "schema": {
                    "oneOf": [
                        TextDocumentCreate.model_json_schema(),
                        UrlDocumentCreate.model_json_schema(),
                    ]
                }
            },
        },
    }
}
"""The batch route's ``openapi_extra``: both request-body variants, stated in full."""
