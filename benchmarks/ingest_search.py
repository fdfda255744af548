"""Ingestion throughput and search latency, against baselines measured in the same run.

Ingestion: documents go through the real service path (DocumentService.add_text, the
queue, IngestWorker: parse, chunk, embed, store), and the result is compared with the raw
embedder encoding the same chunk texts directly — the best the service could do on this
machine, since on CPU the model is the bottleneck. The raw baseline runs before and after
the service pass and is averaged, so drift in machine load shows up in both.
With ``--rounds N`` (default 4) the corpus is split into N parts and the two alternate
part by part (raw then service, then service then raw, ...): on a shared machine whose
load changes by the minute, both sides then see the same load, which a single before and
after pair does not guarantee.

Search: every query of the dataset in each mode, timed end to end through SearchService
(query embedding included for vector and hybrid; it is also timed alone).

    python benchmarks/ingest_search.py [--dataset DIR] [--limit N] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ragd.config import load_settings
from ragd.container import Container
from ragd.ingest.chunking import chunk_document
from ragd.ingest.parsers import detect_mime_type, parse_document
from ragd.ingest.pipeline import embed_text
from ragd.services.search import SearchMode
from ragd.telemetry.logging import configure_logging

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "msmarco"


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def raw_embed_seconds(container: Container, texts: list[str]) -> float:
    """Wall time of the embedder alone on ``texts``, in 256-text calls."""
    started = time.perf_counter()
    for start in range(0, len(texts), 256):
        container.embedder.embed_documents(texts[start : start + 256])
    return time.perf_counter() - started


def write_folder(docs: list[dict[str, Any]], folder: Path) -> list[Path]:
    """The dataset as a folder of files, the way a user would point ``ragd ingest`` at it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs:
        title = (doc.get("title") or "").strip()
        name = "".join(ch if ch.isalnum() else "_" for ch in str(doc["_id"]))
        path = folder / (f"{name}.md" if title else f"{name}.txt")
        path.write_text(f"# {title}\n\n{doc['text']}\n" if title else doc["text"] + "\n")
        paths.append(path)
    return paths


def chunk_texts(paths: list[Path], max_tokens: int, overlap: int) -> list[str]:
    """Exactly the texts the worker will embed for these files."""
    texts = []
    for path in paths:
        data = path.read_bytes()
        parsed = parse_document(data, detect_mime_type(data[:4096], path.name, None))
        for chunk in chunk_document(parsed.text, max_tokens=max_tokens, overlap_tokens=overlap):
            texts.append(embed_text(parsed.title, chunk.heading_path, chunk.text))
    return texts


def ingest_seconds(container: Container, collection_id: str, paths: list[Path]) -> float:
    """Wall time to submit ``paths`` and have a worker process all of them."""
    started = time.perf_counter()
    for path in paths:
        container.documents.add_file(collection_id, path.read_bytes(), filename=path.name)
    container.new_worker().run_until_idle()
    return time.perf_counter() - started


def compare(container: Container, paths: list[Path], rounds: int) -> dict[str, Any]:
    """Raw embedder and service over the same files, alternating part by part."""
    settings = container.settings
    collection = container.collections.create("bench")
    size = -(-len(paths) // max(rounds, 1))
    parts = [paths[i : i + size] for i in range(0, len(paths), size)]
    raw_s: list[float] = []
    service_s: list[float] = []
    texts = 0
    for i, part in enumerate(parts):
        part_texts = chunk_texts(part, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
        texts += len(part_texts)
        if i % 2 == 0:
            raw_s.append(raw_embed_seconds(container, part_texts))
            service_s.append(ingest_seconds(container, collection.id, part))
        else:
            service_s.append(ingest_seconds(container, collection.id, part))
            raw_s.append(raw_embed_seconds(container, part_texts))
    chunks = container.collections.get(collection.id).chunk_count
    return {
        "documents": len(paths),
        "chunks": chunks,
        "texts": texts,
        "raw_s": raw_s,
        "service_s": service_s,
        "raw_texts_per_s": texts / sum(raw_s),
        "docs_per_s": len(paths) / sum(service_s),
        "chunks_per_s": chunks / sum(service_s),
    }


def search_latencies(container: Container, queries: list[str]) -> dict[str, dict[str, float]]:
    report: dict[str, dict[str, float]] = {}
    timings = []
    for query in queries:
        started = time.perf_counter()
        container.embedder.embed_query(query)
        timings.append((time.perf_counter() - started) * 1000)
    report["query embedding"] = summarize(timings)
    modes: list[SearchMode] = ["keyword", "vector", "hybrid"]
    for mode in modes:
        container.search.search(queries[0], mode=mode)  # warm caches
        timings = []
        for query in queries:
            started = time.perf_counter()
            container.search.search(query, mode=mode, top_k=10)
            timings.append((time.perf_counter() - started) * 1000)
        report[mode] = summarize(timings)
    return report


def summarize(timings_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(timings_ms, 50), 2),
        "p95_ms": round(percentile(timings_ms, 95), 2),
        "mean_ms": round(statistics.fmean(timings_ms), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument(
        "--folder", type=Path, help="ingest this folder instead of the dataset's corpus"
    )
    parser.add_argument("--limit", type=int, default=5000, help="documents to ingest")
    parser.add_argument(
        "--rounds", type=int, default=4, help="parts in which raw and service alternate"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING", "console")

    queries = [q["text"] for q in read_jsonl(args.dataset / "queries.jsonl")]
    with tempfile.TemporaryDirectory() as data_dir:
        if args.folder:
            paths = sorted(p for p in args.folder.rglob("*") if p.is_file())[: args.limit]
        else:
            docs = read_jsonl(args.dataset / "corpus.jsonl", args.limit)
            paths = write_folder(docs, Path(data_dir) / "corpus")
        settings = load_settings(data_dir=data_dir, inprocess_worker=False)
        container = Container(settings)
        container.store.migrate()
        container.embedder.embed_documents(["warm the model"] * 64)
        ingestion = compare(container, paths, args.rounds)
        latencies = search_latencies(container, queries)
        container.close()

    raw = ingestion["raw_texts_per_s"]
    result = {
        "dataset": str(args.folder) if args.folder else args.dataset.name,
        "worker_claim_batch": settings.worker_claim_batch,
        "worker_embed_batch": settings.worker_embed_batch,
        "raw_embedder_texts_per_s": round(raw, 1),
        "raw_embedder_runs": [round(v, 2) for v in ingestion.pop("raw_s")],
        "service_runs": [round(v, 2) for v in ingestion.pop("service_s")],
        "ingestion": {k: round(v, 2) for k, v in ingestion.items()},
        "ingestion_vs_raw": round(ingestion["chunks_per_s"] / raw, 3),
        "search": latencies,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"dataset {result['dataset']}: {ingestion['documents']:.0f} documents, "
        f"{ingestion['chunks']:.0f} chunks, {args.rounds} alternating rounds"
    )
    print(f"raw embedder          {raw:8.1f} texts/s  (seconds: {result['raw_embedder_runs']})")
    print(
        f"ingestion via service {ingestion['chunks_per_s']:8.1f} chunks/s "
        f"({ingestion['docs_per_s']:.1f} docs/s) = {result['ingestion_vs_raw']:.1%} of raw "
        f"(seconds: {result['service_runs']})"
    )
    print(f"{'search':<18}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for mode, stats in latencies.items():
        print(f"{mode:<18}{stats['p50_ms']:>10}{stats['p95_ms']:>10}{stats['mean_ms']:>10}")


if __name__ == "__main__":
    main()
