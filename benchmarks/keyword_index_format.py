"""Tantivy's part of the keyword leg, by index format: the collection as a required
field (format 1) against terms that carry their collection (format 2), same run.

On a database left by ``benchmarks/scale.py`` (``--pgdata``, its ``scale`` collection),
with a format 1 index built by the previous release (``ragd reindex --keyword`` from a
checkout of it, into ``--format-1-dir``) and a format 2 one by this release (into
``--format-2-dir``; built here when missing), each query's candidates are asked of both
indexes in turn, query by query, so machine load falls on both alike. Reports the p50 /
p99 of the tantivy search alone and whether both give the same candidates (they need not:
format 2 counts document frequency per collection, as ragd's BM25 does).

    python benchmarks/keyword_index_format.py --pgdata /tmp/ragd-scale-pg \\
        --format-1-dir /tmp/kwidx/f1 --format-2-dir /tmp/kwidx/1000000 --limit 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tantivy
from sqlalchemy import text

import scale
from ragd.config import load_settings
from ragd.retrieval.terms import keyword_terms
from ragd.store import open_store
from ragd.store.postgres.search import keyword_plan_sql
from ragd.store.postgres.search_index import PENDING_CAP


def format_1_search(directory: Path) -> Any:
    """A search of the previous release's index shape, as it asked it."""
    index = tantivy.Index.open(str(directory / "tantivy"))
    searcher, schema = index.searcher(), index.schema
    q, occur = tantivy.Query, tantivy.Occur

    def search(lexemes: list[str], scope: list[str], limit: int) -> list[int]:
        terms = q.boolean_query(
            [(occur.Should, q.term_query(schema, "lexemes", t)) for t in lexemes]
        )
        within = q.const_score_query(q.term_set_query(schema, "collection", scope), 0.0)
        query = q.boolean_query([(occur.Must, terms), (occur.Must, within)])
        hits = searcher.search(query, limit, count=False).hits
        ids: list[Any] = searcher.fast_field_values("id", [a for _, a in hits])
        return [int(i) for i in ids]

    return search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    scale.stored_database_arguments(parser)
    parser.add_argument("--format-1-dir", type=Path, required=True)
    parser.add_argument("--format-2-dir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    queries = scale.stored_queries(args.cache, args.queries)
    with scale.postgres(args.pgdata) as new_database:
        url = new_database("ragd_scale", keep=True)
        store: Any = open_store(
            load_settings(
                database_url=url,
                keyword_index="tantivy",
                keyword_index_dir=args.format_2_dir,
                keyword_index_interval_s=0,
            )
        )
        try:
            (collection,) = [c for c in store.list_collections() if c.name == "scale"]
            scope = [collection.id]
            index = store._index.keyword_index
            if index.view() is None:
                scale.log(f"format 2: {store.rebuild_keyword_index()} chunks indexed")
            view = index.view()
            with store.engine.connect() as conn:
                # The lexemes as the store asks them of the index: its own plan statement.
                lexemes = []
                for q in queries:
                    sql, params = keyword_plan_sql(
                        keyword_terms(q.text),
                        scope,
                        {},
                        watermark=view.watermark,
                        pending_cap=PENDING_CAP,
                        exact_cap=0,
                    )
                    lexemes.append(list(conn.execute(text(sql), params).one().lexemes or []))
        finally:
            store.close()
    old = format_1_search(args.format_1_dir)
    times: dict[str, list[float]] = {"format 1": [], "format 2": []}
    same = 0
    for round_ in range(args.rounds):
        for words in lexemes:
            started = time.perf_counter()
            first = old(words, scope, args.limit)
            times["format 1"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            second = view.candidates(words, scope, args.limit).ids
            times["format 2"].append((time.perf_counter() - started) * 1000)
            if round_ == 0:
                same += set(first) == set(second)
    result: dict[str, Any] = {
        "collection_chunks": collection.chunk_count,
        "queries": len(lexemes),
        "rounds": args.rounds,
        "limit": args.limit,
        "same_candidate_set": f"{same}/{len(lexemes)}",
    }
    for name, samples in times.items():
        result[name] = scale.p50_p99(samples, digits=3)
    scale.report(result, args.out)


if __name__ == "__main__":
    main()
