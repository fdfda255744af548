"""Where a chunk row keeps its ``tsvector``: out of line (TOAST) or in the row.

A synthetic chunk row is ~2.8 kB (its 1.5 kB vector, kept inline, its text and its
``tsvector``), past the ~2 kB at which PostgreSQL moves long values to the TOAST table, so
the keyword leg read each hit's ``tsvector`` through the TOAST index. This benchmark
copies the chunks of the selective filter's documents (1% of a database left by
``benchmarks/scale.py``, ~10k chunks) into one table per layout, with ``chunks``' columns
and storage:

- ``out of line``: PostgreSQL's default for the ``tsvector`` (ragd's layout);
- ``tsvector in row``: ``search_tsv`` with ``STORAGE MAIN``: the text moves out first, the
  ``tsvector`` is compressed in place if need be;
- ``whole rows``: ``toast_tuple_target`` 4080, every row below 4 kB whole;

and times in turns on one connection, per query:

- ``match``: every chunk tested against the query's terms (what the exact keyword leg
  does from a small filtered scope);
- ``bm25 input``: the ``tsvector`` and length of 300 chunks looked up by id (what the
  keyword index's re-score reads);
- ``nearest``: the 10 nearest chunks by exact cosine (what the exact vector leg reads).

Reported: p50 / p99 ms per layout and the tables' heap and TOAST sizes. With
``--write-rounds N``, also what the ``tsvector`` in the row costs writers on the 1M table
itself: ``search_tsv``'s storage switched between EXTENDED and MAIN (for rows written from
then on), a 2,000-chunk document written through the store's job path (add, claim,
complete) and deleted, the two taking turns N times each.

    python benchmarks/chunk_storage.py --write-rounds 4 \\
        --out benchmarks/results/chunk_storage-1m.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale
from ragd.retrieval.terms import keyword_terms
from ragd.store.postgres.search import vector_literal

LAYOUTS = {
    "out of line": "",
    "tsvector in row": "",
    "whole rows": " WITH (toast_tuple_target = 4080)",
}
TABLES = {
    "out of line": "bench_chunks_default",
    "tsvector in row": "bench_chunks_tsv_main",
    "whole rows": "bench_chunks_whole",
}
# search_tsv's storage on the 1M table, per layout written in --write-rounds.
WRITE_LAYOUTS = {"out of line": "EXTENDED", "tsvector in row": "MAIN"}


def copy_tables(conn: Any) -> dict[str, Any]:
    """One copy of the selective filter's chunks per layout, and their sizes in bytes."""
    sizes = {}
    for layout, options in LAYOUTS.items():
        table = TABLES[layout]
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        # ``chunks``' own columns and storage (the vector kept inline, as 0004 sets it).
        conn.execute(text(f"CREATE TABLE {table} (LIKE chunks INCLUDING STORAGE){options}"))
        storage = "MAIN" if layout == "tsvector in row" else "EXTENDED"
        conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN search_tsv SET STORAGE {storage}"))
        conn.execute(
            text(
                f"INSERT INTO {table} SELECT c.* FROM chunks AS c "
                "JOIN documents AS d ON d.id = c.document_id "
                "WHERE d.metadata @> CAST(:f AS jsonb) ORDER BY c.id"
            ),
            {"f": '{"tenant": "t7"}'},
        )
        conn.execute(text(f"ALTER TABLE {table} ADD PRIMARY KEY (id)"))
        conn.execute(text(f"VACUUM ANALYZE {table}"))
        sizes[layout] = (
            conn.execute(
                text(
                    "SELECT pg_relation_size(c.oid) AS heap, "
                    "coalesce(pg_relation_size(c.reltoastrelid), 0) AS toast, "
                    "(SELECT count(*) FROM " + table + ") AS rows "
                    "FROM pg_class AS c WHERE c.relname = :t"
                ),
                {"t": table},
            )
            .one()
            ._asdict()
        )
    return sizes


def statements(query: scale.Query, ids: list[int]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each measured statement, ``{table}`` standing for the layout's table."""
    terms = " ".join(keyword_terms(query.text))
    return {
        "match": (
            "SELECT count(*) AS id FROM {table} WHERE ts_match_vq(search_tsv, "
            "(SELECT string_agg(quote_literal(u.lexeme), ' | ')::tsquery "
            "FROM unnest(to_tsvector('english'::regconfig, ragd_fold(:q))) AS u))",
            {"q": terms},
        ),
        "bm25 input": (
            "SELECT sum(length(search_tsv) + search_len) AS id FROM {table} "
            "WHERE id = ANY(CAST(:ids AS bigint[]))",
            {"ids": ids},
        ),
        "nearest": (
            "SELECT id FROM {table} ORDER BY embedding <=> CAST(:v AS vector), id LIMIT 10",
            {"v": vector_literal(query.vector)},
        ),
    }


def timed(conn: Any, sql: str, params: dict[str, Any]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    rows = conn.execute(text(sql), params).all()
    return (time.perf_counter() - started) * 1000, [row.id for row in rows]


def write_rounds(url: str, cache: Path, rounds: int) -> dict[str, Any]:
    """Chunks/s of writing, and seconds of deleting, a 2,000-chunk document per layout."""
    from ragd.config import load_settings
    from ragd.store import open_store

    passages = scale.read_passages()
    corpus = scale.Corpus(passages, scale.anchor_embeddings(passages, cache))
    store: Any = open_store(load_settings(database_url=url))
    rates: dict[str, list[float]] = {layout: [] for layout in WRITE_LAYOUTS}
    deletes: dict[str, list[float]] = {layout: [] for layout in WRITE_LAYOUTS}
    try:
        (collection,) = [c for c in store.list_collections() if c.name == "scale"]
        for turn in range(rounds):
            # The order alternates, so that neither layout always writes first.
            order = list(WRITE_LAYOUTS.items())[:: 1 if turn % 2 == 0 else -1]
            for layout, storage in order:
                with store.engine.begin() as conn:
                    conn.execute(
                        text(f"ALTER TABLE chunks ALTER COLUMN search_tsv SET STORAGE {storage}")
                    )
                started = time.perf_counter()
                document_id = scale._big_document(store, collection.id, corpus, 2_000)
                rates[layout].append(2_000 / (time.perf_counter() - started))
                started = time.perf_counter()
                store.delete_document(document_id)
                deletes[layout].append(time.perf_counter() - started)
        with store.engine.begin() as conn:  # ragd's layout
            conn.execute(text("ALTER TABLE chunks ALTER COLUMN search_tsv SET STORAGE EXTENDED"))
    finally:
        store.close()
    return {
        layout: {
            "chunks_per_s": [round(r, 1) for r in rates[layout]],
            "median_chunks_per_s": round(float(np.median(rates[layout])), 1),
            "delete_s": [round(d, 3) for d in deletes[layout]],
            "median_delete_s": round(float(np.median(deletes[layout])), 3),
        }
        for layout in WRITE_LAYOUTS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    scale.stored_database_arguments(parser)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--write-rounds", type=int, default=0)
    args = parser.parse_args()
    queries = scale.stored_queries(args.cache, args.queries)
    rng = np.random.default_rng(4)
    with scale.postgres(args.pgdata) as new_database:
        url = new_database("ragd_scale", keep=True)
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        # Autocommit: VACUUM runs outside a transaction, and each timed statement is one.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SET max_parallel_workers_per_gather = 0"))  # as ragd's search
            result: dict[str, Any] = {"queries": len(queries), "rounds": args.rounds}
            result["tables"] = copy_tables(conn)
            whole = TABLES["whole rows"]
            all_ids = [int(i) for i in conn.execute(text(f"SELECT id FROM {whole}")).scalars()]
            work = [
                statements(q, sorted(int(i) for i in rng.choice(all_ids, 300, replace=False)))
                for q in queries
            ]
            for kind in work[0]:

                def run(item: dict[str, Any], layout: str, kind: str = kind) -> Any:
                    sql, params = item[kind]
                    return timed(conn, sql.format(table=TABLES[layout]), params)

                result[kind] = scale.in_turns(work, list(LAYOUTS), run, args.rounds)
                scale.log(f"{kind}: {result[kind]}")
            for table in TABLES.values():
                conn.execute(text(f"DROP TABLE {table}"))
        engine.dispose()
        if args.write_rounds:
            result["write"] = write_rounds(url, args.cache, args.write_rounds)
            scale.log(f"write: {result['write']}")
    scale.report(result, args.out)


if __name__ == "__main__":
    main()
