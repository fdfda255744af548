"""Golden sets: a user's own queries with the documents that should come back.

A golden set is run against a live collection, so a user can check that a change of
model, chunking or settings did not make *their* search worse. Judgments name ragd
document ids; an id the collection does not hold is simply a relevant document that can
never be found (it lowers recall), not an error, so a golden set survives deletions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragd.errors import InvalidInput
from ragd.limits import CEILINGS
from ragd.services.evaluation.metrics import Metrics, QueryScores, mean_scores, score_query
from ragd.services.evaluation.ranking import ranked_documents
from ragd.services.search import SearchMode, SearchService

GOLDEN_QUERIES_MAX = CEILINGS.golden_queries
RELEVANT_MAX = CEILINGS.golden_judgments
DOCUMENT_ID_MAX = CEILINGS.golden_document_id_chars
GRADE_MAX = CEILINGS.golden_grade
QUERY_MAX = CEILINGS.query_chars


@dataclass(frozen=True)
class GoldenQuery:
    query: str
    relevant: dict[str, int]
    """document id → grade (> 0 is relevant; higher is better)."""


@dataclass(frozen=True)
class GoldenQueryResult:
    query: str
    ranked_document_ids: list[str]
    scores: QueryScores


@dataclass(frozen=True)
class GoldenReport:
    mode: SearchMode
    top_k: int
    metrics: Metrics
    per_query: list[GoldenQueryResult]

    def as_dict(self) -> dict[str, Any]:
        """The body of the HTTP response, also what ``ragd eval --golden --json`` shows."""
        return {
            "metrics": self.metrics.as_dict(),
            "mode": self.mode,
            "top_k": self.top_k,
            "per_query": [
                {
                    "query": r.query,
                    "ranked_document_ids": r.ranked_document_ids,
                    "ndcg": r.scores.ndcg,
                    "recall": r.scores.recall,
                    "mrr": r.scores.mrr,
                }
                for r in self.per_query
            ],
        }


def run_golden(
    search: SearchService,
    collection_id: str,
    queries: Sequence[GoldenQuery],
    *,
    mode: SearchMode = "hybrid",
    top_k: int = 10,
) -> GoldenReport:
    results = []
    for item in queries:
        ranked = ranked_documents(
            search, item.query, collection_id=collection_id, mode=mode, k=top_k
        )
        results.append(
            GoldenQueryResult(item.query, ranked, score_query(ranked, item.relevant, top_k))
        )
    metrics = mean_scores([r.scores for r in results], top_k)
    return GoldenReport(mode=mode, top_k=top_k, metrics=metrics, per_query=results)


def validate_golden(queries: Sequence[GoldenQuery]) -> list[GoldenQuery]:
    """The limits the HTTP schema states, checked again here for the CLI's JSON files."""
    if not 1 <= len(queries) <= GOLDEN_QUERIES_MAX:
        raise InvalidInput(f"a golden set needs 1-{GOLDEN_QUERIES_MAX} queries")
    for n, item in enumerate(queries, start=1):
        if not item.query.strip() or len(item.query) > QUERY_MAX:
            raise InvalidInput(f"query {n} must be 1-{QUERY_MAX} characters")
        if not 1 <= len(item.relevant) <= RELEVANT_MAX:
            raise InvalidInput(f"query {n} needs 1-{RELEVANT_MAX} judged documents")
        for doc, grade in item.relevant.items():
            if not doc or len(doc) > DOCUMENT_ID_MAX or not 0 <= grade <= GRADE_MAX:
                raise InvalidInput(
                    f"query {n}: document ids must be 1-{DOCUMENT_ID_MAX} characters "
                    f"and grades integers 0-{GRADE_MAX}"
                )
    return list(queries)


def parse_golden(payload: Any) -> list[GoldenQuery]:
    """A golden set from JSON: the HTTP request body (``{"queries": [...]}``) or just its
    list, so one file serves both ``curl`` and ``ragd eval --golden``."""
    items = payload.get("queries") if isinstance(payload, Mapping) else payload
    if not isinstance(items, list):
        raise InvalidInput('a golden set is a list of {"query", "relevant"} objects')
    return validate_golden([_golden_query(n, item) for n, item in enumerate(items, start=1)])


def _golden_query(n: int, item: Any) -> GoldenQuery:
    if not isinstance(item, Mapping):
        raise InvalidInput(f"query {n} must be an object")
    query, relevant = item.get("query"), item.get("relevant")
    if not isinstance(query, str) or not isinstance(relevant, Mapping):
        raise InvalidInput(f'query {n} needs "query" (a string) and "relevant" (an object)')
    grades: dict[str, int] = {}
    for doc, grade in relevant.items():
        if isinstance(grade, bool) or not isinstance(grade, int):
            raise InvalidInput(f"query {n}: the grade of {str(doc)[:64]!r} must be an integer")
        grades[str(doc)] = grade
    return GoldenQuery(query=query, relevant=grades)
