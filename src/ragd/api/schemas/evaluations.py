"""Request and response models of ``POST /v1/collections/{id}/evaluations``.

Limits are stated here so they appear in the OpenAPI schema; the service checks them
again for callers that are not HTTP (``ragd eval --golden``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragd.api.schemas.bounds import limited
from ragd.limits import CEILINGS

DocumentId = Annotated[str, Field(min_length=1, max_length=CEILINGS.golden_document_id_chars)]
Grade = Annotated[int, Field(ge=0, le=CEILINGS.golden_grade)]


class GoldenQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        max_length=CEILINGS.query_chars,
        json_schema_extra=limited("maxLength", "query_chars"),
    )
    relevant: dict[DocumentId, Grade] = Field(
        min_length=1,
        max_length=CEILINGS.golden_judgments,
        description="Document id → grade (0 = judged not relevant; higher = more relevant). "
        "Ids the collection does not hold count as relevant documents never found.",
    )


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[GoldenQueryIn] = Field(min_length=1, max_length=CEILINGS.golden_queries)
    top_k: int = Field(
        10,
        ge=1,
        le=CEILINGS.top_k,
        description="The cutoff k of every metric.",
        json_schema_extra=limited("maximum", "top_k"),
    )
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
