"""Does the hybrid ever lose to its better leg? Keyword, vector and hybrid side by side on
the shared datasets and on variants built from them (issue 17, section 2).

The variants change what each leg can do, so that the default fusion is checked where
the keyword leg is the better one, where it is noise, and in between:

- corpus variants (each ingested once through ragd's services): ``msmarco``,
  ``msmarco-shuffled`` (the words of each passage in random order: the same bag of words
  for BM25, a damaged text for the embedder), ``msmarco-lead`` (only the first sentence of
  each passage: short, title-like documents), ``business-reports``,
  ``business-reports-body`` (titles dropped) and ``business-reports-title`` (titles only);
- query variants over a corpus: ``kw`` (stop words dropped, as a user typing keywords
  would), ``para`` (hand-written paraphrases that avoid the original words,
  ``benchmarks/data/paraphrased_queries.json``: the keyword leg loses its terms);
- a judgment variant: ``shallow`` keeps only msmarco's "perfectly relevant" grade (3) as
  binary judgments, a few answers per query as in most BEIR sets, instead of ~95 graded
  ones (where feedback from the first pass's best chunks is almost sure to help).

Every collection is kept in ``--data-dir`` (a SQLite store), so a second run only
searches. Query vectors are cached per text (ragd's query cache), so only the fusion
differs between the ``--fusion`` values evaluated.

    .venv/bin/python benchmarks/fusion_conditions.py [--fusion adaptive --fusion convex]
        [--feedback-leg search --feedback-leg rescore]
        [--condition msmarco ...] [--data-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast, get_args

from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import FeedbackLeg
from ragd.retrieval.hybrid import Fusion, HybridRanker
from ragd.retrieval.terms import keyword_terms
from ragd.services.evaluation.beir import BeirDataset, CorpusDoc, load_beir
from ragd.services.evaluation.runner import IngestReport, evaluate_mode, ingest_corpus
from ragd.telemetry.logging import configure_logging

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / ".." / "shared" / "datasets"
PARAPHRASES = ROOT / "benchmarks" / "data" / "paraphrased_queries.json"
TOLERANCE = 0.002
DATASETS_DIR = [DATASETS]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _shuffled(doc: CorpusDoc) -> CorpusDoc:
    words = doc.text.split()
    random.Random(doc.id).shuffle(words)
    return replace(doc, text=" ".join(words))


def _lead(doc: CorpusDoc) -> CorpusDoc:
    return replace(doc, text=_SENTENCE.split(doc.text.strip(), maxsplit=1)[0])


def _body(doc: CorpusDoc) -> CorpusDoc:
    return replace(doc, title="")


def _title(doc: CorpusDoc) -> CorpusDoc:
    return replace(doc, title="", text=doc.title or doc.text)


CORPORA: dict[str, tuple[str, Callable[[CorpusDoc], CorpusDoc] | None]] = {
    "msmarco": ("msmarco", None),
    "msmarco-shuffled": ("msmarco", _shuffled),
    "msmarco-lead": ("msmarco", _lead),
    "business-reports": ("business-reports", None),
    "business-reports-body": ("business-reports", _body),
    "business-reports-title": ("business-reports", _title),
}
# condition → (corpus, query variant)
CONDITIONS: dict[str, tuple[str, str]] = {
    **{name: (name, "") for name in CORPORA},
    "msmarco-kw": ("msmarco", "kw"),
    "msmarco-para": ("msmarco", "para"),
    "business-reports-para": ("business-reports", "para"),
    "msmarco-shallow": ("msmarco", "shallow"),
}


@dataclass(frozen=True)
class Condition:
    name: str
    dataset: BeirDataset
    ingest: IngestReport


def corpus_dataset(name: str) -> BeirDataset:
    source, transform = CORPORA[name]
    dataset = load_beir(DATASETS_DIR[0] / source)
    if transform is not None:
        dataset = replace(dataset, corpus=[transform(doc) for doc in dataset.corpus])
    return replace(dataset, name=name)


def with_queries(dataset: BeirDataset, variant: str, source: str) -> BeirDataset:
    if not variant:
        return dataset
    if variant == "shallow":
        return shallow_judgments(dataset)
    if variant == "kw":
        queries = {q: " ".join(keyword_terms(text)) for q, text in dataset.queries.items()}
    else:
        paraphrased = json.loads(PARAPHRASES.read_text(encoding="utf-8"))[source]
        queries = {q: paraphrased[q] for q in dataset.queries}
    return replace(dataset, queries=queries)


def shallow_judgments(dataset: BeirDataset, grade: int = 3) -> BeirDataset:
    """Only the top grade, as binary judgments; queries without one are dropped."""
    qrels = {
        query: {doc: 1 for doc, score in judged.items() if score >= grade}
        for query, judged in dataset.qrels.items()
    }
    qrels = {query: judged for query, judged in qrels.items() if judged}
    queries = {query: text for query, text in dataset.queries.items() if query in qrels}
    return replace(dataset, queries=queries, qrels=qrels)


def ingested(
    container: Container, state_file: Path, corpus: str
) -> tuple[BeirDataset, IngestReport]:
    """The corpus variant's collection, ingested on first use and remembered after."""
    dataset = corpus_dataset(corpus)
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if corpus not in state:
        collection = container.collections.create(f"fusion-{corpus}", corpus)
        report = ingest_corpus(container, collection.id, dataset.corpus)
        state[corpus] = {
            "collection_id": report.collection_id,
            "chunks": report.chunks,
            "corpus_ids": report.corpus_ids,
        }
        state_file.write_text(json.dumps(state))
        print(
            f"ingested {corpus}: {report.chunks} chunks in {report.seconds:.0f} s", file=sys.stderr
        )
    saved = state[corpus]
    report = IngestReport(
        collection_id=saved["collection_id"],
        documents=len(dataset.corpus),
        chunks=saved["chunks"],
        seconds=0.0,
        corpus_ids=saved["corpus_ids"],
        failed={},
    )
    return dataset, report


def conditions(container: Container, data_dir: Path, names: list[str]) -> list[Condition]:
    found = []
    for name in names:
        corpus, variant = CONDITIONS[name]
        dataset, report = ingested(container, data_dir / "state.json", corpus)
        source = CORPORA[corpus][0]
        found.append(Condition(name, with_queries(dataset, variant, source), report))
    return found


def evaluate(
    container: Container, condition: Condition, fusions: list[str], legs: list[str]
) -> dict[str, float]:
    """nDCG@10 of both legs and of the hybrid under each fusion and feedback leg (the
    second search, the key without a suffix, or the re-score of the first pass)."""
    row: dict[str, float] = {}
    for mode in ("keyword", "vector"):
        row[mode] = evaluate_mode(
            container, condition.dataset, condition.ingest, mode, 10
        ).metrics.ndcg
    default = container.search.hybrid
    for fusion, leg in itertools.product(fusions, legs):
        params = replace(
            default.params, fusion=cast(Fusion, fusion), feedback_leg=cast(FeedbackLeg, leg)
        )
        container.search.hybrid = HybridRanker(container.store, container.search.embedder, params)
        metrics = evaluate_mode(
            container, condition.dataset, condition.ingest, "hybrid", 10
        ).metrics
        row[f"hybrid {fusion}" + ("" if leg == "search" else f" {leg}")] = metrics.ndcg
    container.search.hybrid = default
    return row


def print_row(name: str, row: dict[str, float]) -> None:
    best = max(row["keyword"], row["vector"])
    cells = " ".join(f"{key}={value:.4f}" for key, value in row.items())
    losers = [k for k, v in row.items() if k.startswith("hybrid") and v < best - TOLERANCE]
    print(f"{name:<24} {cells}" + (f"  BELOW BEST LEG: {', '.join(losers)}" if losers else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fusion", action="append", default=None, choices=get_args(Fusion))
    parser.add_argument(
        "--feedback-leg", action="append", default=None, choices=get_args(FeedbackLeg)
    )
    parser.add_argument("--condition", action="append", default=None, choices=sorted(CONDITIONS))
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/ragd-fusion-conditions"))
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    DATASETS_DIR[0] = args.datasets_dir
    configure_logging("WARNING", "console")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    # Every query vector is computed once and then comes from ragd's own query cache.
    settings = load_settings(
        data_dir=str(args.data_dir), inprocess_worker=False, query_cache_size=100_000
    )
    container = Container(settings)
    container.store.migrate()
    fusions = args.fusion or [settings.hybrid_fusion]
    legs = args.feedback_leg or [settings.hybrid_feedback_leg]
    results: dict[str, dict[str, float]] = {}
    try:
        for condition in conditions(container, args.data_dir, args.condition or list(CONDITIONS)):
            results[condition.name] = evaluate(container, condition, fusions, legs)
            if not args.json:
                print_row(condition.name, results[condition.name])
    finally:
        container.close()
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
