"""Request and response models of the OpenAI-compatible endpoints (``/v1/models``,
``/v1/chat/completions``), in OpenAI's exact shapes plus one documented extra field,
``citations``.

Requests ignore OpenAI fields ragd has no use for (``temperature``, ``max_tokens``,
``tools``, ...) instead of refusing them, so that any OpenAI client works unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragd.api.schemas.core import CitationPublic

MESSAGES_MAX = 200
MESSAGE_CHARS_MAX = 20_000


class OpenAIModel(BaseModel):
    id: str = Field(description="`ragd` (every collection the key may read) or `ragd:<name>`.")
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragd"


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = Field(
        None, description="Text, or OpenAI content parts (only `text` parts are read)."
    )

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content[:MESSAGE_CHARS_MAX]
        parts = [p.get("text") for p in self.content if p.get("type") == "text"]
        return " ".join(p for p in parts if isinstance(p, str))[:MESSAGE_CHARS_MAX]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(
        min_length=1,
        max_length=200,
        description="`ragd` for every collection the key may read, or `ragd:<collection "
        "name>`; see `GET /v1/models`.",
    )
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MESSAGES_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    logprobs: None = None
    finish_reason: Literal["stop"] = "stop"


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str = Field(description="`chatcmpl-` and a random suffix.")
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage = Field(description="Rough counts (about four characters a token).")
    system_fingerprint: None = None
    citations: list[CitationPublic] = Field(
        description="ragd's extra field: the passages the answer cites, as in `/v1/ask`. "
        "They are also listed under 'Sources:' at the end of the message text."
    )
