"""How many keyword-index candidates the exact re-score needs: latency and agreement.

On a database left by ``benchmarks/scale.py`` (``--pgdata``; its ``scale`` collection and a
keyword index built there, e.g. by ``--split-collections``), the keyword leg at limit 10
and the hybrid statement are timed with ``RAGD_KEYWORD_CANDIDATES`` at each value, the
values taking turns query by query so machine load falls on all alike, and the keyword
top 10 is compared with the exact statement's.

    python benchmarks/keyword_candidates.py --pgdata /tmp/ragd-scale-pg \\
        --index-dir /tmp/kwidx/split-10 --values 300,100,50

With ``--real`` it checks the agreement on real text instead: the shared datasets
(msmarco, and business-reports with its titles) loaded into a new database of their own
under ``--pgdata``, one chunk per passage (the vectors are random: only the keyword leg is
compared), queried with each dataset's queries plus spans of 2-5 words from random
passages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import scale
from ragd.config import load_settings
from ragd.domain import JobCompletion, NewChunk, NewDocument
from ragd.retrieval.hybrid import HybridParams
from ragd.retrieval.terms import keyword_terms
from ragd.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    scale.stored_database_arguments(parser)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--values", default="300,100,50")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--agreement-queries", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--real", action="store_true", help="agreement on the shared datasets")
    args = parser.parse_args()
    if args.real:
        run_real(args)
        return
    values = [int(v) for v in args.values.split(",")]
    queries = scale.stored_queries(args.cache, args.queries)
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
            _close(exact, *stores.values())
    scale.report(result, args.out)


def _close(*stores: Any) -> None:
    for store in stores:
        store.close()


def _load_dataset(store: Any, name: str, folder: Path) -> tuple[str, list[str]]:
    """One ready document and chunk per passage; returns the collection and its texts."""
    collection = store.create_collection(
        name=name, description="", embedding_model="synthetic", embedding_dim=scale.DIM
    )
    rows = [json.loads(line) for line in (folder / "corpus.jsonl").open() if line.strip()]
    rng = np.random.default_rng(5)
    owner = f"agreement-{name}"
    for start in range(0, len(rows), 500):
        batch = rows[start : start + 500]
        ids = []
        for row in batch:
            new = NewDocument(
                collection_id=collection.id,
                title=row.get("title") or None,
                source_type="text",
                source=None,
                mime_type="text/plain",
                content_hash=scale.sha(name + row["_id"]),
                source_hash=None,
                metadata={},
                content=row["text"].encode(),
            )
            document, _ = store.add_document(new)
            ids.append((document.id, row))
        jobs = store.claim_jobs(owner=owner, limit=len(batch), lease_s=3600)
        assert len(jobs) == len(batch)
        completions = []
        for document_id, row in ids:
            vector = rng.standard_normal(scale.DIM).astype(np.float32)
            body = row["text"]
            completions.append(
                JobCompletion(
                    document_id=document_id,
                    lease_owner=owner,
                    title=row.get("title") or None,
                    mime_type="text/plain",
                    content_hash=scale.sha(name + row["_id"]),
                    chunks=[
                        NewChunk(
                            ordinal=0,
                            text=body,
                            heading_path=(),
                            token_count=len(body.split()),
                            char_start=0,
                            char_end=len(body),
                            text_hash=scale.sha(body),
                            embedding=vector / np.linalg.norm(vector),
                        )
                    ],
                )
            )
        store.complete_jobs(completions)
    return collection.id, [r["text"] for r in rows]


def _queries(folder: Path, texts: list[str], extra: int) -> list[str]:
    out = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open() if line.strip()]
    rng = np.random.default_rng(9)
    while extra > 0:
        words = texts[int(rng.integers(len(texts)))].split()
        if len(words) < 6:
            continue
        size = int(rng.integers(2, 6))
        start = int(rng.integers(len(words) - size))
        out.append(" ".join(words[start : start + size]))
        extra -= 1
    return out


def run_real(args: argparse.Namespace) -> None:
    values = [int(v) for v in args.values.split(",")]
    result: dict[str, Any] = {"values": values}
    with scale.postgres(args.pgdata) as new_database:
        url = new_database("ragd_agreement")
        exact: Any = open_store(load_settings(database_url=url, database_statement_timeout_ms=0))
        exact.migrate()
        stores: dict[int, Any] = {}
        try:
            loaded = {
                name: _load_dataset(exact, name, scale.DATASET.parent / name)
                for name in ("msmarco", "business-reports")
            }
            for v in values:
                stores[v] = open_store(
                    load_settings(
                        database_url=url,
                        keyword_index="tantivy",
                        keyword_index_dir=args.index_dir / str(v),
                        keyword_index_interval_s=0,
                        keyword_candidates=v,
                        keyword_exact_below=0,
                    )
                )
                stores[v].rebuild_keyword_index()
            for name, (collection_id, texts) in loaded.items():
                queries = _queries(scale.DATASET.parent / name, texts, 150)
                same = {v: 0 for v in values}
                overlap: dict[int, float] = {v: 0.0 for v in values}
                for query in queries:
                    terms = keyword_terms(query)
                    want = [
                        h.chunk_id
                        for h in exact.keyword_search(
                            terms, collection_ids=[collection_id], filters={}, limit=10
                        )
                    ]
                    for v, store in stores.items():
                        got = [
                            h.chunk_id
                            for h in store.keyword_search(
                                terms, collection_ids=[collection_id], filters={}, limit=10
                            )
                        ]
                        same[v] += got == want
                        overlap[v] += len(set(got) & set(want)) / len(want) if want else got == want
                result[name] = {
                    "chunks": len(texts),
                    "queries": len(queries),
                    **{
                        str(v): {
                            "identical_top10": f"{same[v]}/{len(queries)}",
                            "overlap_at_10": round(overlap[v] / len(queries), 4),
                        }
                        for v in values
                    },
                }
                scale.log(f"{name}: {result[name]}")
        finally:
            _close(exact, *stores.values())
    scale.report(result, args.out)


if __name__ == "__main__":
    main()
