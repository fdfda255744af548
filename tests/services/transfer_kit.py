"""What the export/import tests share: containers on real databases, a seeded collection,
search fingerprints, and surgery on real archives (re-packing a tar with one member
changed, flipping a byte)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import Job, JobCompletion, NewChunk, NewDocument
from ragd.embedding import Embedder
from ragd.store.base import Store

TEXTS = {
    "bridges": (
        "# Tower Bridge\n\nTower Bridge in London was completed in 1894 after eight years "
        "of work. It was restored in 2008 with new paint.\n\n## Engines\n\nThe bascules "
        "were raised by hydraulic engines powered by steam until 1976."
    ),
    "lights": (
        "# Lighthouse\n\nThe Lighthouse of Alexandria was about 100 metres tall and stood "
        "on the island of Pharos. It was never restored after the earthquakes."
    ),
    "canals": (
        "# Canals\n\nThe Grand Canal of China is the longest canal in the world, running "
        "from Beijing to Hangzhou. Locks on it date back to the Song dynasty."
    ),
    "rails": (
        "# Railways\n\nThe first public steam railway opened between Stockton and "
        "Darlington in 1825. Steam engines hauled coal and passengers."
    ),
}
QUERIES = (
    "when was Tower Bridge completed",
    "steam engines",
    "tallest lighthouse of the ancient world",
    "longest canal",
    "restored",
)


@contextmanager
def open_container(
    data_dir: Path, database_url: str, embedder: Embedder, **overrides: object
) -> Iterator[Container]:
    settings = load_settings(
        data_dir=data_dir, database_url=database_url, inprocess_worker=False, **overrides
    )
    container = Container(settings, embedder=embedder)
    container.store.migrate()
    try:
        yield container
    finally:
        container.close()


def seed(container: Container, name: str = "history") -> str:
    """A collection of four ready documents with metadata; its id."""
    collection = container.collections.create(name, "places and machines")
    for i, (title, text) in enumerate(TEXTS.items()):
        container.documents.add_text(
            collection.id, text, title=title, metadata={"n": i, "kind": title}
        )
    container.new_worker().run_until_idle()
    return collection.id


def fingerprint(container: Container, collection: str) -> list[list[tuple[str, int, float]]]:
    """Every query's hits as (document title, chunk ordinal, score to 4 places): what a
    user sees, independent of the database's chunk and document ids."""
    results = []
    for mode in ("hybrid", "keyword", "vector"):
        for query in QUERIES:
            hits = container.search.search(query, collections=[collection], top_k=5, mode=mode)
            chunks = container.store.get_chunks([h.chunk_id for h in hits])
            results.append(
                [(h.title or "", chunks[h.chunk_id].ordinal, round(h.score, 4)) for h in hits]
            )
    return results


def members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(archive, mode="r:") as tar:
        found = []
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            assert handle is not None
            found.append((info, handle.read()))
        return found


def repack(archive: Path, out: Path, changed: dict[str, bytes]) -> None:
    """``archive`` written again as ``out`` with the named members' bytes replaced."""
    with tarfile.open(out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members(archive):
            data = changed.get(info.name, data)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def member_offset(archive: Path, name: str) -> int:
    """Where ``name``'s data starts in the plain tar file."""
    with tarfile.open(archive, mode="r:") as tar:
        return tar.getmember(name).offset_data


_VOCABULARY = (
    "river bridge tower engine steam canal lock harbour light stone iron rail station crane "
    "mill wheel pump gate arch beam cable road tunnel ferry dock quay"
)
WORDS = _VOCABULARY.split()


def fill(
    store: Store,
    name: str,
    *,
    documents: int,
    chunks_per_document: int,
    model: str = "all-MiniLM-L6-v2",
    dim: int = 384,
    batch: int = 10,
) -> str:
    """A collection of ready documents with synthetic text and random unit vectors,
    written through the store's own job queue (no embedder): many chunks, fast. Its id."""
    rng = np.random.default_rng(7)
    collection = store.create_collection(
        name=name, description="synthetic", embedding_model=model, embedding_dim=dim
    )
    for start in range(0, documents, batch):
        for n in range(start, min(start + batch, documents)):
            body = f"document {n} " + " ".join(rng.choice(WORDS, 40))
            store.add_document(
                NewDocument(
                    collection_id=collection.id,
                    title=f"doc {n}",
                    source_type="text",
                    source=None,
                    mime_type="text/markdown",
                    content_hash=hashlib.sha256(body.encode()).hexdigest(),
                    source_hash=None,
                    metadata={"n": n},
                    content=body.encode(),
                )
            )
        jobs = store.claim_jobs(owner=f"fill-{start}", limit=batch, lease_s=600)
        store.complete_jobs([_completion(job, rng, chunks_per_document, dim) for job in jobs])
    return collection.id


def _completion(job: Job, rng: np.random.Generator, count: int, dim: int) -> JobCompletion:
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = []
    for i in range(count):
        text = " ".join(rng.choice(WORDS, 60))
        chunks.append(
            NewChunk(
                ordinal=i,
                text=text,
                heading_path=("Part", str(i // 10)),
                token_count=60,
                char_start=i * 400,
                char_end=i * 400 + len(text),
                text_hash=hashlib.sha256(f"{job.document_id}:{i}:{text}".encode()).hexdigest(),
                embedding=vectors[i],
            )
        )
    return JobCompletion(
        document_id=job.document_id,
        lease_owner=job.lease_owner,
        title=job.title,
        mime_type="text/markdown",
        content_hash=job.content_hash or "",
        chunks=chunks,
    )
