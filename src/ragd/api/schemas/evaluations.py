"""Request and response models of ``POST /v1/collections/{id}/evaluations``.

Limits are stated here so they appear in the OpenAPI schema; the service checks them
again for callers that are not HTTP (``ragd eval --golden``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragd.services.evaluation.golden import (
    DOCUMENT_ID_MAX,
    GOLDEN_QUERIES_MAX,
    GRADE_MAX,
    RELEVANT_MAX,
)
from ragd.services.search import QUERY_MAX, TOP_K_MAX

DocumentId = Annotated[str, Field(min_length=1, max_length=DOCUMENT_ID_MAX)]
Grade = Annotated[int, Field(ge=0, le=GRADE_MAX)]


class GoldenQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=QUERY_MAX)
    relevant: dict[DocumentId, Grade] = Field(
        min_length=1,
        max_length=RELEVANT_MAX,
        description="Document id → grade (0 = judged not relevant; higher = more relevant). "
        "Ids the collection does not hold count as relevant documents never found.",
    )


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[GoldenQueryIn] = Field(min_length=1, max_length=GOLDEN_QUERIES_MAX)
    top_k: int = Field(10, ge=1, le=TOP_K_MAX, description="The cutoff k of every metric.")
    mode: Literal["hybrid", "keyword", "vector"] = "hybrid"


class QueryEvaluation(BaseModel):
    query: str
    ranked_document_ids: list[str]
    ndcg: float
    recall: float
    mrr: float


class EvaluationResponse(BaseModel):
    metrics: dict[str, float | int] = Field(
        description='Means over the queries: "ndcg@k", "recall@k", "mrr@k" and "queries".'
    )
    mode: Literal["hybrid", "keyword", "vector"]
    top_k: int
    per_query: list[QueryEvaluation]
