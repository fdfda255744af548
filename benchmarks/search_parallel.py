"""Search statements with and without parallel workers on PostgreSQL.

EXPLAIN ANALYZE of the hybrid statement at 1M chunks showed each vector CTE spending
~7 ms in a Gather Merge whose branch never runs: the exact branch of a vector search
(taken only when the scope is small) is planned as a parallel sort over every chunk,
and its workers are started before its one-time filter turns it off. This benchmark
times the search statements as the store builds them, on a database left by
``benchmarks/scale.py``, with the server's ``max_parallel_workers_per_gather`` and with
0 (what ragd now sets for its search statements), the two taking turns statement by
statement on one connection, and checks that both return the same rows:

- the vector leg (top 10) unfiltered, under the selective filter (1%: the exact path)
  and under the unselective one (~50%);
- the exact keyword statement (top 10) and the exact hybrid statement (depth 100, the
  keyword leg without the index) under each filter;
- the unfiltered hybrid statement (depth 100, top 10) with the keyword index's
  candidates on its generic plan, with each feedback leg.

    python benchmarks/search_parallel.py --index-dir /tmp/kwidx/1000000 \\
        --out benchmarks/results/search_parallel-1m.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text

import scale
from feedback_leg import DEPTH, LEGS, LIMIT, hybrid_statement
from ragd.retrieval.terms import keyword_terms
from ragd.store.postgres.search import keyword_sql, vector_literal, vector_sql
from ragd.store.postgres.search_index import local_settings_sql

WORKERS = ("workers server", "workers 0")


def statements(store: Any, scope: list[str], queries: list[scale.Query]) -> dict[str, list[Any]]:
    """Each query's statements by kind: ``(sql, params, generic plan)``."""
    index = store._index
    built: dict[str, list[Any]] = {}
    for q in queries:
        literal = vector_literal(q.vector)
        for name, filters in scale.FILTERS.items():
            sql, params = vector_sql(
                literal, scale.DIM, scope, filters, LIMIT, exact_below=index.exact_below
            )
            built.setdefault(f"vector {name}", []).append((sql, params, False))
        terms = keyword_terms(q.text)
        for name, filters in scale.FILTERS.items():
            sql, params = keyword_sql(terms, scope, filters, LIMIT)
            built.setdefault(f"keyword exact {name}", []).append((sql, params, False))
            sql, params = hybrid_statement(index, terms, literal, scope, filters, "search", None)
            built.setdefault(f"hybrid exact {name}", []).append((sql, params, False))
        candidates = index.keyword_candidates_for(terms, scope, {}, DEPTH)
        for leg in LEGS:
            sql, params = hybrid_statement(index, terms, literal, scope, {}, leg, candidates)
            built.setdefault(f"hybrid {leg}", []).append((sql, params, True))
    return built


def run(conn: Any, statement: tuple[str, dict[str, Any], bool], workers: str) -> tuple[float, Any]:
    sql, params, generic = statement
    local = {"plan_cache_mode": "force_generic_plan"} if generic else {}
    if workers != "workers server":
        local["max_parallel_workers_per_gather"] = workers.removeprefix("workers ")
    return scale.timed_statement(conn, sql, params, local_settings_sql(local))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    scale.stored_index_arguments(parser, queries=50)
    parser.add_argument("--only", nargs="*", default=[], help="kinds containing one of these")
    args = parser.parse_args()
    queries = scale.stored_queries(args.cache, args.queries)
    result: dict[str, Any] = {"queries": len(queries), "rounds": args.rounds}
    with scale.stored_collection(args.pgdata, args.index_dir) as (store, collection):
        result["collection_chunks"] = collection.chunk_count
        built = statements(store, [collection.id], queries)
        with store.engine.connect() as conn:
            with conn.begin():
                server = conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
            result["server_max_parallel_workers_per_gather"] = server
            for kind, work in built.items():
                if args.only and not any(part in kind for part in args.only):
                    continue
                result[kind] = scale.in_turns(
                    work, WORKERS, lambda item, w: run(conn, item, w), args.rounds
                )
                scale.log(f"{kind}: {result[kind]}")
    scale.report(result, args.out)


if __name__ == "__main__":
    main()
