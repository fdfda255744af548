"""Reciprocal rank fusion of ranked lists from the retrieval legs."""

from __future__ import annotations

from collections.abc import Sequence

from ragd.domain import ScoredId


def reciprocal_rank_fusion(
    legs: Sequence[Sequence[ScoredId]], *, k: int = 60, weights: Sequence[float] | None = None
) -> list[ScoredId]:
    """Fuse by rank, not score: BM25 and cosine scores live on unrelated scales, while
    ranks are comparable. Each leg adds ``weight / (k + rank)`` for the ids it found."""
    weights = weights or [1.0] * len(legs)
    fused: dict[str, float] = {}
    for leg, weight in zip(legs, weights, strict=True):
        for rank, hit in enumerate(leg, start=1):
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight / (k + rank)
    ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [ScoredId(chunk_id, score) for chunk_id, score in ranked]
