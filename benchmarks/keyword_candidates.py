"""How many keyword-index candidates the exact re-score needs: latency and agreement.

On a database left by ``benchmarks/scale.py`` (``--pgdata``; its ``scale`` collection and a
keyword index built there, e.g. by ``--split-collections``), the keyword leg at limit 10
and the hybrid statement are timed with ``RAGD_KEYWORD_CANDIDATES`` at each value, the
values taking turns query by query so machine load falls on all alike, and the keyword
top 10 is compared with the exact statement's.

    python benchmarks/keyword_candidates.py --pgdata /tmp/ragd-scale-pg \\
        --index-dir /tmp/kwidx/split-10 --values 300,100,50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale
from ragd.config import load_settings
from ragd.retrieval.hybrid import HybridParams
from ragd.retrieval.terms import keyword_terms
from ragd.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pgdata", type=Path, default=Path(tempfile.gettempdir()) / "ragd-scale-pg"
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "ragd-scale-cache"
    )
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--values", default="300,100,50")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--agreement-queries", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    values = [int(v) for v in args.values.split(",")]
    corpus = scale.Corpus(
        scale.read_passages(), scale.anchor_embeddings(scale.read_passages(), args.cache)
    )
    while corpus.chunks < 10_000:
        corpus.next_doc()
    queries = scale.make_queries(corpus, args.queries)
    params = HybridParams()
    depth = max(10 * 5, params.min_depth)
    result: dict[str, Any] = {"values": values, "queries": len(queries)}
    with scale.postgres(args.pgdata) as new_database:
        url = new_database("ragd_scale", keep=True)
        exact: Any = open_store(load_settings(database_url=url, database_statement_timeout_ms=0))
        (collection,) = [c for c in exact.list_collections() if c.name == "scale"]
        scope = [collection.id]
        result["collection_chunks"] = collection.chunk_count
        stores: dict[int, Any] = {
            v: open_store(
                load_settings(
                    database_url=url,
                    keyword_index="tantivy",
                    keyword_index_dir=args.index_dir,
                    keyword_index_interval_s=0,
                    keyword_candidates=v,
                )
            )
            for v in values
        }
        try:
            timings: dict[int, dict[str, list[float]]] = {
                v: {"keyword": [], "hybrid": []} for v in values
            }
            for q in queries[:3]:  # warm up
                for store in stores.values():
                    store.keyword_search(
                        keyword_terms(q.text), collection_ids=scope, filters={}, limit=10
                    )
            for q in queries:
                terms = keyword_terms(q.text)
                for v, store in stores.items():
                    started = time.perf_counter()
                    store.keyword_search(terms, collection_ids=scope, filters={}, limit=10)
                    timings[v]["keyword"].append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    store.hybrid_search(
                        terms,
                        q.vector,
                        collection_ids=scope,
                        filters={},
                        depth=depth,
                        limit=10,
                        weights=params.weights,
                    )
                    timings[v]["hybrid"].append((time.perf_counter() - started) * 1000)
            same = {v: 0 for v in values}
            for q in queries[: args.agreement_queries]:
                terms = keyword_terms(q.text)
                want = [
                    h.chunk_id
                    for h in exact.keyword_search(terms, collection_ids=scope, filters={}, limit=10)
                ]
                for v, store in stores.items():
                    got = [
                        h.chunk_id
                        for h in store.keyword_search(
                            terms, collection_ids=scope, filters={}, limit=10
                        )
                    ]
                    same[v] += got == want
            for v in values:
                result[str(v)] = {
                    leg: {
                        "p50_ms": round(statistics.median(t), 2),
                        "p99_ms": round(scale.percentile(t, 99), 2),
                    }
                    for leg, t in timings[v].items()
                } | {"identical_top10": f"{same[v]}/{args.agreement_queries}"}
                scale.log(f"candidates {v}: {result[str(v)]}")
        finally:
            for store in stores.values():
                store.close()
            exact.close()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
