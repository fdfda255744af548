"""A strong embedder through ragd keeps its quality (benchmarks/strong_embedder.py, small).

The fake OpenAI-compatible server serves :class:`OracleVectors` (MiniLM plus topic
dimensions built from the judgments: a stand-in for a strong hosted embedder). ragd is
configured with ``embedding_base_url`` pointing at it, so the real ``OpenAICompatEmbedder``,
chunking, worker and store are all on the path. ragd vector search must score what exact
dense search over the same vectors scores, and hybrid must not drag it down (the final
fusion, after feedback, weights the keyword leg at 0.05).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.services.evaluation.beir import BeirDataset, CorpusDoc, limit_dataset, load_beir
from ragd.services.evaluation.metrics import mean_scores, score_query
from ragd.services.evaluation.runner import run_beir
from tests.embedding.fake_embeddings import FakeEmbeddings, OracleVectors

QUERIES = 15
DOCS = 200
K = 10
TOPIC_WEIGHT = 0.6  # about what the benchmark tunes to for 0.94 nDCG@10 on msmarco
NOISE = 0.3


def document_text(doc: CorpusDoc) -> str:
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def small_msmarco(datasets_dir: Path) -> BeirDataset:
    """The QUERIES queries with the fewest judgments, their judged passages and the first
    DOCS others: a few hundred passages, so the slice embeds quickly."""
    full = load_beir(datasets_dir / "msmarco")
    cheapest = sorted(full.queries, key=lambda q: (len(full.qrels[q]), q))[:QUERIES]
    ordered = BeirDataset(
        name=full.name,
        corpus=full.corpus,
        queries={q: full.queries[q] for q in full.queries if q in cheapest},
        qrels={q: full.qrels[q] for q in full.queries if q in cheapest},
    )
    return limit_dataset(ordered, max_docs=DOCS)


def exact_dense_ndcg(oracle: OracleVectors, dataset: BeirDataset) -> float:
    ids = [doc.id for doc in dataset.corpus]
    matrix = oracle([document_text(doc) for doc in dataset.corpus])
    scores = []
    for query_id, text in dataset.queries.items():
        top = np.argsort(-(matrix @ oracle([text])[0]), kind="stable")[:K]
        scores.append(score_query([ids[i] for i in top], dataset.qrels[query_id], K))
    return mean_scores(scores, K).ndcg


@dataclass(frozen=True)
class Measured:
    baseline: float
    ndcg: dict[str, float]
    served: dict[str, int]
    requests: int


@pytest.fixture(scope="module")
def measured(
    datasets_dir: Path, embedder: LocalEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> Measured:
    """One ingestion of the slice through ragd, configured with the fake server."""
    dataset = small_msmarco(datasets_dir)
    oracle = OracleVectors(
        {doc.id: document_text(doc) for doc in dataset.corpus},
        dataset.queries,
        dataset.qrels,
        embedder.embed_documents,
        topic_weight=TOPIC_WEIGHT,
        noise=NOISE,
    )
    baseline = exact_dense_ndcg(oracle, dataset)
    with FakeEmbeddings(oracle) as server:
        settings = load_settings(
            data_dir=tmp_path_factory.mktemp("strong") / "data",
            inprocess_worker=False,
            embedding_base_url=server.base_url,
            embedding_model="oracle-strong-embedder",
        )
        container = Container(settings)
        try:
            container.store.migrate()
            report = run_beir(container, dataset, modes=["vector", "hybrid"], k=K)
        finally:
            container.close()
    return Measured(
        baseline=baseline,
        ndcg={m.mode: m.metrics.ndcg for m in report.modes},
        served=dict(oracle.served),
        requests=len(server.requests),
    )


def test_ragd_vector_search_keeps_a_strong_embedders_quality(measured: Measured) -> None:
    assert measured.baseline > 0.85  # the stand-in really is strong
    assert measured.requests > 0, "ragd did not call the embedding server"
    assert measured.served.get("query", 0) > 0 and measured.served.get("passage", 0) > 0
    assert measured.served.get("unknown", 0) <= 1  # at most ragd's dimension probe
    assert measured.ndcg["vector"] == pytest.approx(measured.baseline, abs=0.01)


def test_hybrid_does_not_drag_a_strong_embedder_down(measured: Measured) -> None:
    assert measured.ndcg["hybrid"] >= measured.ndcg["vector"] - 0.02
