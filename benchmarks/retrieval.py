"""Retrieval quality of ragd against baselines, measured side by side in one run.

For every dataset folder under ``../shared/datasets`` with usable judgments (BEIR layout,
at least one judged query):

- ``bm25s``: the keyword baseline (English Snowball stemming with PyStemmer when
  installed, English stop words), over ``title + "\\n" + text``;
- exact dense search: the same embedding model as ragd (``LocalEmbedder``) on
  ``title + "\\n" + text``, cosine similarity by numpy over every document;
- ragd keyword, vector and hybrid, through ``ragd.services.evaluation.runner`` (documents in via
  ``DocumentService`` and the worker, queries via ``SearchService``; a document's rank
  is that of its best chunk).

All are scored by the same metric code (nDCG@k with graded gain, recall@k, MRR@k). The
raw embedder's texts/s on exactly the chunk texts ragd embeds is timed before and after
ragd's ingestion (the mean is reported, so drift in machine load shows in both), next to
ragd's ingestion chunks/s. Needs the ``bench`` extra (``pip install -e '.[bench]'``).

    python benchmarks/retrieval.py [--dataset NAME ...] [--limit-docs N]
        [--limit-queries N] [--top-k 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.domain import Job
from ragd.embedding import LocalEmbedder
from ragd.errors import RagdError
from ragd.ingest.pipeline import prepare
from ragd.services.evaluation.beir import BeirDataset, CorpusDoc, limit_dataset, load_beir
from ragd.services.evaluation.metrics import Metrics, mean_scores, percentile, score_query
from ragd.services.evaluation.runner import EvalReport, run_beir
from ragd.telemetry.logging import configure_logging

DATASETS = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
RAW_SAMPLE = 2000
Ranker = Callable[[str], list[str]]

try:
    import Stemmer

    STEMMER: Any = Stemmer.Stemmer("english")
except ImportError:  # bm25s runs without it, unstemmed; the report says so
    STEMMER = None


@dataclass(frozen=True)
class SystemResult:
    name: str
    metrics: Metrics
    p50_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: round(v, 4) for k, v in self.metrics.as_dict().items()},
            "search_p50_ms": round(self.p50_ms, 2),
        }


def usable_datasets(root: Path, names: Sequence[str]) -> list[Path]:
    """Folders with a qrels file (all of them, or just ``names``); whether any query is
    judged is checked after loading, since qrels may name only queries that do not exist."""
    folders = [root / n for n in names] if names else sorted(p for p in root.iterdir())
    return [
        f
        for f in folders
        if (f / "corpus.jsonl").is_file() and (f / "qrels" / "test.tsv").is_file()
    ]


def document_text(doc: CorpusDoc) -> str:
    """What the baselines index: ``title + "\\n" + text`` (just the text when untitled)."""
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def evaluate_ranker(name: str, dataset: BeirDataset, rank: Ranker, k: int) -> SystemResult:
    latencies, scores = [], []
    for query_id, text in dataset.queries.items():
        started = time.perf_counter()
        ranked = rank(text)
        latencies.append((time.perf_counter() - started) * 1000)
        scores.append(score_query(ranked, dataset.qrels[query_id], k))
    return SystemResult(name, mean_scores(scores, k), percentile(latencies, 50))


def bm25_ranker(dataset: BeirDataset, k: int) -> Ranker:
    ids = [doc.id for doc in dataset.corpus]
    tokens = bm25s.tokenize(
        [document_text(d) for d in dataset.corpus],
        stopwords="en",
        stemmer=STEMMER,
        show_progress=False,
    )
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)

    def rank(query: str) -> list[str]:
        query_tokens = bm25s.tokenize([query], stopwords="en", stemmer=STEMMER, show_progress=False)
        found, scores = retriever.retrieve(query_tokens, k=min(k, len(ids)), show_progress=False)
        # Zero-scored rows share no term with the query: a keyword engine returns nothing.
        return [ids[i] for i, s in zip(found[0], scores[0], strict=True) if s > 0]

    return rank


def dense_ranker(embedder: LocalEmbedder, dataset: BeirDataset, k: int) -> tuple[Ranker, float]:
    """Exact cosine search over every document, plus the embedder's texts/s doing it."""
    ids = [doc.id for doc in dataset.corpus]
    texts = [document_text(d) for d in dataset.corpus]
    started = time.perf_counter()
    matrix = np.vstack(
        [embedder.embed_documents(texts[i : i + 256]) for i in range(0, len(texts), 256)]
    )
    rate = len(texts) / (time.perf_counter() - started)

    def rank(query: str) -> list[str]:
        similarities = matrix @ embedder.embed_query(query)
        top = np.argsort(-similarities, kind="stable")[:k]
        return [ids[i] for i in top]

    return rank, rate


def ragd_chunk_texts(dataset: BeirDataset, settings: Settings, embedding_model: str) -> list[str]:
    """Exactly what ragd's worker embeds for this corpus (same parse, chunking and title
    context), by running its own ``prepare`` on each document."""
    texts: list[str] = []
    for doc in dataset.corpus:
        job = Job(
            document_id=doc.id,
            collection_id="bench",
            title=doc.title or None,
            source_type="text",
            source=None,
            mime_type=None,
            content_hash=None,
            attempts=1,
            lease_owner="bench",
            content=doc.text.encode("utf-8"),
            embedding_model=embedding_model,
        )
        try:
            texts.extend(prepare(job, settings).embed_texts)
        except RagdError:
            continue  # ragd refuses it too (an empty text): nothing to embed
    return texts


def raw_embed_rate(embedder: LocalEmbedder, texts: list[str]) -> float:
    """Texts/s of the bare model in the worker's batch size; the best ingestion could do."""
    started = time.perf_counter()
    for i in range(0, len(texts), 256):
        embedder.embed_documents(texts[i : i + 256])
    return len(texts) / (time.perf_counter() - started)


def benchmark_dataset(embedder: LocalEmbedder, dataset: BeirDataset, k: int) -> dict[str, Any]:
    results = [evaluate_ranker("bm25s", dataset, bm25_ranker(dataset, k), k)]
    dense, dense_rate = dense_ranker(embedder, dataset, k)
    results.append(evaluate_ranker("exact dense (numpy)", dataset, dense, k))
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(data_dir=data_dir, inprocess_worker=False)
        chunk_texts = ragd_chunk_texts(dataset, settings, embedder.model_name)
        sample = random.Random(0).sample(chunk_texts, min(RAW_SAMPLE, len(chunk_texts)))
        raw_before = raw_embed_rate(embedder, sample)
        container = Container(settings, embedder=embedder)
        try:
            container.store.migrate()
            report = run_beir(container, dataset, modes=["keyword", "vector", "hybrid"], k=k)
        finally:
            container.close()
        raw_after = raw_embed_rate(embedder, sample)
    results += [ragd_result(report, i) for i in range(len(report.modes))]
    return summary(dataset, report, results, dense_rate, (raw_before, raw_after))


def ragd_result(report: EvalReport, index: int) -> SystemResult:
    mode = report.modes[index]
    return SystemResult(f"ragd {mode.mode}", mode.metrics, mode.p50_ms)


def summary(
    dataset: BeirDataset,
    report: EvalReport,
    results: list[SystemResult],
    dense_rate: float,
    raw_runs: tuple[float, float],
) -> dict[str, Any]:
    raw = sum(raw_runs) / 2
    ingest = report.ingest
    return {
        "dataset": dataset.name,
        "documents": len(dataset.corpus),
        "judged_queries": len(dataset.queries),
        "ragd_chunks": ingest.chunks,
        "top_k": report.top_k,
        "systems": {r.name: r.as_dict() for r in results},
        "embedding": {
            "raw_texts_per_s": round(raw, 1),
            "raw_runs": [round(r, 1) for r in raw_runs],
            "dense_baseline_docs_per_s": round(dense_rate, 1),
            "ragd_ingestion_chunks_per_s": round(ingest.chunks_per_s, 1),
            "ragd_ingestion_docs_per_s": round(ingest.docs_per_s, 1),
            "ragd_vs_raw": round(ingest.chunks_per_s / raw, 3) if raw else None,
        },
    }


def print_table(result: dict[str, Any]) -> None:
    k = result["top_k"]
    print(
        f"\n{result['dataset']}: {result['documents']} documents "
        f"({result['ragd_chunks']} chunks in ragd), {result['judged_queries']} judged queries"
    )
    print(f"{'system':<22}{f'nDCG@{k}':>9}{f'recall@{k}':>11}{f'MRR@{k}':>9}{'p50 ms':>9}")
    for name, s in result["systems"].items():
        print(
            f"{name:<22}{s[f'ndcg@{k}']:>9.4f}{s[f'recall@{k}']:>11.4f}"
            f"{s[f'mrr@{k}']:>9.4f}{s['search_p50_ms']:>9.1f}"
        )
    e = result["embedding"]
    print(
        f"embedder raw {e['raw_texts_per_s']:.1f} texts/s (runs {e['raw_runs']}) | ragd "
        f"ingestion {e['ragd_ingestion_chunks_per_s']:.1f} chunks/s "
        f"({e['ragd_ingestion_docs_per_s']:.1f} docs/s) = {e['ragd_vs_raw']:.1%} of raw"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS)
    parser.add_argument("--dataset", action="append", default=[], help="folder name (repeat)")
    parser.add_argument("--limit-docs", type=int, help="first N documents + all judged ones")
    parser.add_argument("--limit-queries", type=int, help="first N judged queries")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    configure_logging("WARNING", "console")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedder = LocalEmbedder(load_settings().embedding_model)
    embedder.embed_documents(["warm the model up"] * 64)
    results = []
    for folder in usable_datasets(args.datasets_dir.resolve(), args.dataset):
        dataset = limit_dataset(
            load_beir(folder), max_docs=args.limit_docs, max_queries=args.limit_queries
        )
        if not dataset.queries:
            continue
        results.append(benchmark_dataset(embedder, dataset, args.top_k))
        if not args.json:
            print_table(results[-1])
    if args.json:
        import torch

        machine = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
        stemmer = "english (PyStemmer)" if STEMMER else "none"
        print(json.dumps({"machine": machine, "bm25s_stemmer": stemmer, "datasets": results}))


if __name__ == "__main__":
    main()
