"""A strong embedder through ragd: does ragd keep the quality of a better embedder?

Hosted embedders score about 0.93–0.95 nDCG@10 on the msmarco subset. There is no hosted
embedder here, so a stand-in serves vectors of that quality over the OpenAI-compatible
``/v1/embeddings`` protocol: :class:`tests.embedding.fake_embeddings.OracleVectors`, MiniLM
vectors plus extra "topic" dimensions built from the judgments (see its docstring). It is
a stand-in with a quality set on purpose, not a model of any vendor's embedder.

In one run, per dataset:

1. the topic weight ``b`` is tuned until exact dense search (numpy, cosine over
   ``title + "\\n" + text`` of every document) scores ``--target`` nDCG@k;
2. the fake server is started and ragd is configured with ``RAGD_EMBEDDING_BASE_URL``
   pointing at it (the real ``OpenAICompatEmbedder``); the corpus is ingested through
   ragd's services (chunking, the worker, the store) and ragd keyword, vector and hybrid
   are evaluated by ``ragd.services.evaluation.runner``, exactly as ``ragd eval`` does;
3. the side-by-side table is printed and written to
   ``benchmarks/results/strong_embedder.json``.

    python benchmarks/strong_embedder.py [--dataset msmarco ...] [--target 0.94]
        [--limit-docs N] [--limit-queries N] [--top-k 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.retrieval.hybrid import HybridRanker
from ragd.services.evaluation.beir import BeirDataset, CorpusDoc, limit_dataset, load_beir
from ragd.services.evaluation.metrics import Metrics, mean_scores, score_query
from ragd.services.evaluation.runner import EvalReport, evaluate_mode, run_beir
from ragd.telemetry.logging import configure_logging

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.embedding.fake_embeddings import FakeEmbeddings, OracleVectors  # noqa: E402

DATASETS = ROOT / ".." / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results" / "strong_embedder.json"
MODEL = "oracle-strong-embedder"
WEIGHTS = [round(0.2 + 0.025 * i, 3) for i in range(0, 53)]
"""Topic weights ``b`` tried when tuning: 0.2 to 1.5."""
LOW_KEYWORD_WEIGHT = 0.1
"""``RAGD_HYBRID_KEYWORD_WEIGHT`` for the extra hybrid row (the default is 0.3)."""
NOISE = 0.3
"""Per-text noise ``c``: small against the unit base and topic parts."""

Ranker = Callable[[str], list[str]]


def document_text(doc: CorpusDoc) -> str:
    """What the dense baseline embeds: ``title + "\\n" + text`` (just the text when
    untitled); ragd embeds ``title + "\\n" + chunk``, the same text for one-chunk documents."""
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def build_oracle(dataset: BeirDataset, base: LocalEmbedder, *, seed: int = 0) -> OracleVectors:
    return OracleVectors(
        {doc.id: document_text(doc) for doc in dataset.corpus},
        dataset.queries,
        dataset.qrels,
        base.embed_documents,
        noise=NOISE,
        seed=seed,
    )


def exact_dense(oracle: OracleVectors, dataset: BeirDataset, k: int) -> Metrics:
    """Exact cosine search by numpy over every document, with the vectors the server serves."""
    ids = [doc.id for doc in dataset.corpus]
    matrix = oracle([document_text(doc) for doc in dataset.corpus])
    scores = []
    for query_id, text in dataset.queries.items():
        similarities = matrix @ oracle([text])[0]
        top = np.argsort(-similarities, kind="stable")[:k]
        scores.append(score_query([ids[i] for i in top], dataset.qrels[query_id], k))
    return mean_scores(scores, k)


def tune(
    oracle: OracleVectors, dataset: BeirDataset, k: int, target: float
) -> tuple[float, Metrics, list[dict[str, float]]]:
    """The smallest topic weight whose exact dense nDCG@k is closest to ``target``."""
    curve = []
    best: tuple[float, float, Metrics] | None = None
    for weight in WEIGHTS:
        oracle.set_strength(weight, NOISE)
        metrics = exact_dense(oracle, dataset, k)
        curve.append({"topic_weight": weight, f"ndcg@{k}": round(metrics.ndcg, 4)})
        gap = abs(metrics.ndcg - target)
        if best is None or gap < best[0] - 1e-9:
            best = (gap, weight, metrics)
    assert best is not None
    oracle.set_strength(best[1], NOISE)
    return best[1], best[2], curve


def through_ragd(
    oracle: OracleVectors, dataset: BeirDataset, k: int
) -> tuple[EvalReport, dict[str, Metrics]]:
    """The corpus and queries through ragd with the fake server as its embedding API:
    keyword, vector and hybrid as ``ragd eval`` runs them, then hybrid again on the same
    collection with ``RAGD_HYBRID_KEYWORD_WEIGHT`` lowered, and with the proposal."""
    with FakeEmbeddings(oracle) as server, tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(
            data_dir=data_dir,
            inprocess_worker=False,
            embedding_base_url=server.base_url,
            embedding_api_key="sk-not-a-real-key",
            embedding_model=MODEL,
        )
        container = Container(settings)
        try:
            container.store.migrate()
            report = run_beir(
                container, dataset, modes=["keyword", "vector", "hybrid"], k=k, keep=True
            )
            default = container.search.hybrid
            variants = {
                f"ragd hybrid, keyword weight {LOW_KEYWORD_WEIGHT}": HybridRanker(
                    container.store,
                    container.embedder,
                    replace(default.params, keyword_weight=LOW_KEYWORD_WEIGHT),
                ),
                "one-stage fusion (keyword weight 0.3 after feedback too; the old default)": (
                    HybridRanker(
                        container.store,
                        container.embedder,
                        replace(default.params, final_keyword_weight=0.3),
                    )
                ),
            }
            extra = {}
            for name, ranker in variants.items():
                container.search.hybrid = ranker
                extra[name] = evaluate_mode(container, dataset, report.ingest, "hybrid", k).metrics
            container.search.hybrid = default
            container.collections.delete(report.ingest.collection_id)
            return report, extra
        finally:
            container.close()


def metrics_dict(metrics: Metrics) -> dict[str, float]:
    return {key: round(value, 4) for key, value in metrics.as_dict().items()}


def benchmark_dataset(
    base: LocalEmbedder, dataset: BeirDataset, k: int, target: float
) -> dict[str, Any]:
    started = time.perf_counter()
    oracle = build_oracle(dataset, base)
    minilm = exact_dense_at(oracle, dataset, k, 0.0)
    weight, baseline, curve = tune(oracle, dataset, k, target)
    oracle.served.clear()
    report, extra = through_ragd(oracle, dataset, k)
    systems = {
        "exact dense, MiniLM alone (b=0)": metrics_dict(minilm),
        "exact dense (numpy)": metrics_dict(baseline),
        **{f"ragd {m.mode}": metrics_dict(m.metrics) for m in report.modes},
        **{name: metrics_dict(metrics) for name, metrics in extra.items()},
    }
    ndcg = {name: s[f"ndcg@{k}"] for name, s in systems.items()}
    return {
        "dataset": dataset.name,
        "documents": len(dataset.corpus),
        "judged_queries": len(dataset.queries),
        "ragd_chunks": report.ingest.chunks,
        "top_k": k,
        "oracle": {
            "topic_weight": weight,
            "noise": NOISE,
            "topic_dim": oracle.dimension - oracle.base_dimension,
            "dimension": oracle.dimension,
            "texts_served": dict(oracle.served),
            "tuning_curve": curve,
        },
        "systems": systems,
        "checks": {
            "ragd_vector_minus_baseline": round(
                ndcg["ragd vector"] - ndcg["exact dense (numpy)"], 4
            ),
            "ragd_hybrid_minus_vector": round(ndcg["ragd hybrid"] - ndcg["ragd vector"], 4),
            "vector_keeps_baseline": ndcg["ragd vector"] >= ndcg["exact dense (numpy)"] - 0.005,
            "hybrid_keeps_vector": ndcg["ragd hybrid"] >= ndcg["ragd vector"] - 0.005,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def exact_dense_at(oracle: OracleVectors, dataset: BeirDataset, k: int, weight: float) -> Metrics:
    oracle.set_strength(weight, 0.0)
    return exact_dense(oracle, dataset, k)


def print_table(result: dict[str, Any]) -> None:
    k, oracle = result["top_k"], result["oracle"]
    print(
        f"\n{result['dataset']}: {result['documents']} documents "
        f"({result['ragd_chunks']} chunks in ragd), {result['judged_queries']} judged queries; "
        f"oracle b={oracle['topic_weight']}, c={oracle['noise']}, dim {oracle['dimension']}"
    )
    print(f"{'system':<56}{f'nDCG@{k}':>9}{f'recall@{k}':>11}{f'MRR@{k}':>9}")
    for name, s in result["systems"].items():
        print(f"{name:<56}{s[f'ndcg@{k}']:>9.4f}{s[f'recall@{k}']:>11.4f}{s[f'mrr@{k}']:>9.4f}")
    checks = result["checks"]
    print(
        f"ragd vector − baseline {checks['ragd_vector_minus_baseline']:+.4f}; "
        f"ragd hybrid − ragd vector {checks['ragd_hybrid_minus_vector']:+.4f}; "
        f"texts served {oracle['texts_served']}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS)
    parser.add_argument(
        "--dataset", action="append", default=[], help="folder name (repeat); msmarco by default"
    )
    parser.add_argument("--target", type=float, default=0.94, help="exact dense nDCG to tune to")
    parser.add_argument("--limit-docs", type=int, help="first N documents + all judged ones")
    parser.add_argument("--limit-queries", type=int, help="first N judged queries")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    configure_logging("WARNING", "console")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = LocalEmbedder(load_settings().embedding_model)
    base.embed_documents(["warm the model up"] * 8)
    results = []
    for name in args.dataset or ["msmarco"]:
        dataset = limit_dataset(
            load_beir(args.datasets_dir.resolve() / name),
            max_docs=args.limit_docs,
            max_queries=args.limit_queries,
        )
        results.append(benchmark_dataset(base, dataset, args.top_k, args.target))
        print_table(results[-1])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        body = {"target_ndcg": args.target, "base_model": base.model_name, "datasets": results}
        args.output.write_text(json.dumps(body, indent=2) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
