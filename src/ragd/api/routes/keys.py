"""/v1/keys: create, list and revoke API keys (admin keys that see every collection)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import FORBIDDEN, UNAUTHORIZED, ContainerDep, KeyAdmin
from ragd.api.schemas.core import KeyCreate, KeyCreated, KeyList, KeyPublic
from ragd.domain import ApiKey

router = APIRouter(
    prefix="/v1/keys",
    tags=["keys"],
    responses={**UNAUTHORIZED, **FORBIDDEN},
    route_class=JsonBodyRoute,
)


def to_public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scope=key.scope,
        collections=None if key.collection_ids is None else list(key.collection_ids),
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
    summary="Create a key; the response is the only place its secret appears",
)
def create_key(
    body: KeyCreate, container: ContainerDep, _admin: KeyAdmin, response: Response
) -> KeyCreated:
    created = container.keys.create(body.name, body.scope, body.collections)
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated(**to_public(created.key).model_dump(), key=created.secret)


@router.get("", response_model=KeyList, summary="List keys by prefix (never their secrets)")
def list_keys(container: ContainerDep, _admin: KeyAdmin) -> KeyList:
    return KeyList(keys=[to_public(k) for k in container.keys.list_all()])


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a key")
def revoke_key(key_id: str, container: ContainerDep, _admin: KeyAdmin) -> Response:
    container.keys.revoke(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
