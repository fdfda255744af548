"""Hybrid ranking: keyword and vector legs, normalized-score fusion, vector feedback.

Measured on the msmarco subset with all-MiniLM-L6-v2 (benchmarks/retrieval.py,
docs/performance.md): plain reciprocal rank fusion scores *below* the vector leg alone,
because it gives the weaker keyword leg an equal vote by rank. Two changes earn the fusion:

* Convex combination of min-max normalized scores, the keyword leg weighted 0.3: scores
  carry how far ahead a hit is, which ranks throw away.
* Pseudo-relevance feedback on the vector leg: the query vector is moved toward the mean
  of the first pass's best chunks (Rocchio) and the vector leg is searched again. The
  first pass is already hybrid, so keyword evidence steers the second vector search.

* Adaptive weights (the default fusion, ``adaptive``): both keyword weights are scaled
  by ``min(1, agreement / 0.4)``, the agreement being the share of the legs' top 10
  chunks they have in common. Where the legs agree the fusion is the convex one above;
  where a leg is noise for a query (a paraphrase BM25 cannot match) they share little,
  and the vector leg is barely moved. Measured on msmarco and on variants built from
  it and from business-reports (benchmarks/fusion_conditions.py, docs/performance.md).

Filters apply inside every leg, including the feedback search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from ragd.domain import FeedbackLeg, Filters, FusionWeights, ScoredId, Vector
from ragd.embedding.base import Embedder
from ragd.retrieval.fusion import reciprocal_rank_fusion
from ragd.retrieval.query_vector import embed_beside, embed_in_turn
from ragd.retrieval.terms import keyword_terms
from ragd.store.base import SearchIndex, SnapshotSearch, Store

Fusion = Literal["adaptive", "convex", "rrf"]


AGREEMENT_FULL = 0.4
AGREEMENT_DEPTH = 10


@dataclass(frozen=True)
class HybridParams:
    keyword_weight: float = 0.3
    # The keyword weight after the feedback round. The first pass (0.3) lets keyword
    # evidence choose the feedback chunks; the final pass then mostly trusts the fed-back
    # vector leg, so a strong embedder is not overruled by BM25 (docs/performance.md).
    final_keyword_weight: float = 0.05
    feedback_docs: int = 5
    feedback_weight: float = 1.0
    fusion: Fusion = "adaptive"
    # ``search``: the fed-back vector searches the collection again; ``rescore``: it
    # re-scores the first pass's candidates instead (one nearest-neighbour search fewer).
    feedback_leg: FeedbackLeg = "search"
    rrf_k: int = 60
    min_depth: int = 100
    # Where the legs run in Python: embed the query on a helper thread while the keyword
    # leg runs (ragd.retrieval.query_vector); off, one after the other.
    embed_beside_keyword: bool = True
    # Adaptive fusion: the keyword weights at full strength once this share of the two
    # legs' top ``agreement_depth`` chunks is common to both; less agreement, less weight.
    agreement_full: float = AGREEMENT_FULL
    agreement_depth: int = AGREEMENT_DEPTH

    @property
    def weights(self) -> FusionWeights:
        return FusionWeights(
            self.keyword_weight,
            self.final_keyword_weight,
            self.feedback_docs,
            self.feedback_weight,
            agreement_full=self.agreement_full if self.fusion == "adaptive" else 0.0,
            agreement_depth=self.agreement_depth,
            feedback_leg=self.feedback_leg,
        )


def agreement(keyword: Sequence[ScoredId], vector: Sequence[ScoredId], depth: int) -> float:
    """The share of the legs' top ``depth`` chunks that both found, in [0, 1]. Low when
    one leg is noise for this query (a paraphrase the keywords miss, a term the
    embedder does not know), so that leg should not move the other much."""
    if depth <= 0:
        return 0.0
    top_keyword = {hit.chunk_id for hit in keyword[:depth]}
    common = sum(1 for hit in vector[:depth] if hit.chunk_id in top_keyword)
    return common / depth


def agreement_scale(
    weights: FusionWeights, keyword: Sequence[ScoredId], vector: Sequence[ScoredId]
) -> float:
    """What the keyword weights are multiplied by: 1 for fixed weights, else
    ``min(1, agreement / agreement_full)``."""
    if weights.agreement_full <= 0:
        return 1.0
    return min(1.0, agreement(keyword, vector, weights.agreement_depth) / weights.agreement_full)


def min_max(hits: Sequence[ScoredId]) -> dict[str, float]:
    """Scores mapped onto [0, 1] within one leg's candidate list."""
    if not hits:
        return {}
    scores = [hit.score for hit in hits]
    low, high = min(scores), max(scores)
    span = high - low
    return {hit.chunk_id: (hit.score - low) / span if span > 0 else 1.0 for hit in hits}


def convex_fusion(
    keyword: Sequence[ScoredId], vector: Sequence[ScoredId], *, keyword_weight: float
) -> list[ScoredId]:
    """``w·kw + (1−w)·vec`` over normalized scores; a leg that missed a chunk adds 0."""
    kw, vec = min_max(keyword), min_max(vector)
    fused = {
        chunk_id: keyword_weight * kw.get(chunk_id, 0.0)
        + (1 - keyword_weight) * vec.get(chunk_id, 0.0)
        for chunk_id in kw.keys() | vec.keys()
    }
    ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [ScoredId(chunk_id, score) for chunk_id, score in ranked]


@runtime_checkable
class HybridStore(Protocol):
    """A store that runs the whole ranking below in the database, in one round trip
    (PostgreSQL); it must rank exactly as :meth:`HybridRanker.rank` does."""

    def hybrid_search(
        self,
        terms: Sequence[str],
        vector: Vector,
        *,
        collection_ids: Sequence[str],
        filters: Filters,
        depth: int,
        limit: int,
        weights: FusionWeights,
    ) -> list[ScoredId]: ...


class HybridRanker:
    """Runs both legs for one query and fuses them (with one feedback round)."""

    def __init__(self, store: Store, embedder: Embedder, params: HybridParams) -> None:
        self.store = store
        self.embedder = embedder
        self.params = params

    def rank(
        self, query: str, *, collection_ids: list[str], filters: Filters, top_k: int
    ) -> list[ScoredId]:
        depth = max(top_k * 5, self.params.min_depth)
        if isinstance(self.store, HybridStore) and self.params.fusion != "rrf":
            return self.store.hybrid_search(
                keyword_terms(query),
                self.embedder.embed_query(query),
                collection_ids=collection_ids,
                filters=filters,
                depth=depth,
                limit=top_k,
                weights=self.params.weights,
            )
        terms = keyword_terms(query)
        embed = embed_beside if self.params.embed_beside_keyword else embed_in_turn
        query_vector = embed(self.embedder, query)

        def rank_over(legs: SearchIndex) -> list[ScoredId]:
            keyword = legs.keyword_search(
                terms, collection_ids=collection_ids, filters=filters, limit=depth
            )

            def vector_search(vector: Vector) -> list[ScoredId]:
                return legs.vector_search(
                    vector, collection_ids=collection_ids, filters=filters, limit=depth
                )

            def stored_vectors(chunk_ids: list[str]) -> Mapping[str, Vector]:
                return legs.get_vectors(chunk_ids)

            return rank_with_feedback(
                keyword,
                query_vector(),
                self.params.weights,
                vector_search=vector_search,
                stored_vectors=stored_vectors,
                depth=depth,
                fuse=self._fuse,
            )

        # An embedded store runs all the legs in one transaction, which waits for the
        # query's vector after its keyword leg (a read snapshot holds no lock).
        if isinstance(self.store, SnapshotSearch):
            return self.store.search_snapshot(rank_over)
        return rank_over(self.store)

    def _fuse(
        self, keyword: list[ScoredId], vector: list[ScoredId], keyword_weight: float
    ) -> list[ScoredId]:
        if self.params.fusion == "rrf":
            return reciprocal_rank_fusion([keyword, vector], k=self.params.rrf_k)
        return convex_fusion(keyword, vector, keyword_weight=keyword_weight)


Fuse = Callable[[list[ScoredId], list[ScoredId], float], list[ScoredId]]


def _convex(
    keyword: list[ScoredId], vector: list[ScoredId], keyword_weight: float
) -> list[ScoredId]:
    return convex_fusion(keyword, vector, keyword_weight=keyword_weight)


def rank_with_feedback(
    keyword: list[ScoredId],
    query_vector: Vector,
    weights: FusionWeights,
    *,
    vector_search: Callable[[Vector], list[ScoredId]],
    stored_vectors: Callable[[list[str]], Mapping[str, Vector]],
    depth: int,
    fuse: Fuse = _convex,
) -> list[ScoredId]:
    """The hybrid ranking once the keyword leg is in: the first vector pass, the
    agreement, the first fusion, the feedback vector, the second pass and the final
    fusion. One function for every store that fuses in Python, so an embedded store that
    runs it inside one snapshot (SQLite) ranks exactly as the ranker does over the legs."""
    vector = vector_search(query_vector)
    # The agreement is measured once, on the first-pass legs, as the SQL does.
    scale = agreement_scale(weights, keyword, vector)
    fused = fuse(keyword, vector, weights.keyword_weight * scale)
    feedback = feedback_vector(query_vector, fused, weights, stored_vectors)
    if feedback is None:
        return fused
    if weights.feedback_leg == "rescore":
        vector = rescored(feedback, first_pass_ids(keyword, vector), stored_vectors, depth)
    else:
        vector = vector_search(feedback)
    return fuse(keyword, vector, weights.final_keyword_weight * scale)


def first_pass_ids(keyword: Sequence[ScoredId], vector: Sequence[ScoredId]) -> list[str]:
    """Every chunk either first-pass leg found, once each."""
    return list(dict.fromkeys([hit.chunk_id for hit in vector] + [hit.chunk_id for hit in keyword]))


def rescored(
    target: Vector,
    chunk_ids: list[str],
    stored_vectors: Callable[[list[str]], Mapping[str, Vector]],
    depth: int,
) -> list[ScoredId]:
    """The vector leg of the feedback round without a second search: the first pass's
    candidates scored by cosine to ``target``, the best ``depth`` of them. A chunk
    neither leg found cannot enter, which is what the saved search costs; on the shared
    datasets it changed almost no top 10 (docs/performance.md). Vectors of another
    dimension (a collection on another model) are left out, as the search leaves them."""
    vectors = stored_vectors(chunk_ids)
    ids = [chunk_id for chunk_id, vector in vectors.items() if vector.shape == target.shape]
    if not ids:
        return []
    matrix = np.stack([vectors[chunk_id] for chunk_id in ids]).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(target))
    scores = (matrix @ target) / np.where(norms > 0, norms, 1.0)
    ranked = sorted(zip(ids, scores.tolist(), strict=True), key=lambda hit: (-hit[1], hit[0]))
    return [ScoredId(chunk_id, float(score)) for chunk_id, score in ranked[:depth]]


def feedback_vector(
    query_vector: Vector,
    fused: list[ScoredId],
    weights: FusionWeights,
    stored_vectors: Callable[[list[str]], Mapping[str, Vector]],
) -> Vector | None:
    """Rocchio: the query moved toward the mean of the best first-pass chunks."""
    if weights.feedback_docs <= 0 or not fused:
        return None
    best = [hit.chunk_id for hit in fused[: weights.feedback_docs]]
    vectors = list(stored_vectors(best).values())
    if not vectors:
        return None
    moved = query_vector + weights.feedback_weight * np.mean(vectors, axis=0)
    norm = float(np.linalg.norm(moved))
    if norm == 0:
        return None
    result: Vector = (moved / norm).astype(np.float32)
    return result
