"""/v1/collections/{id}/documents and /v1/documents/{id}"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from ragd.api.deps import FORBIDDEN, UNAUTHORIZED, ContainerDep, ReadKey, WriteKey
from ragd.api.schemas.core import (
    ChunkList,
    ChunkPublic,
    DocumentList,
    DocumentPublic,
    IngestionStatus,
    TextDocumentCreate,
    UrlDocumentCreate,
)
from ragd.auth import Allowed
from ragd.container import Container
from ragd.domain import Document, DocumentStatus, StoredChunk
from ragd.errors import InvalidInput, UnsupportedMediaType
from ragd.services.documents import parse_metadata_field

router = APIRouter(tags=["documents"], responses=UNAUTHORIZED)

_JSON_BODY: TypeAdapter[TextDocumentCreate | UrlDocumentCreate] = TypeAdapter(
    TextDocumentCreate | UrlDocumentCreate
)

_CREATE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 500},
                        "metadata": {
                            "type": "string",
                            "description": "A flat JSON object, encoded as a string.",
                        },
                    },
                }
            },
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/TextDocumentCreate"},
                        {"$ref": "#/components/schemas/UrlDocumentCreate"},
                    ]
                }
            },
        },
    }
}


def to_public(document: Document) -> DocumentPublic:
    return DocumentPublic.model_validate(document, from_attributes=True)


def chunk_public(chunk: StoredChunk) -> ChunkPublic:
    return ChunkPublic(
        id=chunk.id,
        document_id=chunk.document_id,
        collection_id=chunk.collection_id,
        ordinal=chunk.ordinal,
        text=chunk.text,
        heading_path=list(chunk.heading_path),
        token_count=chunk.token_count,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
    )


@router.post(
    "/v1/collections/{collection_id}/documents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentPublic,
    summary="Add a document: multipart file upload, JSON text, or JSON URL",
    responses={
        200: {"model": DocumentPublic, "description": "Same content already present"},
        **FORBIDDEN,
        413: {"description": "Body or file over the size cap"},
        415: {"description": "Unsupported file type"},
    },
    openapi_extra=_CREATE_OPENAPI,
)
async def create_document(
    collection_id: str, request: Request, container: ContainerDep, key: WriteKey, response: Response
) -> DocumentPublic:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = key.collection_ids
    if content_type == "multipart/form-data":
        document, created = await _create_from_form(collection_id, request, container, allowed)
    elif content_type == "application/json" or content_type.endswith("+json"):
        document, created = await _create_from_json(collection_id, request, container, allowed)
    else:
        raise UnsupportedMediaType(
            "send multipart/form-data with a 'file' field, or application/json with 'text' or 'url'"
        )
    response.status_code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
    response.headers["Location"] = f"/v1/documents/{document.id}"
    return to_public(document)


async def _create_from_form(
    collection_id: str, request: Request, container: Container, allowed: Allowed
) -> tuple[Document, bool]:
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart body needs a 'file' field holding the document")
        title, metadata = form.get("title"), form.get("metadata")
        if not isinstance(title, str | None) or not isinstance(metadata, str | None):
            raise InvalidInput("'title' and 'metadata' must be plain form fields")
        data = await upload.read()
        return await run_in_threadpool(
            container.documents.add_file,
            collection_id,
            data,
            filename=upload.filename,
            declared_type=upload.content_type,
            title=title,
            metadata=parse_metadata_field(metadata),
            allowed=allowed,
        )
    finally:
        await form.close()


async def _create_from_json(
    collection_id: str, request: Request, container: Container, allowed: Allowed
) -> tuple[Document, bool]:
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("request body is not valid JSON") from None
    if not isinstance(payload, dict) or ("text" in payload) == ("url" in payload):
        raise InvalidInput("JSON body needs exactly one of 'text' or 'url'")
    try:
        body = _JSON_BODY.validate_python(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None
    if isinstance(body, TextDocumentCreate):
        return await run_in_threadpool(
            container.documents.add_text,
            collection_id,
            body.text,
            title=body.title,
            metadata=body.metadata,
            allowed=allowed,
        )
    return await run_in_threadpool(
        container.documents.add_url,
        collection_id,
        body.url,
        title=body.title,
        metadata=body.metadata,
        allowed=allowed,
    )


@router.get("/v1/collections/{collection_id}/documents", response_model=DocumentList)
def list_documents(
    collection_id: str,
    container: ContainerDep,
    key: ReadKey,
    status: DocumentStatus | None = None,
    limit: Annotated[int | None, Query(ge=1, le=100, description="Page size; default 50.")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DocumentList:
    page = container.documents.list_page(
        collection_id, status=status, limit=limit, cursor=cursor, allowed=key.collection_ids
    )
    return DocumentList(documents=[to_public(d) for d in page.items], next_cursor=page.next_cursor)


@router.get("/v1/ingestion", response_model=IngestionStatus)
def ingestion_status(container: ContainerDep, key: ReadKey) -> IngestionStatus:
    """Documents by status in each collection the key may read, and how many of them
    wait for or are in ingestion (what the web page shows while files are processed)."""
    counts = container.documents.status_counts(allowed=key.collection_ids)
    depth = sum(c["queued"] + c["processing"] for c in counts.values())
    return IngestionStatus(queue_depth=depth, collections=counts)


@router.get("/v1/documents/{document_id}", response_model=DocumentPublic)
def get_document(document_id: str, container: ContainerDep, key: ReadKey) -> DocumentPublic:
    return to_public(container.documents.get(document_id, allowed=key.collection_ids))


@router.delete(
    "/v1/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT, responses=FORBIDDEN
)
def delete_document(document_id: str, container: ContainerDep, key: WriteKey) -> Response:
    container.documents.delete(document_id, allowed=key.collection_ids)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/documents/{document_id}/chunks", response_model=ChunkList)
def list_chunks(document_id: str, container: ContainerDep, key: ReadKey) -> ChunkList:
    found = container.documents.chunks(document_id, allowed=key.collection_ids)
    return ChunkList(chunks=[chunk_public(c) for c in found])
