"""/v1/collections/{id}/documents, its ``:batch`` and /v1/documents/{id}"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from ragd.api.batch_body import BATCH_OPENAPI, BatchBody, BatchBodyDep
from ragd.api.bodies import UPLOAD_OPENAPI, DocumentBody, FileBody, JsonBodyRoute
from ragd.api.contract import problem_responses
from ragd.api.deps import FORBIDDEN, UNAUTHORIZED, ContainerDep, ReadKey, WriteKey
from ragd.api.problems import problem_fields
from ragd.api.ratelimit import spend_documents
from ragd.api.schemas.bounds import page_size
from ragd.api.schemas.core import (
    BatchItem,
    BatchResult,
    ChunkList,
    ChunkPublic,
    DocumentList,
    DocumentPublic,
    IngestionStatus,
    ItemProblem,
    TextDocumentCreate,
    UrlDocumentCreate,
)
from ragd.auth import Allowed
from ragd.domain import Document, DocumentStatus, StoredChunk
from ragd.services.batch import BatchOutcome
from ragd.services.documents import DocumentService, parse_metadata_field

router = APIRouter(tags=["documents"], responses=UNAUTHORIZED, route_class=JsonBodyRoute)


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
    openapi_extra=UPLOAD_OPENAPI,
)
async def create_document(
    collection_id: str,
    key: WriteKey,  # before the body: nobody unauthenticated gets an upload parsed
    body: DocumentBody,
    container: ContainerDep,
    request: Request,
    response: Response,
) -> DocumentPublic:
    await spend_documents(request, key, 1)
    document, created = await run_in_threadpool(
        _add, container.documents, collection_id, body, key.collection_ids
    )
    response.status_code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
    response.headers["Location"] = f"/v1/documents/{document.id}"
    return to_public(document)


def _add(
    documents: DocumentService,
    collection_id: str,
    body: FileBody | TextDocumentCreate | UrlDocumentCreate,
    allowed: Allowed,
) -> tuple[Document, bool]:
    if isinstance(body, FileBody):
        return documents.add_file(
            collection_id,
            body.data,
            filename=body.filename,
            declared_type=body.content_type,
            title=body.title,
            metadata=parse_metadata_field(body.metadata, documents.limits.metadata_bytes),
            allowed=allowed,
        )
    if isinstance(body, TextDocumentCreate):
        return documents.add_text(
            collection_id, body.text, title=body.title, metadata=body.metadata, allowed=allowed
        )
    return documents.add_url(
        collection_id, body.url, title=body.title, metadata=body.metadata, allowed=allowed
    )


@router.post(
    "/v1/collections/{collection_id}/documents:batch",
    response_model=BatchResult,
    summary="Add many documents: several files (multipart) or NDJSON text/URL lines",
    description="Answers 200 with one result per item, in order: `created` (queued, as a "
    "single upload's 202), `duplicate` (as its 200) or `rejected` with the problem a single "
    "upload of that item would get. One bad item never rejects the others. The batch as a "
    "whole is refused before anything is written when it is over `RAGD_MAX_BATCH_DOCUMENTS` "
    "or `RAGD_MAX_BATCH_MB` (413) or over what is left of the documents budget (429).",
    responses={
        **FORBIDDEN,
        **problem_responses(
            415,
            **{"413": "Over the batch's document count or body cap, or its documents budget"},
        ),
    },
    openapi_extra=BATCH_OPENAPI,
)
async def create_documents_batch(
    collection_id: str,
    key: WriteKey,  # before the body: nobody unauthenticated gets an upload parsed
    body: BatchBodyDep,
    container: ContainerDep,
    request: Request,
) -> BatchResult:
    await spend_documents(request, key, body.count)
    outcomes = await run_in_threadpool(
        container.documents.add_batch, collection_id, body.entries, allowed=key.collection_ids
    )
    return batch_result(outcomes, body)


def batch_result(outcomes: list[BatchOutcome], body: BatchBody) -> BatchResult:
    items = [
        BatchItem(
            index=index,
            status=outcome.status,
            filename=body.filenames[index],
            document=to_public(outcome.document) if outcome.document is not None else None,
            problem=ItemProblem(**problem_fields(outcome.error)) if outcome.error else None,
        )
        for index, outcome in enumerate(outcomes)
    ]
    statuses = [item.status for item in items]
    return BatchResult(
        items=items,
        created=statuses.count("created"),
        duplicates=statuses.count("duplicate"),
        rejected=statuses.count("rejected"),
    )


@router.get("/v1/collections/{collection_id}/documents", response_model=DocumentList)
def list_documents(
    collection_id: str,
    container: ContainerDep,
    key: ReadKey,
    status: DocumentStatus | None = None,
    limit: Annotated[int | None, page_size()] = None,
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
