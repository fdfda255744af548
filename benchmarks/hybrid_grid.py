"""Hybrid fusion settings on a grid: each dataset ingested once, every setting evaluated.

Keyword weight of the first pass × keyword weight after feedback × feedback chunks ×
feedback weight, through the real services (``ragd eval``'s runner), query vectors cached
so that only the ranking differs between settings. Used to choose the defaults and to show
how flat (or not) the region around them is; see docs/performance.md.

    .venv/bin/python benchmarks/hybrid_grid.py [--dataset msmarco ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import Vector
from ragd.embedding.base import Embedder
from ragd.retrieval.hybrid import HybridRanker
from ragd.services.evaluation.beir import load_beir
from ragd.services.evaluation.runner import evaluate_mode, run_beir

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / ".." / "shared" / "datasets"
KEYWORD_WEIGHTS = (0.2, 0.3, 0.4)
FINAL_KEYWORD_WEIGHTS = (0.0, 0.05, 0.1)
FEEDBACK_DOCS = (3, 5, 8)
FEEDBACK_WEIGHTS = (0.5, 1.0, 1.5, 2.0)


class CachedQueries:
    """The embedder with query vectors remembered: every setting sees the same vectors."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.cache: dict[str, Vector] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed_query(self, text: str) -> Vector:
        if text not in self.cache:
            self.cache[text] = self.inner.embed_query(text)
        return self.cache[text]


def grid(dataset_dir: Path) -> list[dict[str, Any]]:
    dataset = load_beir(dataset_dir)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        container = Container(load_settings(data_dir=data_dir, inprocess_worker=False))
        try:
            container.store.migrate()
            report = run_beir(container, dataset, modes=["hybrid"], k=10, keep=True)
            default = container.search.hybrid
            embedder: Any = CachedQueries(container.embedder)
            for kw, final, docs, weight in itertools.product(
                KEYWORD_WEIGHTS, FINAL_KEYWORD_WEIGHTS, FEEDBACK_DOCS, FEEDBACK_WEIGHTS
            ):
                params = replace(
                    default.params,
                    keyword_weight=kw,
                    final_keyword_weight=final,
                    feedback_docs=docs,
                    feedback_weight=weight,
                )
                container.search.hybrid = HybridRanker(container.store, embedder, params)
                metrics = evaluate_mode(container, dataset, report.ingest, "hybrid", 10).metrics
                row = {
                    "keyword_weight": kw,
                    "final_keyword_weight": final,
                    "feedback_docs": docs,
                    "feedback_weight": weight,
                    "ndcg@10": round(metrics.ndcg, 4),
                }
                rows.append(row)
                print(dataset.name, row, flush=True)
        finally:
            container.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", action="append", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/hybrid_grid.json")
    args = parser.parse_args()
    names = args.dataset or ["msmarco", "business-reports"]
    results = {name: grid(DATASETS / name) for name in names}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
