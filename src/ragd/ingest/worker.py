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

import structlog

from ragd.config import Settings
from ragd.domain import Document, Job, JobCompletion, Vector
from ragd.embedding.base import Embedder
from ragd.errors import (
    EmbeddingError,
    EmptyDocument,
    FetchError,
    InvalidInput,
    ParseError,
    PayloadTooLarge,
    RagdError,
    UnsupportedMediaType,
)
from ragd.ingest.isolation import Cancelled
from ragd.ingest.pipeline import PreparedDocument, prepare
from ragd.store.base import LeaseLost, Store
from ragd.store.tables import utcnow
from ragd.telemetry.metrics import (
    INGEST_DOCUMENTS,
    INGEST_STAGE_DURATION,
    WORKER_HEARTBEAT,
    WORKER_LAST_CLAIM,
    worker_beat,
)

log = structlog.get_logger(__name__)

PERMANENT_ERRORS = (
    ParseError,
    EmptyDocument,
    UnsupportedMediaType,
    FetchError,
    InvalidInput,
    PayloadTooLarge,
)
# Documents finished per write transaction: one commit is most of the store cost of a
# short document, and a bounded batch keeps SQLite's write lock short for the API.
_COMPLETE_BATCH = 64
_EMBEDDER_WAIT_S = 120.0
# Documents (and texts) gathered per cycle while searches are being served.
_YIELD_BATCH = 16
# While a document parses: when to first ask whether it still exists, then how often.
_FIRST_CHECK_S = 1.0
_CHECK_EVERY_S = 1.0


class _Stopped(Exception):
    """Told to stop between embedding slices; ``run`` hands the batch back."""


class IngestWorker:
    """One worker identity; ``run`` loops until stopped, ``run_until_idle`` drains."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.host, self.owner = new_owner()
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
        """One cycle: claim, prepare, embed, store; returns how many documents it handled.

        It keeps claiming ``worker_claim_batch`` documents at a time until it holds
        ``worker_embed_batch`` texts to embed (or the queue is empty): on CPU the model is
        the bottleneck, and it runs fastest on big batches, which short documents only
        make when many of them are embedded together.
        """
        if not self._orphans_checked:
            self._recover_orphans()
        handled, prepared = self._claim_and_prepare()
        if prepared:
            self._embed_and_store(prepared)
        return handled

    def _claim_and_prepare(self) -> tuple[int, list[PreparedDocument]]:
        batch, wanted = self.settings.worker_claim_batch, self.settings.worker_embed_batch
        if self._searches_waiting():
            # Searches are being served: gather less, so each model call is short and
            # documents still complete steadily in the gaps the searches leave.
            batch = wanted = min(batch, wanted, _YIELD_BATCH)
        prepared: list[PreparedDocument] = []
        held: list[str] = []
        handled = texts = 0
        lease_checked = time.monotonic()
        while not self._stop.is_set():
            worker_beat(WORKER_HEARTBEAT)
            jobs = self.store.claim_jobs(
                owner=self.owner, limit=batch, lease_s=self.settings.worker_lease_s
            )
            if jobs:
                worker_beat(WORKER_LAST_CLAIM)
            handled += len(jobs)
            held.extend(job.document_id for job in jobs)
            for job in jobs:
                if self._stop.is_set():
                    return handled, []  # ``run`` hands back what was claimed
                doc = self._prepare(job, held)
                if doc is not None:
                    prepared.append(doc)
                    texts += len(doc.embed_texts)
                # A slow fetch or parse must not let the earlier claims' leases lapse.
                if time.monotonic() - lease_checked > self.settings.worker_lease_s / 3:
                    self._extend(held)
                    lease_checked = time.monotonic()
            if len(jobs) < batch or texts >= wanted:
                break
        return handled, prepared

    def _searches_waiting(self) -> bool:
        """Whether the embedder (when it ranks work, as the local model does) has served
        queries just now; remote embedders have no such notion."""
        active = getattr(self.embedder, "foreground_active", None)
        return bool(active()) if callable(active) else False

    def _extend(self, document_ids: Sequence[str]) -> None:
        self.store.extend_leases(
            owner=self.owner, document_ids=document_ids, lease_s=self.settings.worker_lease_s
        )

    def _recover_orphans(self) -> None:
        """Requeue what a crashed worker on this machine left half-done."""
        self._orphans_checked = True
        recovered = self.store.release_orphaned_jobs(host=self.host, is_alive=pid_alive)
        if recovered:
            log.info("requeued documents of a stopped worker", documents=recovered)

    def _prepare(self, job: Job, held: Sequence[str]) -> PreparedDocument | None:
        if job.attempts > self.settings.worker_max_attempts:
            self._fail(job, "gave up: the document's worker stopped too many times", True)
            return None
        try:
            return prepare(job, self.settings, cancelled=_Watch(self, job.document_id, held))
        except Cancelled:
            # Deleted (or no longer ours) while parsing: nothing to record, and the
            # parse child is already killed, so the next document starts now.
            log.info("document gone while parsing; parse stopped", document_id=job.document_id)
            return None
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
        completions = [self._completion(doc, vectors) for doc in prepared]
        for start in range(0, len(prepared), _COMPLETE_BATCH):
            part = completions[start : start + _COMPLETE_BATCH]
            docs = prepared[start : start + _COMPLETE_BATCH]
            try:
                with INGEST_STAGE_DURATION.labels(stage="store").time():
                    results = self.store.complete_jobs(part)
            except Exception:
                # One bad document rolled the batch back: store them one by one so only
                # that one fails.
                log.warning("batch completion failed; storing one by one", documents=len(part))
                for doc, completion in zip(docs, part, strict=True):
                    self._complete_one(doc, completion)
                continue
            for doc, document in zip(docs, results, strict=True):
                if document is None:
                    log.warning("lease lost; result discarded", document_id=doc.job.document_id)
                else:
                    self._completed(document)

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
        for start, end in _slices(len(texts), self.settings.worker_embed_batch):
            if self._stop.is_set():
                raise _Stopped
            worker_beat(WORKER_HEARTBEAT)  # a long embedding is not a stall
            matrix = self.embedder.embed_documents(texts[start:end])
            fresh.update(zip(hashes[start:end], matrix, strict=True))
            if time.monotonic() - lease_checked > self.settings.worker_lease_s / 3:
                self._extend(ids)
                lease_checked = time.monotonic()
        self.store.cache_embeddings(model, fresh)
        vectors.update(fresh)
        return vectors

    def _completion(self, doc: PreparedDocument, vectors: dict[str, Vector]) -> JobCompletion:
        chunks = doc.new_chunks(vectors)
        return JobCompletion(
            document_id=doc.job.document_id,
            lease_owner=self.owner,
            title=doc.parsed.title,
            mime_type=doc.parsed.mime_type,
            content_hash=doc.content_hash,
            chunks=chunks,
        )

    def _complete_one(self, doc: PreparedDocument, completion: JobCompletion) -> None:
        try:
            with INGEST_STAGE_DURATION.labels(stage="store").time():
                document = self.store.complete_job(completion)
        except LeaseLost:
            log.warning("lease lost; result discarded", document_id=doc.job.document_id)
        except Exception as exc:
            self._fail_with(doc.job, exc)
        else:
            self._completed(document)

    def _completed(self, document: Document) -> None:
        INGEST_DOCUMENTS.labels(outcome="ready" if document.status == "ready" else "failed").inc()
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


class _Watch:
    """Polled while a parse child runs: stop it when the document is gone or the worker
    is stopping, and keep the leases of everything the worker holds alive meanwhile.

    A first look only after ``_FIRST_CHECK_S``: most parses finish sooner, and then cost
    no query at all."""

    def __init__(self, worker: IngestWorker, document_id: str, held: Sequence[str]) -> None:
        self.worker = worker
        self.document_id = document_id
        self.held = held
        now = time.monotonic()
        self.next_check = now + _FIRST_CHECK_S
        self.next_extend = now + worker.settings.worker_lease_s / 3

    def __call__(self) -> bool:
        if self.worker._stop.is_set():
            return True
        now = time.monotonic()
        if now < self.next_check:
            return False
        self.next_check = now + _CHECK_EVERY_S
        found = self.worker.store.get_documents([self.document_id])
        if not found or found[0].status != "processing":
            return True
        if now >= self.next_extend:
            self.worker._extend(self.held)
            self.next_extend = now + self.worker.settings.worker_lease_s / 3
        return False


def _wait_for_embedder(embedder: Embedder, stop: threading.Event, timeout_s: float) -> None:
    """Claim nothing until the model can embed: documents claimed during a model load of
    several seconds would sit on leases that another, ready worker could be using. After
    ``timeout_s`` the workers start anyway, and an embedder that stays broken fails their
    documents through the usual retries, with its error on each."""
    embedder.start_loading()
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            embedder.check()
        except EmbeddingError:
            stop.wait(0.1)
        else:
            return


def _slices(total: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of about ``size``: a remainder under half a slice joins the
    one before it, since a model call of a few texts costs nearly as much as a full one."""
    bounds = [(start, min(start + size, total)) for start in range(0, total, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < size / 2:
        bounds[-2:] = [(bounds[-2][0], total)]
    return bounds


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (a lease owner's pid)."""
    if pid <= 0:
        return True  # not ours to judge; the lease will expire
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_owner() -> tuple[str, str]:
    """This host's name and a new lease owner ``host:pid:nonce`` on it: the pid lets a
    worker starting on the same host requeue a dead process's leases at once."""
    host = socket.gethostname()[:40].replace(":", "-")
    return host, f"{host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def run_pool(workers: Sequence[IngestWorker], stop: threading.Event, *, grace_s: float) -> int:
    """Run ``workers`` in threads until ``stop`` is set; returns how many overran the grace.

    Threads, not processes: they share one store and one loaded model, and the model
    already uses every core while it encodes (it lets one call in at a time), so what a
    second thread buys is parsing, chunking and storing the next batch while another
    thread embeds. On ``stop`` every worker stops claiming, stops at its next embedding
    slice and hands its documents back; one still busy after ``grace_s`` (a long parse or
    fetch) has its documents handed back from here, and its late result is discarded
    because the lease is gone.
    """
    if workers:
        _wait_for_embedder(workers[0].embedder, stop, _EMBEDDER_WAIT_S)
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"ragd-worker-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    log.info("worker pool started", concurrency=len(workers), pid=os.getpid())
    for thread in threads:
        thread.start()
    # Wake now and then: a thread that died would otherwise go unnoticed until stop.
    while not stop.wait(1.0):
        if not any(thread.is_alive() for thread in threads):
            log.error("every ingestion worker thread exited; stopping")
            stop.set()
    deadline = time.monotonic() + grace_s
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.1))
    late = 0
    for worker, thread in zip(workers, threads, strict=True):
        if thread.is_alive():
            late += 1
            released = worker.store.release_jobs(owner=worker.owner)
            log.warning(
                "ingestion worker did not stop in time", owner=worker.owner, released=released
            )
    log.info("worker pool stopped", concurrency=len(workers), late=late)
    return late
