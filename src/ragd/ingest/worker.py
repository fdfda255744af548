"""The ingestion worker: claims queued documents, processes them, records the outcome.

Runs in the API process (embedded mode), in ``ragd ingest`` (inline), or as ``ragd worker``
anywhere. Permanent problems (a corrupt PDF, an empty file, a refused URL) fail a document
at once with a readable error; transient ones (timeouts, a busy embedder) are retried
with exponential backoff and jitter up to the configured number of attempts.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Sequence

import numpy as np
import structlog

from ragd.config import Settings
from ragd.embedding.base import Embedder
from ragd.errors import (
    EmptyDocument,
    FetchError,
    InvalidInput,
    ParseError,
    PayloadTooLarge,
    RagdError,
    UnsupportedMediaType,
)
from ragd.ingest.pipeline import PreparedDocument, prepare
from ragd.metrics import INGEST_DOCUMENTS, INGEST_STAGE_DURATION
from ragd.models import utcnow
from ragd.store.base import Store
from ragd.store.jobs import LeaseLost
from ragd.store.records import Job, JobCompletion, NewChunk, Vector

log = structlog.get_logger(__name__)

PERMANENT_ERRORS = (
    ParseError,
    EmptyDocument,
    UnsupportedMediaType,
    FetchError,
    InvalidInput,
    PayloadTooLarge,
)
_EMBED_SLICE = 256


class _Stopped(Exception):
    """Told to stop between embedding slices; ``run`` hands the batch back."""


class IngestWorker:
    """One worker identity; ``run`` loops until stopped, ``run_until_idle`` drains."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.host = socket.gethostname()[:40].replace(":", "-")
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._orphans_checked = False
        self._stop = threading.Event()  # set only through ``run``

    def run(self, stop: threading.Event) -> None:
        """Poll for work until ``stop`` is set, then hand back anything unfinished."""
        log.info("ingestion worker started", owner=self.owner)
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    handled = self.run_once()
                except Exception as exc:  # keep the loop alive through database hiccups
                    log.error("worker cycle failed", error_type=type(exc).__name__)
                    handled = 0
                if handled == 0:
                    stop.wait(self.settings.worker_poll_interval_s)
        finally:
            self._stop = threading.Event()  # a later ``run_until_idle`` is not stopped
            released = self.store.release_jobs(owner=self.owner)
            log.info("ingestion worker stopped", owner=self.owner, released=released)

    def run_until_idle(self) -> int:
        """Process jobs until none is due; returns how many documents were handled."""
        total = 0
        while handled := self.run_once():
            total += handled
        return total

    def run_once(self) -> int:
        if not self._orphans_checked:
            self._recover_orphans()
        jobs = self.store.claim_jobs(
            owner=self.owner,
            limit=self.settings.worker_claim_batch,
            lease_s=self.settings.worker_lease_s,
        )
        if not jobs:
            return 0
        prepared = [p for p in (self._prepare(job) for job in jobs) if p is not None]
        if prepared:
            self._embed_and_store(prepared)
        return len(jobs)

    def _recover_orphans(self) -> None:
        """Requeue what a crashed worker on this machine left half-done."""
        self._orphans_checked = True
        recovered = self.store.release_orphaned_jobs(host=self.host, is_alive=_pid_alive)
        if recovered:
            log.info("requeued documents of a stopped worker", documents=recovered)

    def _prepare(self, job: Job) -> PreparedDocument | None:
        if job.attempts > self.settings.worker_max_attempts:
            self._fail(job, "gave up: the document's worker stopped too many times", True)
            return None
        try:
            return prepare(job, self.settings)
        except Exception as exc:
            self._fail_with(job, exc)
            return None

    def _embed_and_store(self, prepared: Sequence[PreparedDocument]) -> None:
        try:
            with INGEST_STAGE_DURATION.labels(stage="embed").time():
                vectors = self._embed_all(prepared)
        except _Stopped:
            return  # shutting down: ``run`` releases these documents, no attempt charged
        except Exception as exc:
            for doc in prepared:
                self._fail_with(doc.job, exc)
            return
        for doc in prepared:
            try:
                self._complete(doc, vectors)
            except LeaseLost:
                log.warning("lease lost; result discarded", document_id=doc.job.document_id)
            except Exception as exc:
                self._fail_with(doc.job, exc)

    def _embed_all(self, prepared: Sequence[PreparedDocument]) -> dict[str, Vector]:
        """Vectors for every chunk, from the cache where possible, the rest in batches."""
        model = self.embedder.model_name
        all_hashes = [h for doc in prepared for h in doc.text_hashes]
        vectors = self.store.cached_embeddings(model, all_hashes)
        missing: dict[str, str] = {}
        for doc in prepared:
            for h, text in zip(doc.text_hashes, doc.embed_texts, strict=True):
                if h not in vectors:
                    missing[h] = text
        hashes, texts = list(missing), list(missing.values())
        ids = [doc.job.document_id for doc in prepared]
        lease_checked = time.monotonic()
        fresh: dict[str, Vector] = {}
        for start in range(0, len(texts), _EMBED_SLICE):
            if self._stop.is_set():
                raise _Stopped
            matrix = self.embedder.embed_documents(texts[start : start + _EMBED_SLICE])
            fresh.update(zip(hashes[start : start + _EMBED_SLICE], matrix, strict=True))
            if time.monotonic() - lease_checked > self.settings.worker_lease_s / 3:
                self.store.extend_leases(
                    owner=self.owner, document_ids=ids, lease_s=self.settings.worker_lease_s
                )
                lease_checked = time.monotonic()
        self.store.cache_embeddings(model, fresh)
        vectors.update(fresh)
        return vectors

    def _complete(self, doc: PreparedDocument, vectors: dict[str, Vector]) -> None:
        chunks = [
            NewChunk(
                ordinal=chunk.ordinal,
                text=chunk.text,
                heading_path=chunk.heading_path,
                token_count=chunk.token_count,
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                text_hash=h,
                embedding=np.asarray(vectors[h], dtype=np.float32),
            )
            for chunk, h in zip(doc.chunks, doc.text_hashes, strict=True)
        ]
        with INGEST_STAGE_DURATION.labels(stage="store").time():
            document = self.store.complete_job(
                JobCompletion(
                    document_id=doc.job.document_id,
                    lease_owner=self.owner,
                    title=doc.parsed.title,
                    mime_type=doc.parsed.mime_type,
                    content_hash=doc.content_hash,
                    chunks=chunks,
                )
            )
        INGEST_DOCUMENTS.labels(outcome="ready").inc()
        log.info(
            "document processed",
            document_id=document.id,
            status=document.status,
            chunks=document.chunk_count,
        )

    def _fail_with(self, job: Job, exc: Exception) -> None:
        if isinstance(exc, PERMANENT_ERRORS):
            self._fail(job, exc.detail, True)
        elif isinstance(exc, RagdError):
            self._fail(job, exc.detail, False)
        else:
            log.exception("unexpected ingestion error", document_id=job.document_id)
            self._fail(job, f"internal error while processing ({type(exc).__name__})", False)

    def _fail(self, job: Job, error: str, permanent: bool) -> None:
        retry_at = None
        if not permanent and job.attempts < self.settings.worker_max_attempts:
            retry_at = utcnow() + dt.timedelta(seconds=self._backoff(job.attempts))
        self.store.fail_job(
            document_id=job.document_id, owner=self.owner, error=error, retry_at=retry_at
        )
        INGEST_DOCUMENTS.labels(outcome="failed" if retry_at is None else "retry").inc()
        log.warning(
            "document failed" if retry_at is None else "document will be retried",
            document_id=job.document_id,
            attempt=job.attempts,
            error=error,
        )

    def _backoff(self, attempts: int) -> float:
        base = self.settings.worker_retry_base_s * (2 ** max(attempts - 1, 0))
        return float(base * (0.5 + random.random()))  # full jitter spreads retries of a burst


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not ours to judge; the lease will expire
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
