"""/v1/search and /v1/ask"""

from __future__ import annotations

from fastapi import APIRouter

from ragd.api.deps import UNAUTHORIZED, ContainerDep, ReadKey
from ragd.schemas import (
    AskRequest,
    AskResponse,
    CitationPublic,
    SearchRequest,
    SearchResponse,
    SearchResult,
)

router = APIRouter(prefix="/v1", tags=["search"], responses=UNAUTHORIZED)


@router.post("/search", response_model=SearchResponse)
def search(body: SearchRequest, container: ContainerDep, key: ReadKey) -> SearchResponse:
    hits = container.search.search(
        body.query,
        collections=body.collections,
        top_k=body.top_k,
        mode=body.mode,
        filters=body.filters,
        allowed=key.collection_ids,
    )
    return SearchResponse(
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


@router.post("/ask", response_model=AskResponse)
def ask(body: AskRequest, container: ContainerDep, key: ReadKey) -> AskResponse:
    result = container.answers.ask(
        body.question,
        collections=body.collections,
        top_k=body.top_k,
        filters=body.filters,
        allowed=key.collection_ids,
    )
    return AskResponse(
        answer=result.answer,
        citations=[
            CitationPublic.model_validate(c, from_attributes=True) for c in result.citations
        ],
    )
