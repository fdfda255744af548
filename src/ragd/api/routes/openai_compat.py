"""OpenAI-compatible ``GET /v1/models`` and ``POST /v1/chat/completions``.

Collections are models: ``ragd:<collection name>`` answers from that collection,
``ragd`` from every collection the key may read. The same API keys work as the OpenAI
API key (``Authorization: Bearer``). Responses have OpenAI's exact shapes, plus
``citations`` (as in ``/v1/ask``) on the completion and on the last streamed chunk; the
sources are also appended to the text, so chat front-ends that ignore extra fields still
show them. Errors stay ragd's ``application/problem+json`` (OpenAI clients raise their
usual status errors on them); an error mid-stream is a ``data: {"error": {...}}`` chunk,
which OpenAI clients raise as ``APIError``.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import UNAUTHORIZED, ContainerDep, ReadKey
from ragd.api.schemas.core import CitationPublic
from ragd.api.schemas.openai import (
    ChatCompletion,
    ChatCompletionChoice,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatMessageIn,
    CompletionUsage,
    OpenAIModel,
    OpenAIModelList,
)
from ragd.api.sse import SSE_MEDIA_TYPE, encode_event, errors_as_event, event_stream
from ragd.auth import Allowed
from ragd.container import Container
from ragd.errors import InvalidInput, NotFound
from ragd.generation.base import Turn
from ragd.services.answers import AnswerDelta, AnswerEvent, Citation
from ragd.services.conversation import rewrite_follow_up

router = APIRouter(
    prefix="/v1", tags=["openai-compatible"], responses=UNAUTHORIZED, route_class=JsonBodyRoute
)

ALL_MODEL = "ragd"
MODEL_PREFIX = "ragd:"
_SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `chat.completion`; with `stream: true`, `chat.completion.chunk` "
        "Server-Sent Events ending with `data: [DONE]`.",
        "content": {SSE_MEDIA_TYPE: {"schema": {"type": "string"}}},
    },
    404: {"description": "Unknown model (application/problem+json)."},
}


@router.get("/models", response_model=OpenAIModelList)
def list_models(container: ContainerDep, key: ReadKey) -> OpenAIModelList:
    collections = container.collections.list_all(allowed=key.collection_ids)
    created = [int(c.created_at.timestamp()) for c in collections]
    data = [OpenAIModel(id=ALL_MODEL, created=min(created, default=0))]
    data += [
        OpenAIModel(id=f"{MODEL_PREFIX}{c.name}", created=stamp)
        for c, stamp in zip(collections, created, strict=True)
    ]
    return OpenAIModelList(data=data)


@router.get("/models/{model}", response_model=OpenAIModel)
def get_model(model: str, container: ContainerDep, key: ReadKey) -> OpenAIModel:
    for listed in list_models(container, key).data:
        if listed.id == model:
            return listed
    raise NotFound(f"model {model!r} not found; GET /v1/models lists the models")


@router.post("/chat/completions", response_model=ChatCompletion, responses=_SSE_RESPONSE)
def chat_completions(
    body: ChatCompletionRequest, container: ContainerDep, key: ReadKey
) -> ChatCompletion | StreamingResponse:
    collections = _collections(container, body.model, key.collection_ids)
    question = _question(container, body.messages)
    instructions = _instructions(body.messages)
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    prompt_tokens = sum(_tokens(m.text()) for m in body.messages)
    if body.stream:
        events = container.answers.stream(
            question,
            collections=collections,
            allowed=key.collection_ids,
            instructions=instructions,
        )
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _Chunks(completion_id, created, body.model, prompt_tokens, include_usage)
        return event_stream(errors_as_event(chunks.render(events), _error_chunk))
    result = container.answers.ask(
        question, collections=collections, allowed=key.collection_ids, instructions=instructions
    )
    text = result.answer + sources_text(result.citations)
    completion_tokens = _tokens(text)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[ChatCompletionChoice(message=ChatCompletionMessage(content=text))],
        usage=CompletionUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
        citations=[_public(c) for c in result.citations],
    )


def sources_text(citations: Sequence[Citation]) -> str:
    """``"\\n\\nSources:\\n[1] title\\n[2] title"``, or nothing without citations."""
    if not citations:
        return ""
    lines = [f"[{c.n}] {c.title or 'Untitled'}" for c in citations]
    return "\n\nSources:\n" + "\n".join(lines)


class _Chunks:
    """Renders answer events as ``chat.completion.chunk`` events."""

    def __init__(
        self, completion_id: str, created: int, model: str, prompt_tokens: int, usage: bool
    ) -> None:
        self.head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        self.prompt_tokens = prompt_tokens
        self.usage = usage

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return encode_event({**self.head, "choices": [choice]})

    def render(self, events: Iterator[AnswerEvent]) -> Iterator[bytes]:
        yield self.chunk({"role": "assistant", "content": ""})
        text = ""
        try:
            for event in events:
                if isinstance(event, AnswerDelta):
                    text += event.text
                    yield self.chunk({"content": event.text})
                    continue
                if sources := sources_text(event.citations):
                    text += sources
                    yield self.chunk({"content": sources})
                last = {**self.head, "choices": [_finish()]}
                last["citations"] = [_public(c).model_dump(mode="json") for c in event.citations]
                yield encode_event(last)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        if self.usage:
            completion_tokens = _tokens(text)
            usage = {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens,
            }
            yield encode_event({**self.head, "choices": [], "usage": usage})
        yield encode_event("[DONE]")


def _finish() -> dict[str, Any]:
    return {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


def _error_chunk(problem: dict[str, Any]) -> bytes:
    """OpenAI's in-stream error shape, carrying the problem fields too."""
    error = {"message": problem["detail"], "code": None, "param": None, **problem}
    return encode_event({"error": error})


def _collections(container: Container, model: str, allowed: Allowed) -> list[str] | None:
    if model == ALL_MODEL:
        return None
    if not model.startswith(MODEL_PREFIX) or not model.removeprefix(MODEL_PREFIX):
        raise NotFound(f"model {model!r} not found; GET /v1/models lists the models")
    name = model.removeprefix(MODEL_PREFIX)
    try:
        return [container.collections.get(name, allowed=allowed).id]
    except NotFound:
        raise NotFound(f"model {model!r} not found; GET /v1/models lists the models") from None


def _instructions(messages: Sequence[ChatMessageIn]) -> str | None:
    """System (and ``developer``) messages, as a chat session's ``system_prompt`` is used:
    handed to the LLM after ragd's grounding rules, which they cannot override."""
    texts = [m.text().strip() for m in messages if m.role in ("system", "developer")]
    joined = "\n\n".join(t for t in texts if t)
    return joined or None


def _question(container: Container, messages: Sequence[ChatMessageIn]) -> str:
    """The last user message, rewritten to stand alone using the earlier turns (by the
    LLM when one is configured). System messages are instructions, not turns."""
    turns = [Turn(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    while turns and turns[-1].role != "user":
        turns.pop()
    if not turns or not turns[-1].content.strip():
        raise InvalidInput("messages must end with a user message that has text")
    return rewrite_follow_up(container.generator, turns[:-1], turns[-1].content)


def _tokens(text: str) -> int:
    """A rough token count: about four characters a token."""
    return math.ceil(len(text) / 4)


def _public(citation: Citation) -> CitationPublic:
    return CitationPublic.model_validate(citation, from_attributes=True)
