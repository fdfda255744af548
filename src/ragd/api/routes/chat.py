"""/v1/chat/sessions: sessions owned by the calling key, and their messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import UNAUTHORIZED, ContainerDep, ReadKey
from ragd.api.routes.search import NAMED_COLLECTION, SSE_RESPONSE, ask_events, error_event
from ragd.api.schemas.bounds import page_size
from ragd.api.schemas.chat import (
    ChatMessageCreate,
    ChatMessageList,
    ChatMessagePublic,
    ChatSessionCreate,
    ChatSessionList,
    ChatSessionPublic,
)
from ragd.api.sse import errors_as_event, event_stream
from ragd.domain import ChatSession

router = APIRouter(
    prefix="/v1/chat/sessions", tags=["chat"], responses=UNAUTHORIZED, route_class=JsonBodyRoute
)


@router.post("", response_model=ChatSessionPublic, status_code=201, responses=NAMED_COLLECTION)
def create_session(
    body: ChatSessionCreate, container: ContainerDep, key: ReadKey
) -> ChatSessionPublic:
    session = container.chat.create(
        key_id=key.key_id,
        collections=body.collections,
        title=body.title,
        system_prompt=body.system_prompt,
        allowed=key.collection_ids,
    )
    return _public(session)


@router.get("", response_model=ChatSessionList)
def list_sessions(container: ContainerDep, key: ReadKey) -> ChatSessionList:
    """This key's sessions, most recently active first (at most 200)."""
    return ChatSessionList(
        sessions=[_public(s) for s in container.chat.list_sessions(key_id=key.key_id)]
    )


@router.get("/{session_id}", response_model=ChatSessionPublic)
def get_session(session_id: str, container: ContainerDep, key: ReadKey) -> ChatSessionPublic:
    return _public(container.chat.get(session_id, key_id=key.key_id))


@router.delete("/{session_id}", status_code=204)
def delete_session(session_id: str, container: ContainerDep, key: ReadKey) -> Response:
    container.chat.delete(session_id, key_id=key.key_id)
    return Response(status_code=204)


@router.post("/{session_id}/messages", response_model=ChatMessagePublic, responses=SSE_RESPONSE)
def post_message(
    session_id: str, body: ChatMessageCreate, container: ContainerDep, key: ReadKey
) -> ChatMessagePublic | StreamingResponse:
    """Ask in the session: the answer (stored with the question) and its citations."""
    if body.stream:
        events = container.chat.stream_reply(
            session_id, body.content, key_id=key.key_id, allowed=key.collection_ids
        )
        return event_stream(errors_as_event(ask_events(events), error_event))
    message = container.chat.reply(
        session_id, body.content, key_id=key.key_id, allowed=key.collection_ids
    )
    return ChatMessagePublic.of(message)


@router.get("/{session_id}/messages", response_model=ChatMessageList)
def list_messages(
    session_id: str,
    container: ContainerDep,
    key: ReadKey,
    limit: Annotated[int | None, page_size()] = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> ChatMessageList:
    """Oldest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    page = container.chat.messages(session_id, key_id=key.key_id, limit=limit, cursor=cursor)
    return ChatMessageList(
        messages=[ChatMessagePublic.of(m) for m in page.items], next_cursor=page.next_cursor
    )


def _public(session: ChatSession) -> ChatSessionPublic:
    return ChatSessionPublic(
        id=session.id,
        title=session.title,
        system_prompt=session.system_prompt,
        collections=None if session.collection_ids is None else list(session.collection_ids),
        created_at=session.created_at,
        updated_at=session.updated_at,
    )
