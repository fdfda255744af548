"""/v1/collections"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool

from ragd.api.deps import ContainerDep
from ragd.schemas import CollectionCreate, CollectionList, CollectionPublic, CollectionUpdate
from ragd.store.records import Collection

router = APIRouter(prefix="/v1/collections", tags=["collections"])


def to_public(collection: Collection) -> CollectionPublic:
    return CollectionPublic.model_validate(collection, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CollectionPublic)
async def create_collection(
    body: CollectionCreate, container: ContainerDep, response: Response
) -> CollectionPublic:
    created = await run_in_threadpool(container.collections.create, body.name, body.description)
    response.headers["Location"] = f"/v1/collections/{created.id}"
    return to_public(created)


@router.get("", response_model=CollectionList)
def list_collections(container: ContainerDep) -> CollectionList:
    return CollectionList(collections=[to_public(c) for c in container.collections.list_all()])


@router.get("/{collection_id}", response_model=CollectionPublic)
def get_collection(collection_id: str, container: ContainerDep) -> CollectionPublic:
    return to_public(container.collections.get(collection_id))


@router.patch("/{collection_id}", response_model=CollectionPublic)
def update_collection(
    collection_id: str, body: CollectionUpdate, container: ContainerDep
) -> CollectionPublic:
    updated = container.collections.update(
        collection_id, name=body.name, description=body.description
    )
    return to_public(updated)


@router.delete("/{collection_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_collection(collection_id: str, container: ContainerDep) -> Response:
    container.collections.delete(collection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
