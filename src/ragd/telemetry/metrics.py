"""Every Prometheus metric ragd exports, and how ``/metrics`` renders them.

The metric objects live here, at import time, in prometheus-client's default registry, so
any module can record into them without plumbing. Under several worker processes
(``ragd serve --workers N``) prometheus-client's multiprocess mode is used: the CLI points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, each process
writes its samples there, and a scrape served by any worker sums all of them.

Gauges about stored data (documents by status, chunks) are not kept in the process at
all: :class:`InventoryCollector` asks for an :class:`Inventory` at scrape time (the
caller passes how to read one, so this module knows no database), and every worker and
replica reports the same truth.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DOCUMENT_STATUSES = ("queued", "processing", "ready", "failed")

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

HTTP_REQUESTS = Counter(
    "ragd_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "ragd_http_request_duration_seconds",
    "HTTP request duration (to the last body byte) by method, route template and status.",
    ["method", "route", "status"],
    buckets=_FAST,
)
# Backpressure (api/middleware/admission.py), summed over the live worker processes.
HTTP_IN_FLIGHT = Gauge(
    "ragd_http_requests_in_flight",
    "HTTP requests holding an admission slot (probes and /metrics are not counted).",
    multiprocess_mode="livesum",
)
HTTP_QUEUED = Gauge(
    "ragd_http_requests_queued",
    "HTTP requests waiting for an admission slot (at most RAGD_QUEUE_TIMEOUT_MS).",
    multiprocess_mode="livesum",
)
HTTP_SHED = Counter(
    "ragd_http_requests_shed_total",
    "HTTP requests answered 503 because no admission slot freed up in time.",
)
INGEST_STAGE_DURATION = Histogram(
    "ragd_ingest_stage_duration_seconds",
    "Ingestion stage duration: parse, chunk and store per document; embed per batch.",
    ["stage"],
    buckets=_SLOW,
)
INGEST_DOCUMENTS = Counter(
    "ragd_ingest_documents_total",
    "Documents a worker finished, by outcome (ready, failed, retry).",
    ["outcome"],
)
EMBEDDING_BATCH_SIZE = Histogram(
    "ragd_embedding_batch_size",
    "Texts per embedding call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
EMBEDDING_DURATION = Histogram(
    "ragd_embedding_duration_seconds",
    "Duration of one embedding call.",
    buckets=_SLOW,
)
QUERY_EMBEDDING_CACHE = Counter(
    "ragd_query_embedding_cache_total",
    "Query embeddings looked up in the per-process cache, by result (hit, miss).",
    ["result"],
)
SEARCH_DURATION = Histogram(
    "ragd_search_duration_seconds",
    "Search duration by mode (hybrid, keyword, vector).",
    ["mode"],
    buckets=_FAST,
)
LLM_DURATION = Histogram(
    "ragd_llm_request_duration_seconds",
    "LLM request duration by operation (generate, stream, rewrite) and outcome.",
    ["operation", "outcome"],
    buckets=_SLOW,
)
LLM_TOKENS = Counter(
    "ragd_llm_tokens_total",
    "Tokens the LLM server reported using, by model and type (prompt, completion).",
    ["model", "type"],
)
RATE_LIMIT_REJECTIONS = Counter(
    "ragd_rate_limit_rejections_total",
    "Requests refused with 429, by budget (default, ingest, documents).",
    ["budget"],
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "ragd_rate_limit_storage_errors_total",
    "Requests whose rate-limit check could not reach the storage (served or refused "
    "by RAGD_RATE_LIMIT_FAIL_OPEN).",
)
AUTH_FAILURES = Counter(
    "ragd_auth_failures_total",
    "Refused credentials, by reason (missing, invalid, revoked, scope).",
    ["reason"],
)


JOBS_FINISHED = Counter(
    "ragd_jobs_finished_total",
    "Background job runs by kind and outcome (succeeded, failed, cancelled, retry, "
    "released on shutdown, lost to another worker).",
    ["kind", "outcome"],
)
JOB_DURATION = Histogram(
    "ragd_job_duration_seconds",
    "Duration of one background job run (one attempt) by kind and outcome.",
    ["kind", "outcome"],
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200),
)
DATABASE_RETRIES = Counter(
    "ragd_database_retries_total",
    "Database calls tried again after a transient failure (connection lost, failover, "
    "serialization failure, deadlock); PostgreSQL only.",
)
DATABASE_UNAVAILABLE = Counter(
    "ragd_database_unavailable_total",
    "Database calls that gave up at the retry deadline (answered 503).",
)
# Timestamps and readiness from several processes: the newest heartbeat and the worst
# readiness of the live processes are what an alert wants. Labelled, so that a process
# exports nothing until the event happened: an unlabelled gauge would show 0 ("never
# beat", "not ready") from every process that runs no worker or gets no probe.
WORKER_HEARTBEAT = Gauge(
    "ragd_worker_heartbeat_timestamp_seconds",
    "Unix time an ingestion worker last polled the queue or embedded a batch, by thread.",
    ["thread"],
    multiprocess_mode="livemax",
)
WORKER_LAST_CLAIM = Gauge(
    "ragd_worker_last_claim_timestamp_seconds",
    "Unix time an ingestion worker last claimed a document, by thread.",
    ["thread"],
    multiprocess_mode="livemax",
)
READINESS_CHECK = Gauge(
    "ragd_readiness_check_success",
    "1 if the check passed at the last /readyz, by check (database, embedder, redis, llm) "
    "and whether readiness requires it.",
    ["check", "required"],
    multiprocess_mode="livemin",
)


def worker_beat(gauge: Gauge) -> None:
    """Now, on ``gauge``, for the calling worker thread (names are bounded by the code:
    ``ragd-worker-N`` and the server's one in-process worker)."""
    gauge.labels(thread=threading.current_thread().name).set_to_current_time()


@dataclass(frozen=True)
class Inventory:
    """What is stored, as the scrape reports it."""

    documents_by_status: Mapping[str, int]
    chunks: int
    collections: int
    oldest_queued_at: dt.datetime | None = None
    """When the longest-waiting due document was queued (None: nothing waits)."""
    active_jobs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Queued and running background jobs by (kind, status)."""


InventoryReader = Callable[[], Inventory]


class InventoryCollector(Collector):
    """Document and chunk totals, read at scrape time."""

    def __init__(self, read: InventoryReader) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ragd_store_scrape_success", "1 if the database answered the metrics scrape."
        )
        try:
            inventory = self.read()
        except Exception as exc:
            log.warning("metrics: database did not answer", error_type=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        documents = GaugeMetricFamily(
            "ragd_documents",
            "Documents by status (the ingestion queue is queued + processing).",
            labels=["status"],
        )
        queue = GaugeMetricFamily(
            "ragd_ingest_queue_depth", "Documents waiting for or in ingestion.", labels=["status"]
        )
        counts = inventory.documents_by_status
        for status in DOCUMENT_STATUSES:
            documents.add_metric([status], counts.get(status, 0))
            if status in ("queued", "processing"):
                queue.add_metric([status], counts.get(status, 0))
        yield documents
        yield queue
        oldest = inventory.oldest_queued_at
        age = 0.0 if oldest is None else max(time.time() - oldest.timestamp(), 0.0)
        yield GaugeMetricFamily(
            "ragd_ingest_oldest_queued_age_seconds",
            "Seconds the longest-waiting due document has waited for a worker (0 if none).",
            value=age,
        )
        jobs = GaugeMetricFamily(
            "ragd_jobs", "Background jobs queued or running, by kind.", labels=["kind", "status"]
        )
        for (kind, status), count in sorted(inventory.active_jobs.items()):
            jobs.add_metric([kind, status], count)
        yield jobs
        yield GaugeMetricFamily("ragd_chunks", "Chunks stored.", value=inventory.chunks)
        yield GaugeMetricFamily("ragd_collections", "Collections.", value=inventory.collections)


def render(read_inventory: InventoryReader) -> tuple[bytes, str]:
    """The text exposition of every metric: this process's (or all workers' in
    multiprocess mode) plus the stored totals ``read_inventory`` returns."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(InventoryCollector(read_inventory))
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(scraped)  # type: ignore[no-untyped-call]
        return generate_latest(scraped), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + generate_latest(scraped), CONTENT_TYPE_LATEST


def serve_process_metrics(host: str, port: int) -> Callable[[], None]:
    """``/metrics`` of this process on ``host:port`` in a background thread, for ``ragd
    worker``, which has no HTTP API: without it Prometheus could not see the workers'
    heartbeat or ingestion metrics. Returns the function that stops it."""
    server, thread = start_http_server(port, addr=host)
    log.info("worker metrics served", host=host, port=port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


@contextmanager
def multiprocess_dir() -> Iterator[Path]:
    """A clean ``PROMETHEUS_MULTIPROC_DIR`` for worker processes started inside the block.

    An operator's directory is emptied first (samples of a previous run would be summed
    in); otherwise a temporary one is made and removed afterwards. The variable must be
    set before a worker imports prometheus-client, which is why the CLI does this before
    starting uvicorn's workers.
    """
    given = os.environ.get(MULTIPROC_ENV)
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="ragd-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    _remove_files(path.glob("*.db"))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        if given:
            _remove_files(path.glob("*.db"))
        else:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def _remove_files(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
