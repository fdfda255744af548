"""Re-chunking and re-embedding a collection as a background job (kind ``reindex``).

Every ready document is parsed again from its stored content (URL documents are fetched
again), chunked with the chosen chunk size and embedded with the server's model, into a
*generation* of chunks that search never sees (see :mod:`ragd.store.sql.reindex`).
Search keeps answering from the old chunks meanwhile. When every ready document is in
the generation, including those ingested during the reindex, one transaction switches
the collection to it, with its model, dimension and chunk size. A crash resumes from the
documents not yet done; a cancel or a failure drops the generation and leaves the old
index as it was.

ragd embeds with one model, the configured one, so that is the model a reindex moves a
collection to: change ``RAGD_EMBEDDING_MODEL`` (on the workers too), then reindex. Until
the switch, the collection keeps its old model, and vector search of it is refused
where the configured model differs (keyword search still answers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import structlog

from ragd.auth import Allowed
from ragd.config import Settings
from ragd.domain import JobCompletion, JobInfo, JobStatus, Vector
from ragd.embedding.base import Embedder
from ragd.errors import Conflict, InvalidInput, RagdError
from ragd.ingest.isolation import Cancelled
from ragd.ingest.pipeline import PreparedDocument, prepare
from ragd.ingest.worker import PERMANENT_ERRORS
from ragd.services.collections import CollectionService
from ragd.services.jobs import JobCancelled, JobContext, JobService
from ragd.store.base import Store

log = structlog.get_logger(__name__)

REINDEX = "reindex"
CHUNK_TOKENS_MIN, CHUNK_TOKENS_MAX = 16, 8192
_ACTIVE = ("queued", "running")


def generation_id(job_id: str) -> str:
    """The id a reindex job's chunks carry until the switch: never a collection's."""
    return "gen_" + job_id.removeprefix("job_")


class ReindexService:
    """Starts reindex jobs and runs them (the handler of kind ``reindex``)."""

    def __init__(
        self,
        store: Store,
        collections: CollectionService,
        jobs: JobService,
        embedder: Embedder,
        settings: Settings,
    ) -> None:
        self.store = store
        self.collections = collections
        self.jobs = jobs
        self.embedder = embedder
        self.settings = settings
        jobs.register(REINDEX, self.run)

    def start(
        self,
        collection_ref: str,
        *,
        actor: str,
        model: str | None = None,
        chunk_size: int | None = None,
        allowed: Allowed = None,
    ) -> JobInfo:
        """Queue a reindex of the collection to ``model`` (the configured one; another
        is refused, since this server cannot embed with it) and ``chunk_size`` tokens per
        chunk (default: the collection's current size). ``Conflict`` while another
        reindex of the collection is queued or running."""
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        configured = self.embedder.model_name
        if model is not None and model != configured:
            raise InvalidInput(
                f"this server embeds with {configured!r}; to reindex with {model!r}, set "
                "RAGD_EMBEDDING_MODEL to it on the servers and workers, then reindex"
            )
        if chunk_size is not None and not CHUNK_TOKENS_MIN <= chunk_size <= CHUNK_TOKENS_MAX:
            raise InvalidInput(
                f"chunk_size must be between {CHUNK_TOKENS_MIN} and {CHUNK_TOKENS_MAX} tokens"
            )
        for job in self.store.list_jobs(
            kind=REINDEX, collection_ids=[collection.id], include_unscoped=False, limit=20
        ).items:
            if job.status in _ACTIVE:
                raise Conflict(
                    f"collection {collection.name!r} is being reindexed already (job "
                    f"{job.id}); cancel that job or wait for it"
                )
        params = {
            "model": configured,
            "chunk_max_tokens": chunk_size
            if chunk_size is not None
            else collection.chunk_max_tokens,
        }
        job = self.jobs.submit(
            kind=REINDEX,
            collection_id=collection.id,
            params=params,
            actor=actor,
            dedup_key=f"{REINDEX}:{collection.id}",
        )
        self._started(job, actor)
        return job

    def _started(self, job: JobInfo, actor: str) -> None:
        """A reindex was asked for (the seam where it is recorded for audit)."""
        log.info("reindex started", job_id=job.id, collection_id=job.collection_id, actor=actor)

    def _finished(self, job: JobInfo, result: dict[str, Any]) -> None:
        """A reindex switched its collection (the seam where it is recorded for audit)."""
        log.info(
            "reindex finished",
            job_id=job.id,
            collection_id=job.collection_id,
            documents=result["documents"],
            chunks=result["chunks"],
            embedding_model=result["embedding_model"],
            chunk_size=result["chunk_max_tokens"],  # a "token" key would be redacted
        )

    # -- the job ----------------------------------------------------------------------------

    def run(self, job: JobInfo, ctx: JobContext) -> dict[str, Any]:
        """Build the generation document by document, then switch (the module doc)."""
        if job.collection_id is None:
            raise InvalidInput("a reindex job needs a collection")
        model = str(job.params["model"])
        if model != self.embedder.model_name:
            raise InvalidInput(
                f"this worker embeds with {self.embedder.model_name!r}, not {model!r}: "
                "run the reindex on workers configured with that model"
            )
        generation = generation_id(job.id)
        try:
            result = _Run(self, job, ctx, generation).run()
        except BaseException as exc:
            if not ctx.will_resume(exc):
                dropped = self.store.drop_generation(generation)
                log.info("reindex dropped its new chunks", job_id=job.id, chunks=dropped)
            raise
        self._finished(job, result)
        return result


class _Run:
    """One attempt of a reindex job."""

    def __init__(self, service: ReindexService, job: JobInfo, ctx: JobContext, generation: str):
        self.service = service
        self.store = service.store
        self.job = job
        self.ctx = ctx
        self.generation = generation
        self.collection_id = job.collection_id or ""
        chunk = job.params.get("chunk_max_tokens")
        self.chunk_max_tokens = None if chunk is None else int(chunk)

    def run(self) -> dict[str, Any]:
        self._drop_abandoned()
        dimension = self.service.embedder.dimension
        done, total = self.store.reindex_progress(self.collection_id, generation=self.generation)
        self.ctx.progress(done, total)
        batch_size = self.service.settings.worker_claim_batch
        while True:
            pending = self.store.reindex_pending(
                self.collection_id, generation=self.generation, limit=batch_size
            )
            if not pending:
                done, total = self.store.reindex_progress(
                    self.collection_id, generation=self.generation
                )
                self.ctx.progress(done, total)  # the last report: none after the switch
                left = self.store.switch_generation(
                    self.collection_id,
                    generation=self.generation,
                    job_id=self.job.id,
                    owner=self.ctx.owner,
                    embedding_model=self.service.embedder.model_name,
                    embedding_dim=dimension,
                    chunk_max_tokens=self.chunk_max_tokens,
                )
                if left == 0:
                    break
                continue  # documents became ready meanwhile: they join the generation too
            prepared = [self._prepare(document) for document in pending]
            vectors = self._embed(prepared)
            stored = self.store.add_generation_chunks(
                self.generation,
                [self._completion(doc, vectors) for doc in prepared],
                job_id=self.job.id,
                owner=self.ctx.owner,
            )
            done += stored
            total = max(total, done)
            self.ctx.progress(done, total)
        collection = self.store.get_collection(self.collection_id)
        return {
            "documents": done,
            "chunks": collection.chunk_count,
            "embedding_model": collection.embedding_model,
            "embedding_dim": collection.embedding_dim,
            "chunk_max_tokens": collection.chunk_max_tokens,
        }

    def _drop_abandoned(self) -> None:
        """Generations of earlier reindexes of this collection that ended without
        cleaning up (their worker died too often): nobody will finish them."""
        ended_statuses: tuple[JobStatus, ...] = ("failed", "cancelled")
        for status in ended_statuses:
            ended = self.store.list_jobs(
                kind=REINDEX,
                status=status,
                collection_ids=[self.collection_id],
                include_unscoped=False,
                limit=20,
            )
            for other in ended.items:
                self.store.drop_generation(generation_id(other.id))

    def _prepare(self, document: Any) -> PreparedDocument:
        job = dataclasses.replace(document, chunk_max_tokens=self.chunk_max_tokens)
        try:
            return prepare(job, self.service.settings, cancelled=self.ctx.cancelled)
        except Cancelled:
            raise JobCancelled from None
        except RagdError as exc:
            if isinstance(exc, PERMANENT_ERRORS):
                raise InvalidInput(
                    f"document {job.document_id} could not be re-chunked: {exc.detail}"
                ) from None
            raise

    def _embed(self, prepared: Sequence[PreparedDocument]) -> dict[str, Vector]:
        """Vectors for every chunk, from the embedding cache where possible; progress is
        reported between model calls, so the lease holds and a cancel is heard."""
        embedder = self.service.embedder
        hashes = [h for doc in prepared for h in doc.text_hashes]
        vectors = self.store.cached_embeddings(embedder.model_name, hashes)
        missing: dict[str, str] = {}
        for doc in prepared:
            for h, text in zip(doc.text_hashes, doc.embed_texts, strict=True):
                if h not in vectors:
                    missing[h] = text
        keys, texts = list(missing), list(missing.values())
        step = self.service.settings.worker_embed_batch
        fresh: dict[str, Vector] = {}
        for start in range(0, len(texts), step):
            matrix = embedder.embed_documents(texts[start : start + step])
            fresh.update(zip(keys[start : start + step], matrix, strict=True))
            self.ctx.heartbeat()
        self.store.cache_embeddings(embedder.model_name, fresh)
        vectors.update(fresh)
        return vectors

    def _completion(self, doc: PreparedDocument, vectors: dict[str, Vector]) -> JobCompletion:
        return JobCompletion(
            document_id=doc.job.document_id,
            lease_owner=self.ctx.owner,
            title=doc.parsed.title,
            mime_type=doc.parsed.mime_type,
            content_hash=doc.content_hash,
            chunks=doc.new_chunks(vectors),
        )


__all__ = ["REINDEX", "ReindexService", "generation_id"]
