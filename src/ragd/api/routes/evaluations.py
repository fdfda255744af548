"""/v1/collections/{id}/evaluations: score a golden set against a live collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import UNAUTHORIZED, ContainerDep, ReadKey
from ragd.api.schemas.evaluations import EvaluationRequest, EvaluationResponse
from ragd.services.evaluation.golden import GoldenQuery
from ragd.services.evaluations import EvaluationService

router = APIRouter(
    prefix="/v1/collections",
    tags=["evaluations"],
    responses=UNAUTHORIZED,
    route_class=JsonBodyRoute,
)


async def get_evaluations(container: ContainerDep) -> EvaluationService:
    return EvaluationService(container.search, container.collections)


EvaluationsDep = Annotated[EvaluationService, Depends(get_evaluations)]


@router.post(
    "/{collection_id}/evaluations",
    response_model=EvaluationResponse,
    summary="Run a golden set of queries and score the rankings (nDCG, recall, MRR at k)",
    responses={404: {"description": "No such collection"}},
)
def evaluate(
    collection_id: str, body: EvaluationRequest, evaluations: EvaluationsDep, key: ReadKey
) -> EvaluationResponse:
    """Read scope is enough: an evaluation only searches. The queries run one after the
    other, so a large golden set takes a while (one search each)."""
    queries = [GoldenQuery(query=q.query, relevant=dict(q.relevant)) for q in body.queries]
    report = evaluations.evaluate(
        collection_id, queries, top_k=body.top_k, mode=body.mode, allowed=key.collection_ids
    )
    return EvaluationResponse.model_validate(report.as_dict())
