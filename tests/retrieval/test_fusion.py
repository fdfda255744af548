"""Reciprocal rank fusion, checked against hand-computed sums."""

from __future__ import annotations

import pytest

from ragd.domain import ScoredId
from ragd.retrieval.fusion import reciprocal_rank_fusion


def leg(*chunk_ids: str) -> list[ScoredId]:
    """A ranked leg; its scores are deliberately meaningless (fusion uses ranks)."""
    return [ScoredId(cid, 1000.0 - i * 0.5) for i, cid in enumerate(chunk_ids)]


def as_pairs(fused: list[ScoredId]) -> list[tuple[str, float]]:
    return [(hit.chunk_id, hit.score) for hit in fused]


def assert_fused(fused: list[ScoredId], expected: list[tuple[str, float]]) -> None:
    assert [hit.chunk_id for hit in fused] == [cid for cid, _ in expected]
    assert [hit.score for hit in fused] == pytest.approx([score for _, score in expected])


def test_single_leg_keeps_order() -> None:
    fused = reciprocal_rank_fusion([leg("a", "b", "c")])
    assert_fused(fused, [("a", 1 / 61), ("b", 1 / 62), ("c", 1 / 63)])


def test_overlapping_legs_add_up() -> None:
    fused = reciprocal_rank_fusion([leg("a", "b", "c"), leg("c", "a", "d")])
    assert_fused(
        fused,
        [
            ("a", 1 / 61 + 1 / 62),
            ("c", 1 / 63 + 1 / 61),
            ("b", 1 / 62),
            ("d", 1 / 63),
        ],
    )


def test_found_by_both_beats_top_of_one() -> None:
    keyword = leg("kw-only", "x", "both")
    vector = leg("vec-only", "y", "both")
    fused = reciprocal_rank_fusion([keyword, vector])
    assert fused[0].chunk_id == "both"
    assert fused[0].score == pytest.approx(2 / 63)


def test_scores_of_the_legs_are_ignored() -> None:
    high = [ScoredId("a", 0.001), ScoredId("b", 0.0005)]
    low = [ScoredId("b", 99.0), ScoredId("a", 98.0)]
    fused = reciprocal_rank_fusion([high, low])
    # Same ranks mirrored: a tie broken by id.
    assert_fused(fused, [("a", 1 / 61 + 1 / 62), ("b", 1 / 61 + 1 / 62)])


def test_ties_break_by_chunk_id() -> None:
    fused = reciprocal_rank_fusion([leg("chk_2", "chk_10"), leg("chk_10", "chk_2")])
    # Equal fused scores; string order, so "chk_10" sorts before "chk_2".
    assert [hit.chunk_id for hit in fused] == ["chk_10", "chk_2"]
    assert fused[0].score == fused[1].score


def test_disjoint_legs_interleave_by_rank() -> None:
    fused = reciprocal_rank_fusion([leg("b1", "b2", "b3"), leg("a1", "a2")])
    assert_fused(
        fused,
        [("a1", 1 / 61), ("b1", 1 / 61), ("a2", 1 / 62), ("b2", 1 / 62), ("b3", 1 / 63)],
    )


def test_weights_scale_each_leg() -> None:
    fused = reciprocal_rank_fusion([leg("a", "b"), leg("b", "c")], weights=[2.0, 0.5])
    assert_fused(
        fused,
        [("b", 2 / 62 + 0.5 / 61), ("a", 2 / 61), ("c", 0.5 / 62)],
    )


def test_weights_can_flip_the_winner() -> None:
    legs = [leg("kw"), leg("vec")]
    assert reciprocal_rank_fusion(legs, weights=[1.0, 1.1])[0].chunk_id == "vec"
    assert reciprocal_rank_fusion(legs, weights=[1.1, 1.0])[0].chunk_id == "kw"


def test_zero_weight_leg_adds_nothing() -> None:
    fused = reciprocal_rank_fusion([leg("a", "b"), leg("b", "z")], weights=[1.0, 0.0])
    assert_fused(fused, [("a", 1 / 61), ("b", 1 / 62), ("z", 0.0)])


def test_k_changes_the_curve() -> None:
    fused = reciprocal_rank_fusion([leg("a", "b"), leg("b")], k=1)
    assert_fused(fused, [("b", 1 / 3 + 1 / 2), ("a", 1 / 2)])
    flat = reciprocal_rank_fusion([leg("a", "b"), leg("b")], k=10_000)
    assert flat[0].chunk_id == "b"


@pytest.mark.parametrize("legs", [[], [[]], [[], []], [[], [], []]])
def test_empty_legs(legs: list[list[ScoredId]]) -> None:
    assert reciprocal_rank_fusion(legs) == []


def test_one_empty_leg_is_like_one_leg() -> None:
    assert as_pairs(reciprocal_rank_fusion([[], leg("x", "y")])) == as_pairs(
        reciprocal_rank_fusion([leg("x", "y")])
    )
    assert_fused(reciprocal_rank_fusion([leg("x"), []]), [("x", 1 / 61)])


def test_weights_must_match_legs() -> None:
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([leg("a"), leg("b")], weights=[1.0])


def test_three_legs() -> None:
    fused = reciprocal_rank_fusion([leg("a", "b"), leg("b", "a"), leg("b")])
    assert_fused(fused, [("b", 1 / 62 + 1 / 61 + 1 / 61), ("a", 1 / 61 + 1 / 62)])


def test_inputs_are_not_modified() -> None:
    first, second = leg("a", "b"), leg("b", "c")
    snapshot = (list(first), list(second))
    reciprocal_rank_fusion([first, second])
    assert (first, second) == snapshot
