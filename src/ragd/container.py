"""Builds every provider and service from one Settings object, in one place.

The HTTP app, the CLI and the tests all start from a :class:`Container`, so which Store,
Embedder and Generator run is decided here and nowhere else.
"""

from __future__ import annotations

import threading
import time
from functools import cache

import structlog

from ragd.config import Settings
from ragd.embedding import Embedder, build_embedder
from ragd.generation.backends import BACKENDS
from ragd.generation.base import Generator
from ragd.generation.extractive import ExtractiveGenerator
from ragd.generation.llm import LLMConfig, LLMGenerator
from ragd.ingest.worker import IngestWorker
from ragd.services.answers import AnswerService
from ragd.services.audit import AuditService
from ragd.services.chat import ChatService
from ragd.services.collections import CollectionService
from ragd.services.completions import CompletionService
from ragd.services.database import DatabaseService
from ragd.services.documents import DocumentService
from ragd.services.ingestion import IngestionService
from ragd.services.jobs import JobService
from ragd.services.keys import KeyService
from ragd.services.reindex import ReindexService
from ragd.services.search import SearchService
from ragd.services.source_sync import SourceSyncer
from ragd.services.sources import SourceService
from ragd.services.transfer import TransferService
from ragd.services.transfer.jobs import TransferJobs
from ragd.signing import Signer, load_or_create_signer
from ragd.store import Store, open_store

log = structlog.get_logger(__name__)


def build_generator(settings: Settings) -> Generator:
    """An LLM when one is configured, otherwise the offline extractive generator.

    ``llm_provider`` picks the backend from ``BACKENDS``: ``anthropic`` uses Anthropic's
    Messages API (``llm_base_url`` optional, Anthropic's own by default); ``openai`` needs
    ``llm_base_url`` to enable the LLM.
    """
    backend = BACKENDS[settings.llm_provider]
    if backend.needs_base_url and not settings.llm_base_url:
        return ExtractiveGenerator()
    config = LLMConfig(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )
    return LLMGenerator(backend.open(config), history_tokens=settings.llm_history_tokens)


class Container:
    """The running application's parts; ``close`` releases what ``__init__`` opened."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        self.embedder = embedder or build_embedder(settings)
        self.generator = build_generator(settings)
        self.limits = settings.limits()
        self.collections = CollectionService(self.store, self.embedder)
        self.documents = DocumentService(self.store, self.collections, settings, self.limits)
        self.search = SearchService(
            self.store, self.embedder, self.collections, settings, self.limits
        )
        self.answers = AnswerService(self.search, self.generator)
        self.chat = ChatService(self.store, self.collections, self.answers, self.limits)
        self.keys = KeyService(self.store, self.collections, cache_ttl_s=settings.auth_cache_ttl_s)
        self.completions = CompletionService(self.collections, self.answers, self.generator)
        self.database = DatabaseService(self.store)
        self.audit = AuditService(self.store, settings, self.limits)
        self.ingestion = IngestionService(
            self.store, self.new_worker, settings.worker_poll_interval_s
        )
        self.jobs = JobService(self.store, self.collections, settings, self.limits)
        self.reindex = ReindexService(
            self.store, self.collections, self.jobs, self.embedder, settings
        )
        self.sources = SourceService(
            self.store,
            self.collections,
            SourceSyncer(self.store, self.embedder, settings),
            self.jobs,
            settings,
            self.limits,
        )
        self.transfer = TransferService(
            self.store, self.collections, cache(self.signer), settings.data_dir / "tmp"
        )
        self.transfer_jobs = TransferJobs(
            self.transfer, self.jobs, settings.data_dir, retention_h=settings.export_retention_h
        )
        self._worker_stop = threading.Event()
        self._worker_thread: threading.Thread | None = None
        self._worker: IngestWorker | None = None
        self._jobs_stop = threading.Event()
        self._jobs_thread: threading.Thread | None = None
        self._scheduler_thread: threading.Thread | None = None

    def signer(self) -> Signer:
        """The deployment's signing key (created in the data directory on first use)."""
        return load_or_create_signer(self.settings.audit_signing_key_file, self.settings.data_dir)

    def new_worker(self) -> IngestWorker:
        return IngestWorker(self.store, self.embedder, self.settings)

    def start_job_runner(self, stop: threading.Event | None = None) -> None:
        """Run background jobs (exports, reindexes...) in a thread of their own, so a
        long job never holds up document ingestion or a search. ``stop``: an event of the
        caller's that also stops it (``ragd worker`` shares its signal's), so both kinds
        of work wind down together."""
        self._jobs_stop = stop or threading.Event()
        self._jobs_thread = threading.Thread(
            target=self.jobs.run, args=(self._jobs_stop,), name="ragd-jobs", daemon=True
        )
        self._jobs_thread.start()
        # Synced sources' schedule: queue the due syncs for whichever runner claims them.
        self._scheduler_thread = threading.Thread(
            target=self.sources.run_scheduler,
            args=(self._jobs_stop,),
            name="ragd-sources",
            daemon=True,
        )
        self._scheduler_thread.start()

    def stop_job_runner(self, timeout_s: float | None = None) -> None:
        """Stop the job runner within ``timeout_s`` (``RAGD_SHUTDOWN_GRACE_S`` by
        default): its handler stops at its next progress report and the job is handed
        back for another worker to resume."""
        if self._jobs_thread is None:
            return
        self._jobs_stop.set()
        if self._scheduler_thread is not None:
            self._scheduler_thread.join(5.0)
            self._scheduler_thread = None
        grace = self.settings.shutdown_grace_s if timeout_s is None else timeout_s
        self._jobs_thread.join(max(grace, 1.0))
        if self._jobs_thread.is_alive():
            log.warning("job runner did not stop in time; its lease will expire")
        self._jobs_thread = None

    def start_background_worker(self) -> None:
        """The server's in-process worker: document ingestion and background jobs, in
        two threads."""
        self.start_job_runner()
        worker = self._worker = self.new_worker()
        self._worker_stop.clear()
        self._worker_thread = threading.Thread(
            target=worker.run, args=(self._worker_stop,), name="ragd-worker", daemon=True
        )
        self._worker_thread.start()

    def stop_background_worker(self, timeout_s: float | None = None) -> None:
        """Stop the worker within ``timeout_s`` (``RAGD_SHUTDOWN_GRACE_S`` by default).

        The worker stops between embedding slices and hands its documents back itself;
        if it is still busy when time is up (a long parse), its documents are handed back
        from here, so none waits for its lease to expire, and the late result is
        discarded because the lease is gone."""
        grace = self.settings.shutdown_grace_s if timeout_s is None else timeout_s
        started = time.monotonic()
        self._jobs_stop.set()  # both wind down at once, within one grace period
        if self._worker_thread is not None:
            self._worker_stop.set()
            self._worker_thread.join(max(grace, 1.0))
        self.stop_job_runner(max(grace - (time.monotonic() - started), 0.0))
        if self._worker_thread is None:
            return
        if self._worker_thread.is_alive() and self._worker is not None:
            released = self.store.release_jobs(owner=self._worker.owner)
            log.warning("ingestion worker did not stop in time", released=released)
        self._worker_thread = None

    def close(self) -> None:
        self.stop_background_worker()
        self.store.close()

    def close_audit(self) -> None:
        """When a server or worker stops: write pending failed-authentication counts and
        sign the audit chain's head. (One-shot CLI commands leave signing to the next
        periodic checkpoint: ``ragd audit verify`` must not sign what it just checked.)
        A database that is already gone must not turn a clean shutdown into a crash;
        the next checkpoint covers what this one would have."""
        try:
            self.audit.close()
        except Exception as exc:  # shutdown goes on whatever failed
            log.warning("could not checkpoint the audit log on shutdown", error=str(exc))
