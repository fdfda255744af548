"""/v1/collections/{id}/sources and /v1/sources/{id}: synced sources."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from ragd.api.bodies import JsonBodyRoute
from ragd.api.contract import problem_responses
from ragd.api.deps import FORBIDDEN, UNAUTHORIZED, ContainerDep, ReadKey, WriteKey
from ragd.api.ratelimit import enforce_rate_limit
from ragd.api.schemas.jobs import JobPublic
from ragd.api.schemas.sources import (
    Schedule,
    SourceCreate,
    SourceList,
    SourcePublic,
    SourceWithSecretPublic,
    SyncCountsPublic,
)
from ragd.domain import JobInfo, Source
from ragd.errors import PayloadTooLarge
from ragd.limits import CEILINGS

router = APIRouter(tags=["sources"], responses=UNAUTHORIZED, route_class=JsonBodyRoute)


def to_public(source: Source) -> SourcePublic:
    return SourcePublic(**_fields(source))


def _fields(source: Source) -> dict[str, object]:
    return {
        "id": source.id,
        "collection_id": source.collection_id,
        "type": source.type,
        "location": source.location,
        "mapping": source.mapping,
        "schedule": Schedule(**source.schedule) if source.schedule else None,
        "webhook_url": f"/v1/sources/{source.id}/webhook",
        "last_sync_at": source.last_sync_at,
        "last_status": source.last_status,
        "last_items": SyncCountsPublic(**source.last_counts.__dict__),
        "last_error": source.last_error,
        "next_sync_at": source.next_sync_at,
        "created_at": source.created_at,
        "updated_at": source.updated_at,
    }


@router.post(
    "/v1/collections/{collection_id}/sources",
    status_code=status.HTTP_201_CREATED,
    response_model=SourceWithSecretPublic,
    summary="Add a synced source; its webhook secret is in this response only",
    responses=FORBIDDEN,
)
async def create_source(
    collection_id: str,
    body: SourceCreate,
    container: ContainerDep,
    key: WriteKey,
    response: Response,
) -> SourceWithSecretPublic:
    created = await run_in_threadpool(
        lambda: container.sources.create(
            collection_id,
            type=body.type,
            location=body.location,
            schedule=body.schedule.model_dump() if body.schedule else None,
            mapping=body.mapping,
            allowed=key.collection_ids,
        )
    )
    response.headers["Location"] = f"/v1/sources/{created.source.id}"
    return SourceWithSecretPublic(**_fields(created.source), secret=created.secret)


@router.get("/v1/collections/{collection_id}/sources", response_model=SourceList)
def list_sources(collection_id: str, container: ContainerDep, key: ReadKey) -> SourceList:
    found = container.sources.list_all(collection_id, allowed=key.collection_ids)
    return SourceList(sources=[to_public(s) for s in found])


@router.get("/v1/sources/{source_id}", response_model=SourcePublic)
def get_source(source_id: str, container: ContainerDep, key: ReadKey) -> SourcePublic:
    return to_public(container.sources.get(source_id, allowed=key.collection_ids))


@router.delete(
    "/v1/sources/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a source and the documents it synced",
    responses=FORBIDDEN,
)
def delete_source(source_id: str, container: ContainerDep, key: WriteKey) -> Response:
    container.sources.delete(source_id, allowed=key.collection_ids)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/sources/{source_id}/rotate-secret",
    response_model=SourceWithSecretPublic,
    summary="Replace the webhook secret; the old one stops working at once",
    responses=FORBIDDEN,
)
def rotate_secret(source_id: str, container: ContainerDep, key: WriteKey) -> SourceWithSecretPublic:
    rotated = container.sources.rotate_secret(source_id, allowed=key.collection_ids)
    return SourceWithSecretPublic(**_fields(rotated.source), secret=rotated.secret)


def _queued(job: JobInfo, response: Response) -> JobPublic:
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.of(job, dt.datetime.now(dt.UTC))


@router.post(
    "/v1/sources/{source_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    summary="Sync a source now: its sync job (one already queued is returned)",
    responses=FORBIDDEN,
)
def sync_source(
    source_id: str, container: ContainerDep, key: WriteKey, response: Response
) -> JobPublic:
    job = container.sources.trigger(
        source_id, actor=key.prefix or "anonymous", allowed=key.collection_ids
    )
    return _queued(job, response)


_WEBHOOK_BODY = {
    "requestBody": {
        "required": False,
        "description": "Any payload, up to 1 MB; only its signature is checked.",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/v1/sources/{source_id}/webhook",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    summary="Trigger a sync, signed with the source's secret (no API key)",
    description="`X-Ragd-Timestamp`: Unix seconds; `X-Ragd-Signature`: `sha256=` and the "
    "hex HMAC-SHA256 of `{timestamp}.{body}` under the source's secret. A bad or missing "
    "signature, a timestamp outside RAGD_WEBHOOK_TOLERANCE_S, a replayed request or an "
    "unknown source: 401, and nothing runs. Requests while a sync is queued return that "
    "job.",
    responses=problem_responses(401, 413, 429),
    openapi_extra=_WEBHOOK_BODY,
)
async def source_webhook(
    source_id: str,
    request: Request,
    container: ContainerDep,
    response: Response,
    x_ragd_timestamp: Annotated[str | None, Header(max_length=32)] = None,
    x_ragd_signature: Annotated[str | None, Header(max_length=200)] = None,
) -> JobPublic:
    await enforce_rate_limit(request)  # by client address: there is no key
    body = await _bounded_body(request, CEILINGS.webhook_body_bytes)
    job = await run_in_threadpool(
        lambda: container.sources.webhook(
            source_id, timestamp=x_ragd_timestamp, signature=x_ragd_signature, body=body
        )
    )
    return _queued(job, response)


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"a webhook body must be at most {limit} bytes")
    return bytes(body)
