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

import secrets
import time
from collections.abc import Iterator
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
    CompletionUsage,
    OpenAIModel,
    OpenAIModelList,
)
from ragd.api.sse import (
    SSE_MEDIA_TYPE,
    encode_event,
    errors_as_event,
    event_schema,
    event_stream,
)
from ragd.domain import Turn
from ragd.services.answers import AnswerDelta, AnswerEvent, Citation
from ragd.services.completions import Model, count_tokens, sources_text

router = APIRouter(
    prefix="/v1", tags=["openai-compatible"], responses=UNAUTHORIZED, route_class=JsonBodyRoute
)

_SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `chat.completion`; with `stream: true`, `chat.completion.chunk` "
        "Server-Sent Events ending with `data: [DONE]`.",
        "content": {SSE_MEDIA_TYPE: {"schema": event_schema(None)}},
    },
    404: {"description": "Unknown model"},
}


@router.get("/models", response_model=OpenAIModelList)
def list_models(container: ContainerDep, key: ReadKey) -> OpenAIModelList:
    models = container.completions.models(allowed=key.collection_ids)
    return OpenAIModelList(data=[_model(m) for m in models])


@router.get("/models/{model}", response_model=OpenAIModel)
def get_model(model: str, container: ContainerDep, key: ReadKey) -> OpenAIModel:
    return _model(container.completions.model(model, allowed=key.collection_ids))


@router.post("/chat/completions", response_model=ChatCompletion, responses=_SSE_RESPONSE)
def chat_completions(
    body: ChatCompletionRequest, container: ContainerDep, key: ReadKey
) -> ChatCompletion | StreamingResponse:
    messages = [Turn(m.role, m.text()) for m in body.messages]
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    if body.stream:
        stream = container.completions.stream(body.model, messages, allowed=key.collection_ids)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _Chunks(completion_id, created, body.model, stream.prompt_tokens, include_usage)
        return event_stream(errors_as_event(chunks.render(stream.events), _error_chunk))
    result = container.completions.complete(body.model, messages, allowed=key.collection_ids)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[ChatCompletionChoice(message=ChatCompletionMessage(content=result.text))],
        usage=CompletionUsage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            total_tokens=result.prompt_tokens + result.completion_tokens,
        ),
        citations=[_public(c) for c in result.citations],
    )


def _model(model: Model) -> OpenAIModel:
    return OpenAIModel(id=model.id, created=model.created)


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
            completion_tokens = count_tokens(text)
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


def _public(citation: Citation) -> CitationPublic:
    return CitationPublic.model_validate(citation, from_attributes=True)
