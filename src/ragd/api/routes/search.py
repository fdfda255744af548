"""/v1/search and /v1/ask"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response

from ragd.api.bodies import JsonBodyRoute
from ragd.api.contract import problem_responses
from ragd.api.deps import UNAUTHORIZED, ContainerDep, ReadKey
from ragd.api.responses import model_response
from ragd.api.schemas.core import (
    AskRequest,
    AskResponse,
    CitationPublic,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from ragd.api.sse import (
    SSE_MEDIA_TYPE,
    encode_event,
    errors_as_event,
    event_schema,
    event_stream,
)
from ragd.services.answers import AnswerDelta, AnswerEvent, Citation

router = APIRouter(prefix="/v1", tags=["search"], responses=UNAUTHORIZED, route_class=JsonBodyRoute)
# A collection named in the body that does not exist, or that the key may not read.
NAMED_COLLECTION = problem_responses(**{"404": "A collection named in the body was not found"})


@router.post("/search", response_model=SearchResponse, responses=NAMED_COLLECTION)
def search(body: SearchRequest, container: ContainerDep, key: ReadKey) -> Response:
    hits = container.search.search(
        body.query,
        collections=body.collections,
        top_k=body.top_k,
        mode=body.mode,
        filters=body.filters,
        allowed=key.collection_ids,
    )
    return model_response(
        SearchResponse(
            results=[
                SearchResult(
                    chunk_id=h.chunk_id,
                    document_id=h.document_id,
                    collection_id=h.collection_id,
                    title=h.title,
                    text=h.text,
                    score=h.score,
                    metadata=h.metadata,
                    heading_path=list(h.heading_path),
                )
                for h in hits
            ]
        )
    )


SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer; with `stream: true`, Server-Sent Events instead: "
        "`delta` (text), `citations`, then `done`, or `error` (a problem) mid-stream.",
        "content": {
            SSE_MEDIA_TYPE: {"schema": event_schema(("delta", "citations", "done", "error"))}
        },
    }
}


@router.post("/ask", response_model=AskResponse, responses={**SSE_RESPONSE, **NAMED_COLLECTION})
def ask(body: AskRequest, container: ContainerDep, key: ReadKey) -> Response:
    if body.stream:
        events = container.answers.stream(
            body.question,
            collections=body.collections,
            top_k=body.top_k,
            filters=body.filters,
            allowed=key.collection_ids,
        )
        return event_stream(errors_as_event(ask_events(events), error_event))
    result = container.answers.ask(
        body.question,
        collections=body.collections,
        top_k=body.top_k,
        filters=body.filters,
        allowed=key.collection_ids,
    )
    return model_response(
        AskResponse(
            answer=result.answer,
            citations=[
                CitationPublic.model_validate(c, from_attributes=True) for c in result.citations
            ],
        )
    )


def ask_events(events: Iterator[AnswerEvent]) -> Iterator[bytes]:
    try:
        for event in events:
            if isinstance(event, AnswerDelta):
                yield encode_event({"text": event.text}, "delta")
            else:
                citations = [_public(c).model_dump(mode="json") for c in event.citations]
                yield encode_event({"citations": citations}, "citations")
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    yield encode_event({}, "done")


def error_event(problem: dict[str, Any]) -> bytes:
    return encode_event(problem, "error")


def _public(citation: Citation) -> CitationPublic:
    return CitationPublic.model_validate(citation, from_attributes=True)
