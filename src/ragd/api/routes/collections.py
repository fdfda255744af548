"""/v1/collections"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool

from ragd.api.bodies import JsonBodyRoute
from ragd.api.contract import problem_responses
from ragd.api.deps import FORBIDDEN, UNAUTHORIZED, AdminKey, ContainerDep, ReadKey, WriteKey
from ragd.api.schemas.core import (
    CollectionCreate,
    CollectionList,
    CollectionPublic,
    CollectionUpdate,
)
from ragd.api.schemas.jobs import JobPublic, ReindexRequest
from ragd.domain import Collection

router = APIRouter(
    prefix="/v1/collections",
    tags=["collections"],
    responses=UNAUTHORIZED,
    route_class=JsonBodyRoute,
)


def to_public(collection: Collection) -> CollectionPublic:
    return CollectionPublic.model_validate(collection, from_attributes=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CollectionPublic,
    responses={**FORBIDDEN, **problem_responses(409)},
)
async def create_collection(
    body: CollectionCreate, container: ContainerDep, key: WriteKey, response: Response
) -> CollectionPublic:
    created = await run_in_threadpool(
        container.collections.create, body.name, body.description, allowed=key.collection_ids
    )
    response.headers["Location"] = f"/v1/collections/{created.id}"
    return to_public(created)


@router.get("", response_model=CollectionList)
def list_collections(container: ContainerDep, key: ReadKey) -> CollectionList:
    found = container.collections.list_all(allowed=key.collection_ids)
    return CollectionList(collections=[to_public(c) for c in found])


@router.get("/{collection_id}", response_model=CollectionPublic)
def get_collection(collection_id: str, container: ContainerDep, key: ReadKey) -> CollectionPublic:
    return to_public(container.collections.get(collection_id, allowed=key.collection_ids))


@router.patch(
    "/{collection_id}",
    response_model=CollectionPublic,
    responses={**FORBIDDEN, **problem_responses(409)},
)
def update_collection(
    collection_id: str, body: CollectionUpdate, container: ContainerDep, key: WriteKey
) -> CollectionPublic:
    updated = container.collections.update(
        collection_id,
        name=body.name,
        description=body.description,
        allowed=key.collection_ids,
    )
    return to_public(updated)


@router.delete("/{collection_id}", status_code=status.HTTP_204_NO_CONTENT, responses=FORBIDDEN)
def delete_collection(collection_id: str, container: ContainerDep, key: AdminKey) -> Response:
    container.collections.delete(collection_id, allowed=key.collection_ids)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{collection_id}/reindex",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    summary="Re-chunk and re-embed every document, as a job",
    responses={
        **FORBIDDEN,
        **problem_responses(**{"409": "A reindex of this collection is queued or running"}),
    },
)
def reindex_collection(
    collection_id: str,
    container: ContainerDep,
    key: WriteKey,
    response: Response,
    body: ReindexRequest | None = None,
) -> JobPublic:
    """Queue a reindex (202, ``Location: /v1/jobs/{id}``): search keeps answering from
    the current chunks until the new ones are complete, then the collection switches at
    once. 409 while another reindex of the collection is queued or running."""
    job = container.reindex.start(
        collection_id,
        actor=key.prefix or "local",
        model=body.model if body else None,
        chunk_size=body.chunk_size if body else None,
        allowed=key.collection_ids,
    )
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.of(job, dt.datetime.now(dt.UTC))
