"""One sync of a source: list its items, ingest the new, replace the changed, delete the
removed, and record how it went.

The sync holds the source's lease (``begin_source_sync``) from start to end, so two
syncs of one source never interleave; a trigger that finds it held is remembered and
runs after. Items are compared by key: an unchanged one costs a conditional request
(304) or a stat, a changed one is parsed in the parse child, embedded in batches with
the others, and swapped into its document in one transaction (the old version stays
searchable until then). Removed items are deleted only when the listing was complete:
a sitemap that failed to load never empties a collection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from ragd.config import Settings
from ragd.domain import Collection, Source, SourceItem, SyncCounts, SyncOutcome, SyncStatus
from ragd.embedding.base import Embedder
from ragd.errors import FetchError, NotFound, RagdError
from ragd.ingest.fetch import FetchedResource, Validators, fetch_url
from ragd.ingest.isolation import run_isolated
from ragd.ingest.pipeline import PreparedDocument
from ragd.ingest.sources.folder import check_patterns, list_folder, read_file, resolve_folder
from ragd.ingest.sources.items import RawItem, embed_items, item_writes, prepare_item
from ragd.ingest.sources.sitemap import parse_sitemap
from ragd.ingest.sources.spreadsheet import (
    TableTask,
    check_mapping,
    read_table,
    rows_to_items,
    table_kind,
)
from ragd.store.base import LeaseLost, Store
from ragd.store.tables import utcnow

log = structlog.get_logger(__name__)

# Child sitemaps one index may name; each is fetched, so this bounds the requests too.
_MAX_CHILD_SITEMAPS = 50
# Errors named in a source's last_error; the counts say how many there were.
_ERRORS_SHOWN = 5
# Items prepared before their chunks are embedded together and stored.
_ITEMS_PER_BATCH = 16


class SyncProgress(Protocol):
    """Where a sync reports how far it is (a job's context; the CLI's printer). It may
    raise to stop the sync (a cancelled job): the sync then records what it did."""

    def progress(self, done: int, total: int) -> None: ...


class _Silent:
    def progress(self, done: int, total: int) -> None:
        return None


@dataclass
class _Candidate:
    """An item the listing found: its key and how to load it given what we hold."""

    key: str
    load: Callable[[SourceItem | None], RawItem | _Unchanged]


@dataclass(frozen=True)
class _Unchanged:
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class _Listing:
    candidates: list[_Candidate]
    # The listing itself was not modified (a spreadsheet's 304): every item stays.
    not_modified: bool = False
    fetch_state: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Tally:
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("added", "updated", "deleted", "failed", "unchanged"), 0
        )
    )
    errors: list[str] = field(default_factory=list)

    def fail(self, key: str | None, reason: str) -> None:
        self.counts["failed"] += 1
        self.errors.append(f"{key[:200]}: {reason}" if key else reason)

    def result(self) -> SyncCounts:
        return SyncCounts(**self.counts)


class SourceSyncer:
    """Runs syncs; one instance serves every source and thread."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        host = socket.gethostname()[:40].replace(":", "-")
        self._owner_prefix = f"{host}:{os.getpid()}"

    def sync(self, source_id: str, progress: SyncProgress | None = None) -> dict[str, Any]:
        """Sync the source now; returns the outcome as a job result. A source another
        sync holds is skipped (that sync runs once more when it ends)."""
        owner = f"{self._owner_prefix}:{uuid.uuid4().hex[:12]}"
        lease_s = self.settings.worker_lease_s
        source = self.store.begin_source_sync(source_id, owner=owner, lease_s=lease_s)
        if source is None:
            log.info("source sync already running; another run is queued", source_id=source_id)
            return {"source_id": source_id, "status": "skipped"}
        run = _Run(self, source, owner, progress or _Silent())
        try:
            outcome = run.execute()
        except BaseException as exc:
            # Cancelled, the worker stopping, or a bug: every item written so far is
            # whole, so record how far it got, release the source, and let it through.
            self._finish(
                source.id, owner, run.outcome("failed", f"sync stopped ({type(exc).__name__})")
            )
            raise
        self._finish(source.id, owner, outcome)
        log.info(
            "source synced", source_id=source_id, status=outcome.status, **outcome.counts.__dict__
        )
        return {
            "source_id": source_id,
            "status": outcome.status,
            **outcome.counts.__dict__,
            "error": outcome.error,
        }

    def _finish(self, source_id: str, owner: str, outcome: SyncOutcome) -> None:
        try:
            self.store.finish_source_sync(source_id, owner=owner, outcome=outcome)
        except NotFound:
            log.info("source deleted during its sync", source_id=source_id)


class _Run:
    """One sync's state: the source, the owner of its lease, the tally."""

    def __init__(
        self, syncer: SourceSyncer, source: Source, owner: str, progress: SyncProgress
    ) -> None:
        self.store = syncer.store
        self.embedder = syncer.embedder
        self.settings = syncer.settings
        self.source = source
        self.owner = owner
        self.progress = progress
        self.tally = _Tally()
        self.collection: Collection | None = None
        self.fetch_state = source.fetch_state
        self._lease_checked = time.monotonic()

    def execute(self) -> SyncOutcome:
        """Sync, and say how it went; a domain error ends the sync as ``failed`` (items
        written before it stay), anything else propagates."""
        try:
            self.collection = self.store.get_collection(self.source.collection_id, counts=False)
            listing = _list(self.source, self.settings)
            self.fetch_state = listing.fetch_state or self.fetch_state
            for problem in listing.problems:
                self.tally.fail(None, problem)
            self._apply(listing)
        except RagdError as exc:
            return self.outcome("failed", exc.detail)
        if self.tally.counts["failed"]:
            shown = "; ".join(self.tally.errors[:_ERRORS_SHOWN])
            return self.outcome("partial", f"{self.tally.counts['failed']} item(s) failed: {shown}")
        return self.outcome("ok", None)

    def outcome(self, status: SyncStatus, error: str | None) -> SyncOutcome:
        interval = self.source.interval_s
        finished = utcnow()
        return SyncOutcome(
            status=status,
            counts=self.tally.result(),
            error=error,
            finished_at=finished,
            next_sync_at=finished + dt.timedelta(seconds=interval) if interval else None,
            fetch_state=self.fetch_state,
        )

    def _apply(self, listing: _Listing) -> None:
        known = self.store.list_source_items(self.source.id)
        if listing.not_modified:
            self.tally.counts["unchanged"] += len(known)
            return
        batch: list[tuple[RawItem, PreparedDocument]] = []
        total = len(listing.candidates)
        for done, candidate in enumerate(listing.candidates):
            self._report(done, total)
            prepared = self._load(candidate, known.get(candidate.key))
            if prepared is not None:
                batch.append(prepared)
            if len(batch) >= _ITEMS_PER_BATCH:
                self._store(batch, known)
                batch = []
        self._store(batch, known)
        listed = {c.key for c in listing.candidates}
        removed = [key for key in known if key not in listed]
        self.tally.counts["deleted"] += self.store.delete_source_items(
            self.source.id, owner=self.owner, keys=removed
        )
        self._report(total, total)

    def _report(self, done: int, total: int) -> None:
        self.progress.progress(done, total)
        if time.monotonic() - self._lease_checked > self.settings.worker_lease_s / 3:
            self._lease_checked = time.monotonic()
            lease_s = self.settings.worker_lease_s
            if not self.store.extend_source_sync(self.source.id, owner=self.owner, lease_s=lease_s):
                raise LeaseLost(f"source {self.source.id}: another sync took over")

    def _load(
        self, candidate: _Candidate, held: SourceItem | None
    ) -> tuple[RawItem, PreparedDocument] | None:
        """The candidate parsed and chunked when it is new or changed; None when it is
        unchanged or failed (counted)."""
        try:
            loaded = candidate.load(held)
            if held is not None and (
                isinstance(loaded, _Unchanged) or loaded.item_hash == held.item_hash
            ):
                self.tally.counts["unchanged"] += 1
                if (loaded.etag, loaded.last_modified) != (held.etag, held.last_modified):
                    self.store.touch_source_item(
                        self.source.id,
                        candidate.key,
                        etag=loaded.etag,
                        last_modified=loaded.last_modified,
                    )
                return None
            if isinstance(loaded, _Unchanged):  # a 304 for an item we do not hold
                loaded = candidate.load(None)
                assert isinstance(loaded, RawItem)
            assert self.collection is not None
            model = self.collection.embedding_model
            return loaded, prepare_item(loaded, self.settings, model)
        except RagdError as exc:
            self.tally.fail(candidate.key, exc.detail)
        return None

    def _store(
        self, batch: Sequence[tuple[RawItem, PreparedDocument]], known: dict[str, SourceItem]
    ) -> None:
        if not batch:
            return
        try:
            vectors = embed_items(
                [doc for _, doc in batch],
                self.embedder,
                self.store,
                batch=self.settings.worker_embed_batch,
            )
        except RagdError as exc:
            for raw, _ in batch:
                self.tally.fail(raw.key, exc.detail)
            return
        for write in item_writes(batch, vectors):
            try:
                self.store.put_source_item(self.source.id, owner=self.owner, item=write)
            except (LeaseLost, NotFound):
                raise  # the sync, not the item, is over
            except RagdError as exc:
                self.tally.fail(write.key, exc.detail)
                continue
            self.tally.counts["updated" if write.key in known else "added"] += 1


# -- listings, one per source type ----------------------------------------------------


def _list(source: Source, settings: Settings) -> _Listing:
    if source.type == "urls":
        urls = source.location if isinstance(source.location, list) else [source.location]
        return _Listing([_page(url, settings) for url in urls])
    if source.type == "sitemap":
        return _Listing(
            [_page(url, settings) for url in _sitemap_pages(str(source.location), settings)]
        )
    if source.type == "spreadsheet":
        return _spreadsheet(source, settings)
    if source.type == "folder":
        return _folder(source, settings)
    raise FetchError(f"unknown source type {source.type!r}")


def _fetch(url: str, settings: Settings, validators: Validators | None = None) -> FetchedResource:
    return fetch_url(
        url,
        allow_private=settings.allow_private_urls,
        timeout_s=settings.url_timeout_s,
        max_bytes=settings.max_upload_bytes,
        validators=validators,
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _page(url: str, settings: Settings) -> _Candidate:
    def load(held: SourceItem | None) -> RawItem | _Unchanged:
        validators = Validators(held.etag, held.last_modified) if held is not None else None
        fetched = _fetch(url, settings, validators)
        if fetched.not_modified:
            return _Unchanged(
                fetched.etag or (held.etag if held else None),
                fetched.last_modified or (held.last_modified if held else None),
            )
        return RawItem(
            key=url,
            content=fetched.content,
            kind="file",
            document_source_type="url",
            item_hash=_sha(fetched.content),
            filename=fetched.filename,
            declared_type=fetched.content_type,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )

    return _Candidate(url, load)


def _sitemap_pages(url: str, settings: Settings) -> list[str]:
    """The page URLs of a sitemap, through one level of sitemap index."""
    limit = settings.sources_max_items
    top = parse_sitemap(_fetch(url, settings).content, max_urls=limit)
    if not top.sitemaps:
        return top.pages
    if len(top.sitemaps) > _MAX_CHILD_SITEMAPS:
        raise FetchError(f"the sitemap index names more than {_MAX_CHILD_SITEMAPS} sitemaps")
    pages: dict[str, None] = {}
    for child in top.sitemaps:
        found = parse_sitemap(_fetch(child, settings).content, max_urls=limit)
        pages.update(dict.fromkeys(found.pages))
        if len(pages) > limit:
            raise FetchError(f"the sitemaps list more than {limit} pages")
    return list(pages)


def _spreadsheet(source: Source, settings: Settings) -> _Listing:
    mapping = check_mapping(source.mapping)
    state = source.fetch_state
    validators = Validators(state.get("etag"), state.get("last_modified")) if state else None
    fetched = _fetch(str(source.location), settings, validators)
    if fetched.not_modified:
        return _Listing([], not_modified=True, fetch_state=state)
    task = TableTask(
        data=fetched.content,
        kind=table_kind(fetched.content, fetched.filename, fetched.content_type),
        sheet=mapping.sheet,
        max_rows=settings.sources_max_items,
    )
    table = run_isolated(
        read_table,
        task,
        timeout_s=settings.parse_timeout_s,
        max_memory_mb=settings.parse_max_memory_mb or None,
    )
    rows, problems = rows_to_items(table, mapping)
    fetch_state = {"etag": fetched.etag, "last_modified": fetched.last_modified}
    return _Listing([_row(row) for row in rows], fetch_state=fetch_state, problems=problems)


def _row(row: Any) -> _Candidate:
    def load(held: SourceItem | None) -> RawItem:
        return RawItem(
            key=row.key,
            content=row.text.encode("utf-8"),
            kind="text",
            document_source_type="text",
            item_hash=row.item_hash,
            title=row.title,
            metadata=row.metadata,
        )

    return _Candidate(row.key, load)


def _folder(source: Source, settings: Settings) -> _Listing:
    folder = resolve_folder(str(source.location), settings.sources_folder_roots)
    patterns = check_patterns(source.mapping.get("patterns"))
    files = list_folder(folder, patterns, max_files=settings.sources_max_items)
    return _Listing([_file(folder, f.key, f.stamp, settings) for f in files])


def _file(folder: Path, key: str, stamp: str, settings: Settings) -> _Candidate:
    def load(held: SourceItem | None) -> RawItem | _Unchanged:
        if held is not None and held.etag == stamp:
            return _Unchanged(stamp)  # same size and modification time: not read again
        data = read_file(folder, key, max_bytes=settings.max_upload_bytes)
        return RawItem(
            key=key,
            content=data,
            kind="file",
            document_source_type="upload",
            item_hash=_sha(data),
            filename=key.rsplit("/", 1)[-1],
            etag=stamp,
        )

    return _Candidate(key, load)
