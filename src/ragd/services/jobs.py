"""Background jobs: submit, watch and cancel them, and run them in any worker.

One framework for every long operation that is not a document's ingestion (documents
keep their own queue): exports, imports, reindexes, source syncs. A feature registers a
handler for its *kind* (``register``); callers ``submit`` a job and get its id at once;
every worker process (the server's in-process worker, ``ragd worker``) runs a runner
thread (:meth:`JobService.run`) that claims one job at a time of the kinds it knows,
beside document ingestion, never in its way.

A handler is ``(job, ctx) -> result``. It reports progress with ``ctx.progress(done,
total)``, which also keeps its lease and is where it learns that the job was cancelled
(``JobCancelled``) or the worker is stopping: it must then leave nothing half-done.
What it raises decides the outcome: ``TransientError`` or ``Unavailable`` are retried
with backoff until the job's attempts are spent, any other error fails the job with a
readable message (never a traceback), and a worker that dies mid-job leaves a lease
that expires, so another worker resumes the job.

Every change of a job's state is an audit event, ``f"{kind}.{step}"`` (``submit``,
``start``, ``requeue``, ``cancel_request``, ``cancel``, ``finish``, ``fail``), written by
the store in the transaction of the change: a kind added later is audited without a
line of its own. So a kind may not start with one of ragd's own action prefixes.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from ragd.audit import RESERVED_ACTION_PREFIXES
from ragd.auth import ANONYMOUS, Principal
from ragd.config import Settings
from ragd.domain import JobInfo, JobStatus, NewJob, Page
from ragd.errors import Forbidden, InvalidInput, NotFound, RagdError, TransientError, Unavailable
from ragd.ingest.worker import new_owner, pid_alive
from ragd.limits import Limits
from ragd.services.collections import CollectionService
from ragd.store.base import LeaseLost, Store
from ragd.store.tables import utcnow
from ragd.telemetry.metrics import JOB_DURATION, JOBS_FINISHED

log = structlog.get_logger(__name__)

KIND_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
_KIND = re.compile(KIND_PATTERN)
_DEDUP_KEY_CHARS = 200
_PARAMS_BYTES = 64 * 1024
# How often progress is written at most (a handler may report every item).
_PROGRESS_INTERVAL_S = 1.0


class JobCancelled(Exception):
    """Raised by :meth:`JobContext.progress` once a cancel was asked: the handler lets
    it through after undoing what it started, and the job ends ``cancelled``.

    Not a :class:`~ragd.errors.RagdError`, so a handler that catches those does not
    swallow it."""


class _Stopping(Exception):
    """The worker is shutting down: the job is handed back, to be resumed elsewhere."""


class JobContext:
    """What a running handler may do: report progress, learn of a cancel."""

    def __init__(
        self,
        store: Store,
        job: JobInfo,
        *,
        owner: str,
        lease_s: float,
        stop: threading.Event,
        interval_s: float = _PROGRESS_INTERVAL_S,
    ) -> None:
        self.job = job
        self.owner = owner
        self._store = store
        self._lease_s = lease_s
        self._stop = stop
        self._interval_s = min(interval_s, lease_s / 3)
        self._done = job.progress_done
        self._total = job.progress_total
        self._cancel = job.cancel_requested
        self._written = time.monotonic()

    def progress(self, done: int, total: int | None = None) -> None:
        """Record ``done`` (of ``total``, when known) and keep the lease; raises
        :class:`JobCancelled` when the job was cancelled and ``LeaseLost`` when another
        worker took it over (its lease expired). Writes at most once a second, except
        when the total changes or the work is complete."""
        changed = total is not None and total != self._total
        self._done = done
        if total is not None:
            self._total = total
        if self._stop.is_set():
            raise _Stopping
        finished = self._total is not None and done >= self._total
        if changed or finished or time.monotonic() - self._written >= self._interval_s:
            self._write()
        if self._cancel:
            raise JobCancelled

    def cancelled(self) -> bool:
        """Whether a cancel was asked (read again at most once a second); for a handler
        that wants to stop at a point of its own choosing."""
        if not self._cancel and time.monotonic() - self._written >= self._interval_s:
            self._write()
        return self._cancel

    def _write(self) -> None:
        self._cancel = self._store.update_job_progress(
            self.job.id, owner=self.owner, done=self._done, total=self._total, lease_s=self._lease_s
        )
        self._written = time.monotonic()


JobHandler = Callable[[JobInfo, JobContext], dict[str, Any]]
"""Runs one job and returns its result (a JSON object)."""


def visible(job: JobInfo, caller: Principal) -> bool:
    """Whether ``caller`` may see ``job``: a job of a collection as the collection
    itself; a job of none (an import) only by an admin key not limited to collections."""
    if job.collection_id is None:
        return visible_unscoped(caller)
    return caller.collection_ids is None or job.collection_id in caller.collection_ids


class JobService:
    """Submits, lists, cancels and runs background jobs (see the module doc)."""

    def __init__(
        self,
        store: Store,
        collections: CollectionService,
        settings: Settings,
        limits: Limits,
        *,
        progress_interval_s: float = _PROGRESS_INTERVAL_S,
    ) -> None:
        self.store = store
        self.collections = collections
        self.limits = limits
        self.lease_s = settings.worker_lease_s
        self.max_attempts = settings.worker_max_attempts
        self.retry_base_s = settings.worker_retry_base_s
        self.poll_interval_s = settings.worker_poll_interval_s
        self.progress_interval_s = progress_interval_s
        self._handlers: dict[str, JobHandler] = {}

    # -- what features and callers use ----------------------------------------------------

    def register(self, kind: str, handler: JobHandler) -> None:
        """Make ``kind`` submittable and runnable here; every process that builds the
        container registers the same kinds, so any worker can run any job."""
        if not _KIND.match(kind):
            raise ValueError(f"job kind {kind!r} must match {KIND_PATTERN}")
        if kind.split(".", 1)[0] in RESERVED_ACTION_PREFIXES:
            raise ValueError(f"job kind {kind!r} would name its audit events like ragd's own")
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is registered already")
        self._handlers[kind] = handler

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def submit(
        self,
        *,
        kind: str,
        collection_id: str | None,
        params: dict[str, Any],
        actor: str,
        dedup_key: str | None = None,
        run_at: dt.datetime | None = None,
        max_attempts: int | None = None,
    ) -> JobInfo:
        """Queue a job of ``kind`` (its handler must be registered) on ``collection_id``
        (an id or name; ``NotFound`` when it does not exist) or on none. With
        ``dedup_key``, a still-queued job of that key is returned instead of a new one.
        The caller has authorized ``actor`` for the collection already."""
        if kind not in self._handlers:
            raise InvalidInput(f"unknown job kind {kind!r}")
        if dedup_key is not None and not 1 <= len(dedup_key) <= _DEDUP_KEY_CHARS:
            raise InvalidInput(f"dedup_key must be 1-{_DEDUP_KEY_CHARS} characters")
        if run_at is not None and run_at.tzinfo is None:
            raise InvalidInput("run_at must carry a time zone")
        try:
            encoded = json.dumps(params)
        except (TypeError, ValueError):
            raise InvalidInput("job parameters must be JSON") from None
        if len(encoded.encode()) > _PARAMS_BYTES:
            raise InvalidInput(f"job parameters must be at most {_PARAMS_BYTES} bytes as JSON")
        if collection_id is not None:
            collection_id = self.collections.get(collection_id, counts=False).id
        job = self.store.submit_job(
            NewJob(
                kind=kind,
                collection_id=collection_id,
                params=params,
                created_by=actor[:80],
                max_attempts=max_attempts or self.max_attempts,
                dedup_key=dedup_key,
                run_at=run_at,
            )
        )
        log.info("job queued", job_id=job.id, kind=kind, collection_id=collection_id)
        return job

    def get(self, job_id: str, *, caller: Principal = ANONYMOUS) -> JobInfo:
        """One job, if ``caller`` may see it (``NotFound`` otherwise, as for a missing
        one, so ids of other tenants do not leak)."""
        job = self.store.get_job(job_id)
        if not visible(job, caller):
            raise NotFound(f"job {job_id!r} not found")
        return job

    def list(
        self,
        *,
        caller: Principal = ANONYMOUS,
        kind: str | None = None,
        status: JobStatus | None = None,
        collection_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[JobInfo]:
        """A page of the jobs ``caller`` may see, newest first, optionally of one kind,
        status or collection."""
        if limit is None:
            limit = min(self.limits.default_page_size, self.limits.page_size)
        if not 1 <= limit <= self.limits.page_size:
            raise InvalidInput(f"limit must be between 1 and {self.limits.page_size}")
        scope = caller.collection_ids
        if collection_id is not None:
            if scope is not None and collection_id not in scope:
                raise NotFound(f"collection {collection_id!r} not found")
            scope = frozenset({collection_id})
        return self.store.list_jobs(
            kind=kind,
            status=status,
            collection_ids=None if scope is None else sorted(scope),
            include_unscoped=collection_id is None and visible_unscoped(caller),
            limit=limit,
            cursor=cursor,
        )

    def cancel(self, job_id: str, *, caller: Principal = ANONYMOUS) -> JobInfo:
        """Cancel a job ``caller`` may see and write: a queued one ends at once, a
        running one stops at its handler's next progress report; a finished one is
        returned as it is."""
        self.get(job_id, caller=caller)
        if not caller.allows("write"):
            raise Forbidden(
                f"cancelling a job needs a key with write scope; this key has {caller.scope}"
            )
        job = self.store.cancel_job(job_id)
        log.info("job cancel asked", job_id=job_id, status=job.status)
        return job

    # -- what workers use -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Claim and run jobs one at a time until ``stop`` is set, then hand back the
        job in hand (its handler stops at its next progress report)."""
        host, owner = new_owner()
        if self._handlers:
            recovered = self.store.release_orphaned_background_jobs(host=host, is_alive=pid_alive)
            if recovered:
                log.info("requeued jobs of a stopped worker", jobs=recovered)
        log.info("job runner started", owner=owner, kinds=self.kinds)
        try:
            while not stop.is_set():
                try:
                    ran = self.run_once(owner, stop=stop)
                except Exception as exc:  # keep the loop alive through database hiccups
                    log.error("job runner cycle failed", error_type=type(exc).__name__)
                    ran = False
                if not ran:
                    stop.wait(self.poll_interval_s)
        finally:
            released = self.store.release_background_jobs(owner=owner)
            log.info("job runner stopped", owner=owner, released=released)

    def run_once(self, owner: str, *, stop: threading.Event | None = None) -> bool:
        """Claim one due job of a registered kind and run it to an outcome; whether
        there was one."""
        if not self._handlers:
            return False
        job = self.store.claim_background_job(owner=owner, kinds=self.kinds, lease_s=self.lease_s)
        if job is None:
            return False
        ctx = JobContext(
            self.store,
            job,
            owner=owner,
            lease_s=self.lease_s,
            stop=stop or threading.Event(),
            interval_s=self.progress_interval_s,
        )
        started = time.monotonic()
        log.info("job started", job_id=job.id, kind=job.kind, attempt=job.attempts)
        outcome = self._execute(self._handlers[job.kind], job, ctx)
        JOBS_FINISHED.labels(kind=job.kind, outcome=outcome).inc()
        JOB_DURATION.labels(kind=job.kind, outcome=outcome).observe(time.monotonic() - started)
        return True

    def _execute(self, handler: JobHandler, job: JobInfo, ctx: JobContext) -> str:
        """Run ``handler`` and record its outcome; returns the outcome's name."""
        try:
            result = handler(job, ctx)
            json.dumps(result)
        except JobCancelled:
            return self._ended(
                job, lambda: self.store.finish_cancelled_job(job.id, owner=ctx.owner), "cancelled"
            )
        except _Stopping:
            self.store.release_background_jobs(owner=ctx.owner)
            log.info("job handed back: the worker is stopping", job_id=job.id)
            return "released"
        except LeaseLost:
            log.warning("job lease lost; its result is discarded", job_id=job.id)
            return "lost"
        except (TransientError, Unavailable) as exc:
            return self._fail(job, ctx.owner, exc, exc.detail, retry=True)
        except RagdError as exc:
            return self._fail(job, ctx.owner, exc, exc.detail, retry=False)
        except Exception as exc:
            log.exception("unexpected job error", job_id=job.id, kind=job.kind)
            error = f"internal error while running the job ({type(exc).__name__})"
            return self._fail(job, ctx.owner, exc, error, retry=False)
        return self._ended(
            job, lambda: self.store.finish_job(job.id, owner=ctx.owner, result=result), "succeeded"
        )

    def _ended(self, job: JobInfo, record: Callable[[], JobInfo], outcome: str) -> str:
        try:
            record()
        except LeaseLost:
            log.warning("job lease lost; its outcome is discarded", job_id=job.id)
            return "lost"
        log.info(f"job {outcome}", job_id=job.id, kind=job.kind)
        return outcome

    def _fail(self, job: JobInfo, owner: str, exc: Exception, error: str, *, retry: bool) -> str:
        retry_at = None
        if retry and job.attempts < job.max_attempts:
            retry_at = utcnow() + dt.timedelta(seconds=self._backoff(job.attempts))
        self.store.fail_background_job(
            job.id, owner=owner, error=error, retry_at=retry_at, error_type=type(exc).__name__
        )
        log.warning(
            "job failed" if retry_at is None else "job will be retried",
            job_id=job.id,
            kind=job.kind,
            attempt=job.attempts,
            error=error,
        )
        return "failed" if retry_at is None else "retry"

    def _backoff(self, attempts: int) -> float:
        base = self.retry_base_s * (2 ** max(attempts - 1, 0))
        return float(base * (0.5 + random.random()))  # jitter spreads the retries of a burst


def visible_unscoped(caller: Principal) -> bool:
    """Whether ``caller`` sees the jobs that belong to no collection."""
    return caller.scope == "admin" and not caller.limited


__all__ = [
    "JobCancelled",
    "JobContext",
    "JobHandler",
    "JobService",
    "visible",
]
