"""Ranking metrics at a cutoff: nDCG@k (graded), recall@k and MRR@k.

They follow trec_eval, so numbers compare with published BEIR results and with the
reference implementation the tests check against:

- nDCG@k: gain = the judged grade (negative grades count as 0), discount ``log2(rank + 1)``;
  the ideal DCG sorts *all* judged documents of the query by grade, not only retrieved ones.
- recall@k: relevant (grade > 0) documents in the top k / all relevant documents.
- MRR@k: 1 / rank of the first relevant document in the top k, else 0.

A query whose judgments are all 0 scores 0 on every metric (trec_eval does the same), and a
ranked id seen twice counts once, at its first rank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Judgments = Mapping[str, int]
"""One query's judged documents: document id → grade (higher is more relevant)."""


@dataclass(frozen=True)
class QueryScores:
    ndcg: float
    recall: float
    mrr: float


@dataclass(frozen=True)
class Metrics:
    """Means over the evaluated queries; ``k`` names the cutoff in :meth:`as_dict`."""

    k: int
    ndcg: float
    recall: float
    mrr: float
    queries: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            f"ndcg@{self.k}": self.ndcg,
            f"recall@{self.k}": self.recall,
            f"mrr@{self.k}": self.mrr,
            "queries": self.queries,
        }


def _top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The first k distinct ids: a duplicate must not earn its gain twice."""
    return list(dict.fromkeys(ranked))[:k]


def _dcg(gains: Sequence[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at_k(ranked: Sequence[str], judged: Judgments, k: int) -> float:
    gains = [max(judged.get(doc, 0), 0) for doc in _top_k(ranked, k)]
    ideal = sorted((max(grade, 0) for grade in judged.values()), reverse=True)[:k]
    best = _dcg(ideal)
    return _dcg(gains) / best if best > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judged: Judgments, k: int) -> float:
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_top_k(ranked, k))) / len(relevant)


def mrr_at_k(ranked: Sequence[str], judged: Judgments, k: int) -> float:
    for rank, doc in enumerate(_top_k(ranked, k), start=1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def score_query(ranked: Sequence[str], judged: Judgments, k: int) -> QueryScores:
    return QueryScores(
        ndcg=ndcg_at_k(ranked, judged, k),
        recall=recall_at_k(ranked, judged, k),
        mrr=mrr_at_k(ranked, judged, k),
    )


def mean_scores(scores: Sequence[QueryScores], k: int) -> Metrics:
    """The mean over queries; an empty list is 0 everywhere rather than an error, so a
    report can still be printed for a dataset with no usable judgments."""
    n = len(scores)
    if n == 0:
        return Metrics(k=k, ndcg=0.0, recall=0.0, mrr=0.0, queries=0)
    return Metrics(
        k=k,
        ndcg=sum(s.ndcg for s in scores) / n,
        recall=sum(s.recall for s in scores) / n,
        mrr=sum(s.mrr for s in scores) / n,
        queries=n,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation): a latency that really happened."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
