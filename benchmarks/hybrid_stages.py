"""Where a new query's hybrid search spends its time, stage by stage (issue 17, §3).

On the query-latency benchmark's SQLite collection (run ``benchmarks/query_latency.py``
once to build it), each judged query goes through the stages of
``SearchService.search`` one after the other, each timed on its own: the collection
lookup, the query embedding (ONNX, query cache off), then inside one search snapshot the
keyword leg, the first vector pass and the rest of the ranking (fusion, feedback vectors,
second vector pass, final fusion), then reading the hits. The stages run in turn here,
so their sum is a search without the embedding beside the keyword leg.

    .venv/bin/python benchmarks/hybrid_stages.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from query_latency import COLLECTION, DATASETS, collection_id
from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import ScoredId
from ragd.retrieval.hybrid import rank_with_feedback
from ragd.retrieval.terms import keyword_terms
from ragd.services.evaluation.beir import load_beir
from ragd.services.evaluation.metrics import percentile
from ragd.store.base import SearchIndex, SnapshotSearch
from ragd.telemetry.logging import configure_logging

STAGES = ("scope", "embed", "keyword", "vector", "feedback and fusion", "hits", "total")


def one_search(container: Container, scope: str, query: str) -> dict[str, float]:
    marks = {"start": time.perf_counter()}
    container.collections.get(scope, counts=False)
    marks["scope"] = time.perf_counter()
    query_vector = container.embedder.embed_query(query)
    marks["embed"] = time.perf_counter()
    params = container.search.hybrid.params
    depth = max(10 * 5, params.min_depth)

    def work(legs: SearchIndex) -> list[ScoredId]:
        terms = keyword_terms(query)
        keyword = legs.keyword_search(terms, collection_ids=[scope], filters={}, limit=depth)
        marks["keyword"] = time.perf_counter()
        first = legs.vector_search(query_vector, collection_ids=[scope], filters={}, limit=depth)
        marks["vector"] = time.perf_counter()
        passes = iter([first])

        def vector_search(vector: Any) -> list[ScoredId]:
            done = next(passes, None)  # the first pass is the one just timed
            if done is not None:
                return done
            return legs.vector_search(vector, collection_ids=[scope], filters={}, limit=depth)

        return rank_with_feedback(
            keyword,
            query_vector,
            params.weights,
            vector_search=vector_search,
            stored_vectors=legs.get_vectors,
            depth=depth,
        )

    store = container.store
    assert isinstance(store, SnapshotSearch), "the stages are those of the embedded store"
    ranked = store.search_snapshot(work)
    marks["feedback and fusion"] = time.perf_counter()
    store.get_chunks([hit.chunk_id for hit in ranked[:10]])
    marks["hits"] = time.perf_counter()
    order = ["start", *STAGES[:-1]]
    took = {stage: (marks[stage] - marks[before]) * 1000 for before, stage in pairwise(order)}
    took["total"] = (marks["hits"] - marks["start"]) * 1000
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/ragd-query-latency"))
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings(
        data_dir=str(args.data_dir), inprocess_worker=False, query_cache_size=0
    )
    container = Container(settings)
    try:
        container.store.migrate()
        scope = collection_id(container, args.datasets_dir, 5000, COLLECTION)
        queries = list(load_beir(args.datasets_dir / "msmarco").queries.values())
        samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
        for round_ in range(args.rounds + 1):  # the first round warms up
            for query in queries:
                took = one_search(container, scope, query)
                if round_:
                    for stage in STAGES:
                        samples[stage].append(took[stage])
    finally:
        container.close()
    report = {stage: round(percentile(s, 50), 2) for stage, s in samples.items()}
    print(json.dumps({"searches": len(samples["total"]), "p50_ms": report}, indent=1))


if __name__ == "__main__":
    main()
