"""Hybrid search latency end to end in the service, per embedding backend, in one run.

A SQLite collection of msmarco passages (5,000 by default, ingested once through ragd's
services into ``--data-dir`` and kept), then every msmarco query through
``SearchService.search`` (hybrid, top 10) for ``--rounds`` rounds. The variants are
measured round by round in turn, so that the load of a shared machine falls on all of
them alike:

- ``torch`` and ``onnx`` (``RAGD_EMBEDDING_BACKEND``), query cache off, at 1 and 2
  model threads (``RAGD_EMBEDDING_THREADS``);
- ``onnx, cached``: the query cache on and already holding the queries (a repeat);
- ``onnx, cached, BLAS on every core``: the same with numpy's OpenBLAS on every core
  during its turn, as before the store limited it to one thread (the vector products);
- ``..., embedding in turn``: the default with the query embedded after the keyword leg
  instead of beside it, and ``..., legs apart`` also with every leg of the hybrid search
  in a read transaction of its own (the default's and the cached variant's), as before
  the embedded store ran them in one snapshot: the baselines of those changes, in the
  same run;
- ``..., feedback rescore``: the feedback round re-scoring the first pass's candidates
  instead of a second vector search (``RAGD_HYBRID_FEEDBACK_LEG=rescore``);
- ``embed only``: the query embedding alone, per backend, for the share of the search.

With ``--memory`` it also starts ``ragd serve`` once per backend on an empty data
directory and reads its resident memory when idle (after /readyz and a pause).

    .venv/bin/python benchmarks/query_latency.py [--rounds 5] [--docs 5000] [--memory]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx

from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.retrieval.hybrid import HybridRanker
from ragd.services.evaluation.beir import limit_dataset, load_beir
from ragd.services.evaluation.metrics import percentile
from ragd.services.evaluation.runner import ingest_corpus
from ragd.telemetry.logging import configure_logging

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / ".." / "shared" / "datasets"
COLLECTION = "latency-msmarco"


def collection_id(container: Container, datasets: Path, docs: int, name: str) -> str:
    """The kept benchmark collection, ingested on the first run."""
    for collection in container.collections.list_all(counts=False):
        if collection.name == name:
            return collection.id
    dataset = limit_dataset(load_beir(datasets / "msmarco"), max_docs=docs)
    corpus = dataset.corpus[:docs]
    created = container.collections.create(name, "query latency benchmark")
    report = ingest_corpus(container, created.id, corpus)
    print(f"ingested {report.chunks} chunks in {report.seconds:.0f} s", file=sys.stderr)
    return created.id


def timed(run: Callable[..., object], *args: object, **kwargs: object) -> float:
    started = time.perf_counter()
    run(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


class LegsApart:
    """A store seen without its search snapshot, so that each leg of a hybrid search
    (keyword, vector, feedback vectors, vector) is a read transaction of its own."""

    def __init__(self, store: object) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        if name == "search_snapshot":
            raise AttributeError(name)
        return getattr(self._store, name)


def as_before(container: Container, *, legs_apart: bool) -> Container:
    """``container`` with the query embedded after the keyword leg, not beside it, and
    with ``legs_apart`` each leg in a transaction of its own too."""
    ranker = container.search.hybrid
    store = cast(Any, LegsApart(container.store)) if legs_apart else container.store
    params = dataclasses.replace(ranker.params, embed_beside_keyword=False)
    container.search.hybrid = HybridRanker(store, ranker.embedder, params)
    return container


def rescoring(container: Container) -> Container:
    """``container`` with the feedback round re-scoring the first pass's candidates
    (``RAGD_HYBRID_FEEDBACK_LEG=rescore``) instead of searching again."""
    ranker = container.search.hybrid
    params = dataclasses.replace(ranker.params, feedback_leg="rescore")
    container.search.hybrid = HybridRanker(container.store, ranker.embedder, params)
    return container


def variants(data_dir: Path) -> dict[str, Callable[[], Container]]:
    """How to build each variant's container, on the same database (each with its own
    embedder)."""

    def container(backend: str, threads: int, cache: int) -> Container:
        settings = load_settings(
            data_dir=str(data_dir),
            inprocess_worker=False,
            embedding_backend=backend,
            embedding_threads=threads,
            query_cache_size=cache,
        )
        return Container(settings)

    return {
        "torch, 2 threads": lambda: container("torch", 2, 0),
        "torch, 1 thread": lambda: container("torch", 1, 0),
        "onnx, 2 threads": lambda: container("onnx", 2, 0),
        "onnx, 2 threads, embedding in turn": lambda: as_before(
            container("onnx", 2, 0), legs_apart=False
        ),
        "onnx, 2 threads, in turn, legs apart": lambda: as_before(
            container("onnx", 2, 0), legs_apart=True
        ),
        "onnx, 1 thread": lambda: container("onnx", 1, 0),
        "onnx, 1 thread, embedding in turn": lambda: as_before(
            container("onnx", 1, 0), legs_apart=False
        ),
        "onnx, 2 threads, feedback rescore": lambda: rescoring(container("onnx", 2, 0)),
        "onnx, cached": lambda: container("onnx", 0, 100_000),
        "onnx, cached, feedback rescore": lambda: rescoring(container("onnx", 0, 100_000)),
        "onnx, cached, legs apart": lambda: as_before(
            container("onnx", 0, 100_000), legs_apart=True
        ),
        "onnx, cached, BLAS on every core": lambda: container("onnx", 0, 100_000),
    }


def blas_threads(name: str) -> contextlib.AbstractContextManager[object]:
    """OpenBLAS on every core for the variant that measures the old behaviour."""
    if "BLAS on every core" not in name:
        return contextlib.nullcontext()
    from threadpoolctl import ThreadpoolController

    openblas = ThreadpoolController().select(internal_api="openblas")
    return openblas.limit(limits=os.cpu_count() or 1)  # type: ignore[no-any-return]


def measure(
    containers: dict[str, Container], scope: str, queries: list[str], rounds: int
) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in containers}
    embed_samples: dict[str, list[float]] = {name: [] for name in containers}
    for container in containers.values():  # warm-up; fills the cache of the cached one
        for query in queries:
            container.search.search(query, collections=[scope], top_k=10)
    for _ in range(rounds):
        for name, container in containers.items():
            inner = container.embedder
            if isinstance(inner, LocalEmbedder) and inner.backend == "torch" and inner.threads:
                import torch

                torch.set_num_threads(inner.threads)  # process-wide: set for each turn
            with blas_threads(name):
                for query in queries:
                    search = container.search.search
                    samples[name].append(timed(search, query, collections=[scope], top_k=10))
                    embed_samples[name].append(timed(container.embedder.embed_query, query))
    return {
        name: {
            "search_p50_ms": round(percentile(samples[name], 50), 2),
            "search_p99_ms": round(percentile(samples[name], 99), 2),
            "embed_p50_ms": round(percentile(embed_samples[name], 50), 2),
            "searches": len(samples[name]),
        }
        for name in containers
    }


def idle_rss_mb(backend: str, seconds: float = 5.0) -> float:
    """Resident memory of a fresh ``ragd serve`` once ready and idle."""
    with tempfile.TemporaryDirectory() as data_dir:
        port = 20000 + os.getpid() % 20000
        env = {
            **os.environ,
            "RAGD_DATA_DIR": data_dir,
            "RAGD_EMBEDDING_BACKEND": backend,
            "HF_HUB_OFFLINE": "1",
        }
        command = [sys.executable, "-m", "ragd", "serve", "--host", "127.0.0.1"]
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            time.sleep(seconds)
            if process.poll() is not None:
                raise RuntimeError(f"ragd serve ({backend}) exited with {process.returncode}")
            status = Path(f"/proc/{process.pid}/status").read_text()
            kb = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
            )
            return round(kb / 1024, 1)
        finally:
            process.terminate()
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/ragd-query-latency"))
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--collection", default=COLLECTION, help="kept or made on first run")
    parser.add_argument("--memory", action="store_true", help="also idle RSS of ragd serve")
    parser.add_argument(
        "--only", nargs="*", default=[], help="the variants whose names contain one of these"
    )
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    containers = {
        name: build()
        for name, build in variants(args.data_dir).items()
        if not args.only or any(part in name for part in args.only)
    }
    first = next(iter(containers.values()))
    first.store.migrate()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        scope = collection_id(first, args.datasets_dir, args.docs, args.collection)
        result["chunks"] = first.collections.get(scope).chunk_count
        queries = list(load_beir(args.datasets_dir / "msmarco").queries.values())
        result["variants"] = measure(containers, scope, queries, args.rounds)
    finally:
        for container in containers.values():
            container.close()
    if args.memory:
        result["idle_rss_mb"] = {backend: idle_rss_mb(backend) for backend in ("torch", "onnx")}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
