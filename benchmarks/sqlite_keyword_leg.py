"""SQLite's keyword leg, its two statements side by side (issue 17, section 3).

On the query-latency benchmark's collection (msmarco passages in one SQLite file; run
``benchmarks/query_latency.py`` once to build it), every judged query's keyword leg (top
``--limit``, the depth a hybrid search asks for) through both statements of
:mod:`ragd.store.sqlite.keyword_leg`, taking turns query by query:

- ``exact``: every FTS match joined to its chunk and document, then sorted;
- ``whole index``: the FTS table's own top rows, only those joined (what a search over
  every collection without a filter runs first).

It reports p50/p99 of each and how many queries got identical rows (ids and scores).

    .venv/bin/python benchmarks/sqlite_keyword_leg.py [--rounds 5] [--limit 100]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from ragd.domain import ScoredId
from ragd.retrieval.terms import keyword_terms
from ragd.services.evaluation.beir import load_beir
from ragd.services.evaluation.metrics import percentile
from ragd.store.sqlite.dialect import create_sqlite_engine
from ragd.store.sqlite.keyword_leg import exact_top, fts_match, whole_index_top

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / ".." / "shared" / "datasets"


def timed(
    run: Callable[..., list[ScoredId] | None], *args: object
) -> tuple[float, list[ScoredId] | None]:
    started = time.perf_counter()
    found = run(*args)
    return (time.perf_counter() - started) * 1000, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/ragd-query-latency"))
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    engine = create_sqlite_engine(f"sqlite:///{args.data_dir / 'ragd.db'}")
    queries = list(load_beir(args.datasets_dir / "msmarco").queries.values())
    samples: dict[str, list[float]] = {"exact": [], "whole index": []}
    identical = 0
    with engine.connect() as conn:
        scope = [str(row[0]) for row in conn.exec_driver_sql("SELECT id FROM collections")]
        for round_ in range(args.rounds + 1):  # the first round warms the page cache
            for query in queries:
                match = fts_match(keyword_terms(query))
                exact_ms, exact = timed(exact_top, conn, match, scope, {}, args.limit)
                whole_ms, whole = timed(whole_index_top, conn, match, scope, args.limit)
                if round_ == 0:
                    identical += whole == exact
                    continue
                samples["exact"].append(exact_ms)
                samples["whole index"].append(whole_ms)
    report = {
        name: {"p50_ms": round(percentile(s, 50), 3), "p99_ms": round(percentile(s, 99), 3)}
        for name, s in samples.items()
    }
    print(
        json.dumps(
            {
                "queries": len(queries),
                "collections": len(scope),
                "limit": args.limit,
                "identical": identical,
                "statements": report,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
