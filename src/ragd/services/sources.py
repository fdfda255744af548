"""Synced sources: create, list, read, delete, rotate the webhook secret, verify a
webhook, and sync.

Everything about a source that can be judged when it is created is judged here (its
type, location, schedule and mapping), so the caller gets a 422 at once instead of a
failed sync later. A source's webhook secret is made here, returned once by ``create``
and ``rotate_secret``, and never shown again.

Webhook signing: ``X-Ragd-Signature: sha256=<hex>`` where the hex is
HMAC-SHA256(secret, ``f"{timestamp}.".encode() + body``) and ``X-Ragd-Timestamp`` the
Unix time of sending. A request is accepted once, within ``RAGD_WEBHOOK_TOLERANCE_S``
of now. Every refusal is :class:`~ragd.errors.Unauthorized`, an unknown source too (it
reads exactly as a bad signature, so the endpoint tells nobody which ids exist).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog

from ragd.auth import Allowed
from ragd.config import Settings
from ragd.domain import SOURCE_TYPES, JobInfo, NewSource, Source, SourceType
from ragd.errors import FetchError, InvalidInput, NotFound, Unauthorized
from ragd.ingest.fetch import check_url
from ragd.ingest.sources.folder import check_patterns, resolve_folder
from ragd.ingest.sources.spreadsheet import check_mapping
from ragd.limits import Limits
from ragd.services.collections import CollectionService
from ragd.services.jobs import JobContext, JobService
from ragd.services.source_sync import SourceSyncer, SyncProgress
from ragd.store.base import Store
from ragd.store.tables import utcnow

log = structlog.get_logger(__name__)

SYNC_JOB = "source_sync"
SIGNATURE_HEADER = "X-Ragd-Signature"
TIMESTAMP_HEADER = "X-Ragd-Timestamp"
_SIGNATURE = re.compile(r"^sha256=([0-9a-f]{64})$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_BAD_SIGNATURE = "the webhook signature does not match"
_MAX_INTERVAL_S = 30 * 86_400


@dataclass(frozen=True)
class SourceWithSecret:
    """A source just created or rotated, with the secret shown this one time."""

    source: Source
    secret: str


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (senders do the
    same; see the README's recipe)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class SourceService:
    """Sources of collections. ``allowed`` is the caller's collection limit (None: all):
    a source of any other collection is reported missing, as if it did not exist."""

    def __init__(
        self,
        store: Store,
        collections: CollectionService,
        syncer: SourceSyncer,
        jobs: JobService,
        settings: Settings,
        limits: Limits,
    ) -> None:
        self.store = store
        self.collections = collections
        self.syncer = syncer
        self.jobs = jobs
        self.settings = settings
        self.limits = limits
        jobs.register(SYNC_JOB, self._run_job)

    def create(
        self,
        collection_ref: str,
        *,
        type: str,
        location: Any,
        schedule: Any = None,
        mapping: Any = None,
        allowed: Allowed = None,
    ) -> SourceWithSecret:
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        kind = self._type(type)
        checked_schedule = self._schedule(schedule)
        secret = new_secret()
        source = self.store.add_source(
            NewSource(
                collection_id=collection.id,
                type=kind,
                location=self._location(kind, location),
                mapping=self._mapping(kind, mapping),
                schedule=checked_schedule,
                secret=secret,
                # A scheduled source syncs first at once; the others when triggered.
                next_sync_at=utcnow() if checked_schedule else None,
            )
        )
        return SourceWithSecret(source, secret)

    def list_all(self, collection_ref: str, *, allowed: Allowed = None) -> list[Source]:
        collection = self.collections.get(collection_ref, allowed=allowed, counts=False)
        return self.store.list_sources(collection.id)

    def get(self, source_id: str, *, allowed: Allowed = None) -> Source:
        source = self.store.get_source(source_id)
        if allowed is not None and source.collection_id not in allowed:
            raise NotFound(f"source {source_id!r} not found")
        return source

    def delete(self, source_id: str, *, allowed: Allowed = None) -> int:
        """Delete the source and the documents it synced; returns how many went."""
        self.get(source_id, allowed=allowed)
        return self.store.delete_source(source_id)

    def rotate_secret(self, source_id: str, *, allowed: Allowed = None) -> SourceWithSecret:
        """A new webhook secret; the old one stops working at once."""
        self.get(source_id, allowed=allowed)
        secret = new_secret()
        return SourceWithSecret(self.store.set_source_secret(source_id, secret), secret)

    def sync_now(
        self, source_id: str, *, progress: SyncProgress | None = None, allowed: Allowed = None
    ) -> dict[str, Any]:
        """Sync in this process, now (the CLI; jobs call :class:`SourceSyncer` too)."""
        self.get(source_id, allowed=allowed)
        return self.syncer.sync(source_id, progress)

    # -- sync jobs: triggered by hand, by webhook, by the schedule ------------------------

    def trigger(self, source_id: str, *, actor: str, allowed: Allowed = None) -> JobInfo:
        """Queue a sync of the source; while one is queued and not started, every
        trigger returns that job (``dedup_key``), so a burst of them is one sync."""
        source = self.get(source_id, allowed=allowed)
        return self._submit(source, actor)

    def _submit(self, source: Source, actor: str) -> JobInfo:
        return self.jobs.submit(
            kind=SYNC_JOB,
            collection_id=source.collection_id,
            params={"source_id": source.id},
            actor=actor,
            dedup_key=f"source:{source.id}",
        )

    def _run_job(self, job: JobInfo, ctx: JobContext) -> dict[str, Any]:
        """The ``source_sync`` handler: a sync whose listing failed fails the job with
        the sync's error (the source records it too; its schedule tries again)."""
        result = self.syncer.sync(str(job.params.get("source_id", "")), ctx)
        if result["status"] == "failed":
            raise FetchError(result.get("error") or "the sync failed")
        return result

    def schedule_due(self, *, limit: int = 100) -> int:
        """Queue a sync for every source whose scheduled time has come; each due run is
        claimed by exactly one scheduler, whichever process runs it. Returns how many."""
        due = self.store.claim_due_sources(limit=limit)
        for source in due:
            try:
                self._submit(source, "scheduler")
            except NotFound:
                continue  # deleted meanwhile (with its collection)
        return len(due)

    def run_scheduler(self, stop: threading.Event) -> None:
        """Poll for due sources every ``RAGD_SOURCES_POLL_S`` until ``stop`` is set (the
        worker processes run this beside their job runner)."""
        while not stop.is_set():
            try:
                self.schedule_due()
            except Exception as exc:  # keep polling through database hiccups
                log.error("source scheduler cycle failed", error_type=type(exc).__name__)
            stop.wait(self.settings.sources_poll_s)

    # -- webhooks ------------------------------------------------------------------------

    def webhook(
        self, source_id: str, *, timestamp: str | None, signature: str | None, body: bytes
    ) -> JobInfo:
        """Verify a webhook request (:meth:`verify_webhook`) and queue its sync."""
        source = self.verify_webhook(source_id, timestamp=timestamp, signature=signature, body=body)
        return self._submit(source, "webhook")

    def verify_webhook(
        self,
        source_id: str,
        *,
        timestamp: str | None,
        signature: str | None,
        body: bytes,
        now: float | None = None,
    ) -> Source:
        """The source whose webhook this request validly is, once; ``Unauthorized``
        for a missing header, a timestamp outside the window, a bad signature, an
        unknown source or a request seen before."""
        if not timestamp or not signature:
            raise Unauthorized(
                f"a webhook needs the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers"
            )
        if not _TIMESTAMP.match(timestamp):
            raise Unauthorized(f"{TIMESTAMP_HEADER} must be a Unix time in seconds")
        match = _SIGNATURE.match(signature.strip().lower())
        if match is None:
            raise Unauthorized(f"{SIGNATURE_HEADER} must read sha256=<64 hex digits>")
        tolerance = self.settings.webhook_tolerance_s
        sent = int(timestamp)
        if abs((time.time() if now is None else now) - sent) > tolerance:
            raise Unauthorized(
                f"the webhook timestamp is more than {tolerance} s from the server's clock"
            )
        try:
            source = self.store.get_source(source_id)
        except NotFound:
            raise Unauthorized(_BAD_SIGNATURE) from None
        expected = sign(source.secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), f"sha256={match.group(1)}".encode()):
            raise Unauthorized(_BAD_SIGNATURE)
        until = dt.datetime.fromtimestamp(sent + tolerance + 1, dt.UTC)
        if not self.store.remember_webhook(source.id, match.group(1), until):
            raise Unauthorized("this webhook request was already received (a replay)")
        return source

    # -- validation ----------------------------------------------------------------------

    def _type(self, value: str) -> SourceType:
        for kind in SOURCE_TYPES:
            if value == kind:
                return kind
        raise InvalidInput(f"type must be one of {', '.join(SOURCE_TYPES)}")

    def _url(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise InvalidInput(f"{where} must be a URL")
        return check_url(
            value,
            allow_private=self.settings.allow_private_urls,
            max_length=self.limits.url_chars,
        )

    def _location(self, kind: SourceType, value: Any) -> str | list[str]:
        if kind == "urls":
            if isinstance(value, str):
                value = [value]
            most = self.limits.source_urls
            if not isinstance(value, list) or not 1 <= len(value) <= most:
                raise InvalidInput(f"location of a urls source must list 1 to {most} URLs")
            urls = [self._url(url, "each URL of location") for url in value]
            return list(dict.fromkeys(urls))
        if kind == "folder":
            if not isinstance(value, str):
                raise InvalidInput("location of a folder source must be a path on the server")
            return str(resolve_folder(value, self.settings.sources_folder_roots))
        return self._url(value, f"location of a {kind} source")

    def _mapping(self, kind: SourceType, value: Any) -> dict[str, Any]:
        if kind == "spreadsheet":
            return check_mapping(value).as_dict()
        if value is None or value == {}:
            return {"patterns": list(check_patterns(None))} if kind == "folder" else {}
        if kind == "folder" and isinstance(value, dict) and set(value) <= {"patterns"}:
            return {"patterns": list(check_patterns(value.get("patterns")))}
        if kind == "folder":
            raise InvalidInput("the mapping of a folder source takes only patterns")
        raise InvalidInput(f"a {kind} source takes no mapping")

    def _schedule(self, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        least = self.settings.sources_min_interval_s
        interval = value.get("interval_s") if isinstance(value, dict) else None
        if (
            not isinstance(value, dict)
            or set(value) != {"interval_s"}
            or not isinstance(interval, int)
            or isinstance(interval, bool)
            or not least <= interval <= _MAX_INTERVAL_S
        ):
            raise InvalidInput(
                f'schedule must be null or {{"interval_s": N}} with N from {least} '
                f"(RAGD_SOURCES_MIN_INTERVAL_S) to {_MAX_INTERVAL_S} seconds"
            )
        return {"interval_s": interval}
