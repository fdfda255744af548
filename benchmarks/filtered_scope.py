"""Filtered searches on PostgreSQL: sizing the scope from its documents, and the exact
keyword leg started from a small scope.

Two costs showed in every filtered search at 1M chunks (docs/scaling.md, "Filters at
1M"): deciding whether the scope is small (exact path) by counting up to 10,000 of its
chunks joined to their documents (25-77 ms), and, on the exact keyword path, reading
every chunk that holds a query term through the full-text index before the filter
dropped 99% of them (up to 870 ms). This benchmark times the statements as the store
builds them ("after") against the same statements built the earlier way ("before": the
scope counted chunk by chunk, the keyword hits always from the full-text index), taking
turns statement by statement on one connection, on a database left by
``benchmarks/scale.py``, and checks both return the same rows:

- the vector leg (top 10) and the exact keyword and hybrid statements (depth 100) under
  the selective filter (1% of documents) and the unselective one (~50%);
- the keyword index's plan query under each filter (where the scope is sized when the
  index is used) and the hybrid statement with the index's candidates under the
  unselective filter.

Then each search end to end through the store, under each filter, "after" only (the
"before" of the same database is the ``scale.py`` run that built it).

    python benchmarks/filtered_scope.py --index-dir /tmp/kwidx/1000000 \\
        --out benchmarks/results/filtered_scope-1m.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale
from feedback_leg import DEPTH, LIMIT, hybrid_statement, weights_for
from ragd.domain import Filters
from ragd.retrieval.terms import keyword_terms
from ragd.store.postgres.search import (
    filter_sql,
    keyword_plan_sql,
    keyword_sql,
    scope_size_ctes,
    vector_literal,
    vector_sql,
)

VARIANTS = ("before", "after")
FILTERED = {name: f for name, f in scale.FILTERS.items() if f}


def counted_scope(sql: str, params: dict[str, Any], filters: Filters) -> str:
    """``sql`` with its scope sized the earlier way: up to the cap of the scope's chunks
    counted, joined to their documents."""
    if "size_cap" not in params:
        return sql
    new = ",\n".join(scope_size_ctes(filters, dict(params), int(params["size_cap"])))
    assert new in sql, "the statement no longer holds scope_size_ctes as built"
    scope = "c.collection_id = ANY(:collection_ids) AND d.status = 'ready'" + filter_sql(
        filters, dict(params)
    )
    old = (
        "scope_size AS (SELECT count(*) AS chunks FROM (SELECT 1 FROM chunks AS c "
        f"JOIN documents AS d ON d.id = c.document_id WHERE {scope} LIMIT :size_cap) AS s)"
    )
    return sql.replace(new, old)


def statements(store: Any, scope: list[str], queries: list[scale.Query]) -> dict[str, list[Any]]:
    """Each query's statements by kind: ``{variant: (sql, params)}``."""
    index = store._index
    view = index.keyword_index.view()
    built: dict[str, list[Any]] = {}

    def add(kind: str, filters: Filters, before: Any, after: Any) -> None:
        sql, params = before
        built.setdefault(kind, []).append(
            {"before": (counted_scope(sql, params, filters), params), "after": after}
        )

    for q in queries:
        literal = vector_literal(q.vector)
        terms = keyword_terms(q.text)
        for name, filters in FILTERED.items():
            vector = vector_sql(
                literal, scale.DIM, scope, filters, LIMIT, exact_below=index.exact_below
            )
            add(f"vector {name}", filters, vector, vector)
            add(
                f"keyword exact {name}",
                filters,
                keyword_sql(terms, scope, filters, LIMIT),
                keyword_sql(
                    terms, scope, filters, LIMIT, keyword_exact_below=index.keyword_exact_below
                ),
            )

            small = index.keyword_exact_below
            add(
                f"hybrid exact {name}",
                filters,
                hybrid_statement(index, terms, literal, scope, filters, "search", None, 0),
                hybrid_statement(index, terms, literal, scope, filters, "search", None, small),
            )
            plan = keyword_plan_sql(
                terms,
                scope,
                filters,
                watermark=view.watermark,
                pending_cap=10_000,
                exact_cap=index.keyword_exact_below,
            )
            add(f"keyword index plan {name}", filters, plan, plan)
            candidates = index.keyword_candidates_for(terms, scope, filters, DEPTH)
            if candidates is not None:
                with_index = hybrid_statement(
                    index, terms, literal, scope, filters, "search", candidates, small
                )
                add(f"hybrid with index {name}", filters, with_index, with_index)
    return built


def run(conn: Any, local: Any, item: dict[str, Any], variant: str) -> tuple[float, Any]:
    sql, params = item[variant]
    if "exact_cap" in params and "pending_cap" in params:  # the index's plan query
        with conn.begin():
            started = time.perf_counter()
            row = conn.execute(text(sql), params).one()
            ms = (time.perf_counter() - started) * 1000
        # Above the cap the two only promise "at least the cap".
        return ms, [row.scope_chunks < params["exact_cap"], row.pending, tuple(row.lexemes or ())]
    return scale.timed_statement(conn, sql, params, local)


def store_searches(store: Any, scope: list[str], queries: list[scale.Query]) -> dict[str, Any]:
    """p50 / p99 of each search end to end under each filter (the keyword index on)."""
    result = {}
    for name, filters in FILTERED.items():
        for kind in ("keyword", "vector", "hybrid"):
            times = []
            for q in queries:
                terms = keyword_terms(q.text)
                started = time.perf_counter()
                if kind == "keyword":
                    store.keyword_search(terms, collection_ids=scope, filters=filters, limit=10)
                elif kind == "vector":
                    store.vector_search(q.vector, collection_ids=scope, filters=filters, limit=10)
                else:
                    store.hybrid_search(
                        terms,
                        q.vector,
                        collection_ids=scope,
                        filters=filters,
                        depth=DEPTH,
                        limit=LIMIT,
                        weights=weights_for("search"),
                    )
                times.append((time.perf_counter() - started) * 1000)
            result[f"{kind} {name}"] = scale.p50_p99(times)
            scale.log(f"store {kind} {name}: {result[f'{kind} {name}']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    scale.stored_index_arguments(parser, queries=50)
    parser.add_argument("--only", nargs="*", default=[], help="kinds containing one of these")
    parser.add_argument("--skip", nargs="*", default=[], help="kinds containing one of these")
    args = parser.parse_args()
    queries = scale.stored_queries(args.cache, args.queries)
    result: dict[str, Any] = {"queries": len(queries), "rounds": args.rounds}
    with scale.stored_collection(args.pgdata, args.index_dir) as (store, collection):
        result["collection_chunks"] = collection.chunk_count
        scope = [collection.id]
        store.keyword_search(["water"], collection_ids=scope, filters={}, limit=10)  # the index
        built = statements(store, scope, queries)
        local = store._index.local_settings[False]
        with store.engine.connect() as conn:
            for kind, work in built.items():
                if args.only and not any(part in kind for part in args.only):
                    continue
                if any(part in kind for part in args.skip):
                    continue
                result[kind] = scale.in_turns(
                    work, VARIANTS, lambda item, v: run(conn, local, item, v), args.rounds
                )
                scale.log(f"{kind}: {result[kind]}")
        result["store"] = store_searches(store, scope, queries)
    scale.report(result, args.out)


if __name__ == "__main__":
    main()
