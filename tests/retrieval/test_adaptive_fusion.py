"""Adaptive fusion: the keyword leg moves the ranking only as far as the legs agree."""

from __future__ import annotations

import pytest

from ragd.domain import FusionWeights, ScoredId
from ragd.retrieval.hybrid import (
    AGREEMENT_FULL,
    HybridParams,
    agreement,
    agreement_scale,
    convex_fusion,
)


def leg(*chunk_ids: str, top: float = 1.0, step: float = 0.05) -> list[ScoredId]:
    return [ScoredId(cid, top - i * step) for i, cid in enumerate(chunk_ids)]


VECTOR = leg(*(f"v{i}" for i in range(20)))
ADAPTIVE = HybridParams(fusion="adaptive").weights


def fused(keyword: list[ScoredId], vector: list[ScoredId], weight: float) -> list[str]:
    scale = agreement_scale(ADAPTIVE, keyword, vector)
    return [h.chunk_id for h in convex_fusion(keyword, vector, keyword_weight=weight * scale)]


def test_agreement_is_the_shared_share_of_the_top() -> None:
    assert agreement(VECTOR, VECTOR, 10) == 1.0
    assert agreement(leg("x", "y"), VECTOR, 10) == 0.0
    assert agreement(leg("v0", "x", "v9", "v10"), VECTOR, 10) == pytest.approx(0.2)
    assert agreement([], VECTOR, 10) == 0.0
    assert agreement(VECTOR, VECTOR, 0) == 0.0


def test_when_the_keyword_leg_is_noise_the_hybrid_follows_the_vector_leg() -> None:
    noise = leg(*(f"k{i}" for i in range(20)), top=25.0, step=1.0)  # BM25-like scores
    # Every vector hit first, in the vector leg's order (then the noise, at 0).
    assert fused(noise, VECTOR, 0.3)[:19] == [h.chunk_id for h in VECTOR][:19]
    # Convex fusion with a fixed weight lets the noise in: what adaptive prevents.
    fixed = [h.chunk_id for h in convex_fusion(noise, VECTOR, keyword_weight=0.3)]
    assert fixed[:19] != [h.chunk_id for h in VECTOR][:19]


def test_when_both_legs_agree_nothing_changes() -> None:
    same = leg(*(h.chunk_id for h in VECTOR), top=12.0, step=0.5)
    assert fused(same, VECTOR, 0.3) == [h.chunk_id for h in VECTOR]


def test_agreeing_legs_fuse_at_full_weight() -> None:
    """Half the top 10 shared: the configured weight applies unchanged."""
    keyword = leg("v9", "v8", "v7", "v6", "v5", "a", "b", "c", "d", "e", top=12.0, step=1.0)
    assert agreement(keyword, VECTOR, 10) == 0.5 >= AGREEMENT_FULL
    assert agreement_scale(ADAPTIVE, keyword, VECTOR) == 1.0
    expected = [h.chunk_id for h in convex_fusion(keyword, VECTOR, keyword_weight=0.3)]
    assert fused(keyword, VECTOR, 0.3) == expected
    assert expected[:10] != [h.chunk_id for h in VECTOR][:10]  # the keyword leg counted


def test_partial_agreement_scales_the_keyword_weight() -> None:
    keyword = leg("v3", "x1", "x2", "x3", top=8.0)
    a = agreement(keyword, VECTOR, 10)
    assert a == pytest.approx(0.1)
    assert agreement_scale(ADAPTIVE, keyword, VECTOR) == pytest.approx(a / AGREEMENT_FULL)


def test_fixed_weights_are_not_scaled() -> None:
    convex = HybridParams(fusion="convex").weights
    assert convex.agreement_full == 0.0
    assert agreement_scale(convex, leg("x"), VECTOR) == 1.0
    assert agreement_scale(FusionWeights(0.3, 0.05, 5, 1.0), leg("x"), VECTOR) == 1.0
