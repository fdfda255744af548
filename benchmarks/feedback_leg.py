"""The hybrid's feedback round at scale: a second vector search against re-scoring the
first pass's candidates (``RAGD_HYBRID_FEEDBACK_LEG``), on PostgreSQL.

On a database left by ``benchmarks/scale.py`` (``--pgdata``, its ``scale`` collection)
and a keyword index built there (``--index-dir``), each query runs as an unfiltered
hybrid search (depth 100, top 10) in two ways, taking turns query by query:

- ``statement``: the hybrid statement alone, built once per query as the store builds
  it (the index's candidates, a generic plan, the store's parallel workers), on one
  connection;
- ``store``: ``PostgresStore.hybrid_search`` end to end (the keyword index's round trip,
  the candidates, the statement).

Reported: p50 / p99 ms of each feedback leg and how many queries got the same top 10
(and the mean overlap of the two top 10s).

    python benchmarks/feedback_leg.py --index-dir /tmp/kwidx/1000000 \\
        --out benchmarks/results/feedback_leg-1m.json
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


import scale
from ragd.domain import FeedbackLeg, Filters, FusionWeights
from ragd.retrieval.hybrid import HybridParams
from ragd.retrieval.terms import keyword_terms
from ragd.store.postgres.search import hybrid_sql, vector_literal

LEGS: tuple[FeedbackLeg, ...] = ("search", "rescore")
DEPTH, LIMIT = 100, 10


def weights_for(leg: FeedbackLeg) -> FusionWeights:
    return replace(HybridParams().weights, feedback_leg=leg)


def hybrid_statement(
    index: Any,
    terms: list[str],
    literal: str,
    scope: list[str],
    filters: Filters,
    leg: FeedbackLeg,
    candidates: list[int] | None,
    keyword_exact_below: int = 0,
) -> tuple[str, dict[str, Any]]:
    """The hybrid statement (depth 100, top 10) as the store builds it on ``index``
    (``keyword_exact_below``: pass the store's own for a filtered exact keyword leg
    started from a small scope; 0 reads its hits from the full-text index)."""
    return hybrid_sql(
        terms,
        literal,
        scale.DIM,
        scope,
        filters,
        depth=DEPTH,
        limit=LIMIT,
        weights=weights_for(leg),
        exact_below=index.exact_below,
        candidates=candidates,
        keyword_exact_below=keyword_exact_below,
    )


def statement_rounds(
    store: Any, scope: list[str], queries: list[scale.Query], rounds: int
) -> dict[str, Any]:
    index = store._index
    built = []
    for q in queries:
        terms = keyword_terms(q.text)
        candidates = index.keyword_candidates_for(terms, scope, {}, DEPTH)
        literal = vector_literal(q.vector)
        built.append(
            {
                leg: hybrid_statement(index, terms, literal, scope, {}, leg, candidates)
                for leg in LEGS
            }
        )
    times: dict[str, list[float]] = {leg: [] for leg in LEGS}
    tops: list[dict[str, list[int]]] = []
    local = index.local_settings[True]  # as the store runs it: generic plan, its workers
    with store.engine.connect() as conn:
        for _ in range(rounds):
            for statements in built:
                top: dict[str, list[int]] = {}
                for leg in LEGS:
                    ms, top[leg] = scale.timed_statement(conn, *statements[leg], local)
                    times[leg].append(ms)
                tops.append(top)
    return summary(times, tops)


def store_rounds(
    store: Any, scope: list[str], queries: list[scale.Query], rounds: int
) -> dict[str, Any]:
    times: dict[str, list[float]] = {leg: [] for leg in LEGS}
    tops: list[dict[str, list[Any]]] = []
    for _ in range(rounds):
        for q in queries:
            terms = keyword_terms(q.text)
            top: dict[str, list[Any]] = {}
            for leg in LEGS:
                started = time.perf_counter()
                hits = store.hybrid_search(
                    terms,
                    q.vector,
                    collection_ids=scope,
                    filters={},
                    depth=DEPTH,
                    limit=LIMIT,
                    weights=weights_for(leg),
                )
                times[leg].append((time.perf_counter() - started) * 1000)
                top[leg] = [hit.chunk_id for hit in hits]
            tops.append(top)
    return summary(times, tops)


def summary(times: dict[str, list[float]], tops: list[dict[str, list[Any]]]) -> dict[str, Any]:
    same = sum(top["search"] == top["rescore"] for top in tops)
    overlap = [len(set(top["search"]) & set(top["rescore"])) / LIMIT for top in tops]
    return {
        **{leg: scale.p50_p99(t) for leg, t in times.items()},
        "same_top10": f"{same}/{len(tops)}",
        "mean_overlap_at_10": round(sum(overlap) / len(overlap), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    scale.stored_index_arguments(parser, queries=100)
    args = parser.parse_args()
    queries = scale.stored_queries(args.cache, args.queries)
    result: dict[str, Any] = {"queries": len(queries), "rounds": args.rounds, "depth": DEPTH}
    with scale.stored_collection(args.pgdata, args.index_dir) as (store, collection):
        result["collection_chunks"] = collection.chunk_count
        scope = [collection.id]
        store_rounds(store, scope, queries[:10], 1)  # warm the caches and the index
        for name, rounds in (("statement", statement_rounds), ("store", store_rounds)):
            result[name] = rounds(store, scope, queries, args.rounds)
            scale.log(f"{name}: {result[name]}")
    scale.report(result, args.out)


if __name__ == "__main__":
    main()
