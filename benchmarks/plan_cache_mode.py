"""Per-run plans against one generic plan for the statements the keyword index feeds.

On a database left by ``benchmarks/scale.py`` (``--pgdata``, its ``scale`` collection)
and a keyword index built there (``--index-dir``), each query's statements are built
once, as the store builds them: the keyword re-score of the index's candidates (limit
10) and the unfiltered hybrid statement (depth 100). Each then runs on one connection
(prepared by psycopg from its fifth run) under PostgreSQL's choice of plan
(``plan_cache_mode`` auto, as before) and under ``force_generic_plan`` (what the store now
sets for them), the two taking turns statement by statement, and the rows are compared.

    python benchmarks/plan_cache_mode.py --index-dir /tmp/kwidx/1000000 \\
        --out benchmarks/results/plan_cache_mode-1m.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


import scale
from ragd.retrieval.hybrid import HybridParams
from ragd.retrieval.terms import keyword_terms
from ragd.store.postgres.search import hybrid_sql, keyword_sql, vector_literal
from ragd.store.postgres.search_index import local_settings_sql

MODES = ("auto", "force_generic_plan")


def statements(store: Any, scope: list[str], queries: list[scale.Query]) -> dict[str, list[Any]]:
    """Each query's keyword re-score and hybrid statement, with the index's candidates."""
    index = store._index
    weights = HybridParams().weights
    built: dict[str, list[Any]] = {"keyword": [], "hybrid": []}
    for q in queries:
        terms = keyword_terms(q.text)
        few = index.keyword_candidates_for(terms, scope, {}, 10)
        built["keyword"].append(keyword_sql(terms, scope, {}, 10, few))
        many = index.keyword_candidates_for(terms, scope, {}, 100)
        literal = vector_literal(q.vector)
        built["hybrid"].append(
            hybrid_sql(
                terms,
                literal,
                scale.DIM,
                scope,
                {},
                depth=100,
                limit=10,
                weights=weights,
                exact_below=index.exact_below,
                candidates=many,
            )
        )
    return built


def run(conn: Any, sql: str, params: dict[str, Any], mode: str) -> tuple[float, list[int]]:
    local = {} if mode == "auto" else {"plan_cache_mode": mode}
    return scale.timed_statement(conn, sql, params, local_settings_sql(local))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    scale.stored_index_arguments(parser, queries=100)
    args = parser.parse_args()
    queries = scale.stored_queries(args.cache, args.queries)
    result: dict[str, Any] = {"queries": len(queries), "rounds": args.rounds}
    with scale.stored_collection(args.pgdata, args.index_dir) as (store, collection):
        result["collection_chunks"] = collection.chunk_count
        built = statements(store, [collection.id], queries)
        with store.engine.connect() as conn:
            for kind, work in built.items():
                result[kind] = scale.in_turns(
                    work, MODES, lambda item, mode: run(conn, item[0], item[1], mode), args.rounds
                )
                scale.log(f"{kind}: {result[kind]}")
    scale.report(result, args.out)


if __name__ == "__main__":
    main()
