"""The feedback round's vector leg by re-scoring the first pass's candidates: exact
cosine over the candidates, cut at the depth, and no second vector search."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from ragd.domain import ScoredId, Vector
from ragd.retrieval.hybrid import HybridParams, first_pass_ids, rank_with_feedback, rescored

DIM = 8


def unit(seed: int, dim: int = DIM) -> Vector:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    result: Vector = vector / np.linalg.norm(vector)
    return result


STORED = {f"c{i}": unit(i) for i in range(30)}


def stored(chunk_ids: list[str]) -> Mapping[str, Vector]:
    return {chunk_id: STORED[chunk_id] for chunk_id in chunk_ids if chunk_id in STORED}


def cosine_order(target: Vector, chunk_ids: list[str]) -> list[str]:
    scores = {cid: float(STORED[cid] @ target) for cid in chunk_ids}
    return sorted(chunk_ids, key=lambda cid: (-scores[cid], cid))


def test_candidates_are_both_legs_hits_once_each() -> None:
    keyword = [ScoredId("a", 9.0), ScoredId("b", 5.0)]
    vector = [ScoredId("b", 0.9), ScoredId("c", 0.8)]
    assert first_pass_ids(keyword, vector) == ["b", "c", "a"]
    assert first_pass_ids([], []) == []


def test_rescored_ranks_the_candidates_by_cosine_and_cuts_at_the_depth() -> None:
    target = unit(99)
    candidates = [f"c{i}" for i in range(0, 30, 2)]
    hits = rescored(target, candidates, stored, depth=5)
    assert [hit.chunk_id for hit in hits] == cosine_order(target, candidates)[:5]
    for hit in hits:
        assert hit.score == pytest.approx(float(STORED[hit.chunk_id] @ target), abs=1e-6)


def test_rescored_scores_are_cosines_whatever_the_vectors_length() -> None:
    target = unit(99) * 3.0
    hits = rescored(target, ["c1", "c2"], lambda ids: {i: STORED[i] * 2.0 for i in ids}, 10)
    for hit in hits:
        assert hit.score == pytest.approx(float(STORED[hit.chunk_id] @ unit(99)), abs=1e-6)


def test_rescored_leaves_out_missing_and_other_dimension_vectors() -> None:
    def mixed(chunk_ids: list[str]) -> Mapping[str, Vector]:
        return {"c1": STORED["c1"], "wide": unit(5, dim=16)}

    hits = rescored(unit(99), ["c1", "wide", "gone"], mixed, depth=10)
    assert [hit.chunk_id for hit in hits] == ["c1"]
    assert rescored(unit(99), [], stored, depth=10) == []
    assert rescored(unit(99), ["gone"], stored, depth=10) == []


def test_ties_break_on_the_chunk_id() -> None:
    same = {"b": unit(1), "a": unit(1), "c": unit(1)}
    hits = rescored(unit(1), ["c", "b", "a"], lambda ids: same, depth=2)
    assert [hit.chunk_id for hit in hits] == ["a", "b"]


@pytest.mark.parametrize("feedback_leg", ["search", "rescore"])
def test_rescore_runs_one_vector_search_where_search_runs_two(feedback_leg: str) -> None:
    weights = HybridParams(feedback_leg=feedback_leg).weights  # type: ignore[arg-type]
    searched: list[Vector] = []

    def vector_search(target: Vector) -> list[ScoredId]:
        searched.append(target)
        order = cosine_order(target, list(STORED))[:10]
        return [ScoredId(cid, float(STORED[cid] @ target)) for cid in order]

    keyword = [ScoredId(f"c{i}", 10.0 - i) for i in range(20, 30)]
    query = unit(99)
    hits = rank_with_feedback(
        keyword, query, weights, vector_search=vector_search, stored_vectors=stored, depth=10
    )
    assert len(searched) == (1 if feedback_leg == "rescore" else 2)
    first_pass = set(first_pass_ids(keyword, vector_search(query)))
    if feedback_leg == "rescore":
        assert {hit.chunk_id for hit in hits} <= first_pass
