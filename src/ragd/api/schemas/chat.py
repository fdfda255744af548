"""Request and response models of ``/v1/chat/sessions``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragd.api.schemas.bounds import limited
from ragd.api.schemas.core import CitationPublic
from ragd.limits import CEILINGS


class ChatSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collections: list[str] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Collection ids or names; every collection the key may read when omitted.",
    )
    title: str | None = Field(None, max_length=CEILINGS.chat_title_chars)
    system_prompt: str | None = Field(
        None,
        max_length=CEILINGS.system_prompt_chars,
        description="Kept with the session; the answer generators do not use it yet.",
    )


class ChatSessionPublic(BaseModel):
    id: str
    title: str | None
    system_prompt: str | None
    collections: list[str] | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ChatSessionList(BaseModel):
    sessions: list[ChatSessionPublic]


class ChatMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(
        min_length=1,
        max_length=CEILINGS.query_chars,
        json_schema_extra=limited("maxLength", "query_chars"),
    )
    stream: bool = Field(
        False,
        description="Answer as Server-Sent Events, exactly like `/v1/ask` with `stream`.",
    )


class ChatMessagePublic(BaseModel):
    id: str
    session_id: str
    role: str = Field(description="`user` or `assistant`.")
    content: str
    citations: list[CitationPublic] = Field(description="As in `/v1/ask`; empty for `user`.")
    created_at: dt.datetime

    @classmethod
    def of(cls, message: Any) -> ChatMessagePublic:
        return cls(
            id=message.id,
            session_id=message.session_id,
            role=message.role,
            content=message.content,
            citations=[CitationPublic.model_validate(c) for c in message.citations],
            created_at=message.created_at,
        )


class ChatMessageList(BaseModel):
    messages: list[ChatMessagePublic]
    next_cursor: str | None
