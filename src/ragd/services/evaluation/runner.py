"""Evaluate ragd on a BEIR dataset, end to end through its own services.

The corpus goes in the way a user's documents do (``DocumentService.add_text``, the queue,
an ``IngestWorker``: parse, chunk, embed, store) into a fresh collection, and every judged
query goes through ``SearchService.search``; nothing is called below the service layer, so
the figures hold for the API too. Ingestion rate and search latency are timed on the way.

Identical texts are stored once (re-ingesting the same content is a no-op), so one stored
document may stand for several corpus ids: it then takes their places in the ranking one
after the other, in corpus order.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ragd.errors import RagdError
from ragd.limits import CEILINGS
from ragd.services.collections import CollectionService
from ragd.services.documents import DocumentService
from ragd.services.evaluation.beir import BeirDataset, CorpusDoc
from ragd.services.evaluation.metrics import (
    Metrics,
    QueryScores,
    mean_scores,
    percentile,
    score_query,
)
from ragd.services.evaluation.ranking import ranked_documents
from ragd.services.ingestion import IngestionService
from ragd.services.search import SearchMode, SearchService

ProgressFn = Callable[[str, int, int], None]
"""Called as ``(phase, done, total)``; phases are ``submitting`` and ``ingesting``."""


class EvalServices(Protocol):
    """The services an evaluation uses (a Container has them all)."""

    collections: CollectionService
    documents: DocumentService
    search: SearchService
    ingestion: IngestionService


def _no_progress(phase: str, done: int, total: int) -> None:
    """The default progress callback: say nothing."""


@dataclass(frozen=True)
class IngestReport:
    collection_id: str
    documents: int
    """Corpus documents submitted."""
    chunks: int
    seconds: float
    corpus_ids: dict[str, list[str]]
    """Stored document id → the corpus ids it stands for."""
    failed: dict[str, str] = field(default_factory=dict)
    """Corpus id → why it was refused or failed."""

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ModeReport:
    mode: SearchMode
    metrics: Metrics
    latencies_ms: list[float]
    per_query: dict[str, QueryScores]

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: _round(v) for k, v in self.metrics.as_dict().items()},
            "search_p50_ms": round(self.p50_ms, 2),
            "search_p95_ms": round(self.p95_ms, 2),
        }


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    collection_name: str
    top_k: int
    ingest: IngestReport
    modes: list[ModeReport]
    kept: bool

    def as_dict(self) -> dict[str, Any]:
        """The shape ``ragd eval --json`` prints."""
        ingest = self.ingest
        return {
            "dataset": self.dataset,
            "top_k": self.top_k,
            "collection": {
                "id": ingest.collection_id,
                "name": self.collection_name,
                "kept": self.kept,
            },
            "ingestion": {
                "documents": ingest.documents,
                "stored_documents": len(ingest.corpus_ids),
                "failed_documents": len(ingest.failed),
                "chunks": ingest.chunks,
                "seconds": round(ingest.seconds, 2),
                "docs_per_s": round(ingest.docs_per_s, 2),
                "chunks_per_s": round(ingest.chunks_per_s, 2),
            },
            "modes": {m.mode: m.as_dict() for m in self.modes},
        }


def _round(value: float | int) -> float | int:
    return value if isinstance(value, int) else round(value, 4)


def run_beir(
    services: EvalServices,
    dataset: BeirDataset,
    *,
    modes: Sequence[SearchMode],
    k: int = 10,
    collection_name: str | None = None,
    keep: bool = False,
    progress: ProgressFn = _no_progress,
) -> EvalReport:
    """Ingest ``dataset`` into a new collection, evaluate each mode, and delete the
    collection again unless ``keep`` (also when interrupted, so no half-built evaluation
    collection is left behind)."""
    collection = services.collections.create(
        collection_name or default_collection_name(dataset.name),
        f"ragd eval of {dataset.name}",
    )
    try:
        ingest = ingest_corpus(services, collection.id, dataset.corpus, progress=progress)
        reports = [evaluate_mode(services, dataset, ingest, mode, k) for mode in modes]
    finally:
        if not keep:
            services.collections.delete(collection.id)
    return EvalReport(
        dataset=dataset.name,
        collection_name=collection.name,
        top_k=k,
        ingest=ingest,
        modes=reports,
        kept=keep,
    )


def default_collection_name(dataset_name: str) -> str:
    """``eval-<dataset>-<random>``: a valid collection name that will not clash."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", dataset_name).strip("-._")[:60] or "dataset"
    return f"eval-{slug}-{uuid.uuid4().hex[:8]}"


def ingest_corpus(
    services: EvalServices,
    collection_id: str,
    corpus: Sequence[CorpusDoc],
    *,
    progress: ProgressFn = _no_progress,
) -> IngestReport:
    """Submit every document, then drain the queue with a worker of our own; the clock
    runs from the first submission to the last document ready."""
    started = time.perf_counter()
    corpus_ids, created, failed = _submit(services, collection_id, corpus, progress)
    services.ingestion.drain(created, lambda done, total: progress("ingesting", done, total))
    seconds = time.perf_counter() - started
    for document in services.ingestion.documents(list(corpus_ids)):
        if document.status == "failed":
            for corpus_id in corpus_ids.pop(document.id):
                failed[corpus_id] = document.error or "failed"
    chunks = services.collections.get(collection_id).chunk_count
    return IngestReport(
        collection_id=collection_id,
        documents=len(corpus),
        chunks=chunks,
        seconds=seconds,
        corpus_ids=corpus_ids,
        failed=failed,
    )


def _submit(
    services: EvalServices, collection_id: str, corpus: Sequence[CorpusDoc], progress: ProgressFn
) -> tuple[dict[str, list[str]], list[str], dict[str, str]]:
    """Queue the corpus; the title goes in as the document title (not glued to the
    text), so it is indexed and embedded the way a user's titled document is."""
    corpus_ids: dict[str, list[str]] = {}
    created: list[str] = []
    failed: dict[str, str] = {}
    for n, doc in enumerate(corpus, start=1):
        try:
            document, is_new = services.documents.add_text(
                collection_id,
                doc.text,
                title=doc.title[: CEILINGS.document_title_chars] or None,
                metadata={"beir_id": doc.id},
            )
        except RagdError as exc:
            failed[doc.id] = exc.detail
        else:
            corpus_ids.setdefault(document.id, []).append(doc.id)
            if is_new:
                created.append(document.id)
        if n % 50 == 0 or n == len(corpus):
            progress("submitting", n, len(corpus))
    return corpus_ids, created, failed


def evaluate_mode(
    services: EvalServices, dataset: BeirDataset, ingest: IngestReport, mode: SearchMode, k: int
) -> ModeReport:
    """Every judged query through the search service, timed one by one."""
    latencies: list[float] = []
    per_query: dict[str, QueryScores] = {}
    for query_id, text in dataset.queries.items():
        started = time.perf_counter()
        ranked = ranked_documents(
            services.search, text, collection_id=ingest.collection_id, mode=mode, k=k
        )
        latencies.append((time.perf_counter() - started) * 1000)
        corpus_ranked = [cid for doc in ranked for cid in ingest.corpus_ids.get(doc, ())]
        per_query[query_id] = score_query(corpus_ranked, dataset.qrels[query_id], k)
    metrics = mean_scores(list(per_query.values()), k)
    return ModeReport(mode=mode, metrics=metrics, latencies_ms=latencies, per_query=per_query)
