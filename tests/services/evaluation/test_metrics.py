"""Ranking metrics: hand-computed cases, then agreement with ir-measures (trec_eval)."""

from __future__ import annotations

import math
import random

import ir_measures
import pytest
from ir_measures import RR, R, nDCG

from ragd.services.evaluation.metrics import (
    QueryScores,
    mean_scores,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    recall_at_k,
    score_query,
)

LOG3 = math.log2(3)


def test_graded_hand_computed_case() -> None:
    judged = {"a": 2, "b": 1, "c": 0}
    ranked = ["c", "b", "x"]
    # DCG: c gains 0 at rank 1, b gains 1 at rank 2; ideal: a (2) at 1, b (1) at 2.
    assert ndcg_at_k(ranked, judged, 10) == pytest.approx((1 / LOG3) / (2 + 1 / LOG3))
    assert recall_at_k(ranked, judged, 10) == 0.5
    assert mrr_at_k(ranked, judged, 10) == 0.5


def test_perfect_and_empty_rankings() -> None:
    judged = {"a": 3, "b": 2, "c": 1}
    assert score_query(["a", "b", "c"], judged, 10) == QueryScores(1.0, 1.0, 1.0)
    assert score_query([], judged, 10) == QueryScores(0.0, 0.0, 0.0)
    assert score_query(["x", "y"], judged, 10) == QueryScores(0.0, 0.0, 0.0)


def test_swapped_grades_lose_some_ndcg() -> None:
    judged = {"a": 3, "b": 1}
    expected = (1 + 3 / LOG3) / (3 + 1 / LOG3)
    assert ndcg_at_k(["b", "a"], judged, 10) == pytest.approx(expected)


def test_cutoff_hides_what_ranks_below_k() -> None:
    judged = {"c": 1}
    assert score_query(["a", "b", "c"], judged, 2) == QueryScores(0.0, 0.0, 0.0)
    assert mrr_at_k(["a", "b", "c"], judged, 3) == pytest.approx(1 / 3)


def test_ideal_dcg_uses_every_judged_document() -> None:
    """Twelve relevant documents, k = 10: a perfect top 10 is nDCG 1 but recall 10/12."""
    judged = {f"d{i}": 1 for i in range(12)}
    ranked = [f"d{i}" for i in range(10)]
    assert ndcg_at_k(ranked, judged, 10) == pytest.approx(1.0)
    assert recall_at_k(ranked, judged, 10) == pytest.approx(10 / 12)


def test_duplicates_count_once_at_their_first_rank() -> None:
    judged = {"b": 1}
    assert mrr_at_k(["a", "a", "b"], judged, 2) == 0.5
    assert ndcg_at_k(["b", "b"], {"b": 1, "c": 1}, 10) == pytest.approx(1 / (1 + 1 / LOG3))


def test_judged_but_irrelevant_only_scores_zero() -> None:
    assert score_query(["a"], {"a": 0}, 10) == QueryScores(0.0, 0.0, 0.0)


def test_mean_over_queries() -> None:
    metrics = mean_scores([QueryScores(1.0, 0.5, 1.0), QueryScores(0.0, 0.5, 0.5)], 10)
    assert (metrics.ndcg, metrics.recall, metrics.mrr, metrics.queries) == (0.5, 0.5, 0.75, 2)
    assert metrics.as_dict() == {"ndcg@10": 0.5, "recall@10": 0.5, "mrr@10": 0.75, "queries": 2}
    assert mean_scores([], 5).as_dict()["queries"] == 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) == 0.0


def _random_case(
    rng: random.Random, queries: int
) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
    """Graded judgments (0-3, some judged documents never retrieved) and rankings that
    mix judged and unjudged documents."""
    qrels: dict[str, dict[str, int]] = {}
    runs: dict[str, list[str]] = {}
    for q in range(queries):
        pool = [f"d{i}" for i in range(rng.randint(5, 40))]
        judged = rng.sample(pool, rng.randint(1, min(15, len(pool))))
        qrels[f"q{q}"] = {doc: rng.choice([0, 1, 1, 2, 3]) for doc in judged}
        runs[f"q{q}"] = rng.sample(pool, rng.randint(1, len(pool)))
    return qrels, runs


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_agrees_with_ir_measures_on_random_graded_rankings(k: int) -> None:
    qrels, runs = _random_case(random.Random(k), queries=200)
    reference_qrels = [
        ir_measures.Qrel(q, doc, grade) for q, docs in qrels.items() for doc, grade in docs.items()
    ]
    # Strictly decreasing scores: trec_eval orders by score, so ties must not reorder.
    reference_run = [
        ir_measures.ScoredDoc(q, doc, float(len(ranked) - rank))
        for q, ranked in runs.items()
        for rank, doc in enumerate(ranked)
    ]
    measures = {nDCG @ k: "ndcg", R @ k: "recall", RR @ k: "mrr"}
    expected: dict[tuple[str, str], float] = {}
    for metric in ir_measures.iter_calc(list(measures), reference_qrels, reference_run):
        expected[(metric.query_id, measures[metric.measure])] = metric.value
    ours = {q: score_query(runs[q], qrels[q], k) for q in qrels}
    for q, scores in ours.items():
        assert scores.ndcg == pytest.approx(expected[(q, "ndcg")], abs=1e-9), q
        assert scores.recall == pytest.approx(expected[(q, "recall")], abs=1e-9), q
        assert scores.mrr == pytest.approx(expected[(q, "mrr")], abs=1e-9), q
    aggregate = ir_measures.calc_aggregate(list(measures), reference_qrels, reference_run)
    mean = mean_scores(list(ours.values()), k)
    assert mean.ndcg == pytest.approx(aggregate[nDCG @ k], abs=1e-9)
    assert mean.recall == pytest.approx(aggregate[R @ k], abs=1e-9)
    assert mean.mrr == pytest.approx(aggregate[RR @ k], abs=1e-9)
