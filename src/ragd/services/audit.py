"""The audit log as operations: list, verify, prune, checkpoint, and record.

The store appends the events of its own changes (see :mod:`ragd.store.sql.audit_chain`);
this service is what the transports and other services use:

- :meth:`AuditService.record` for an event that is no change of the store's (a feature
  that writes elsewhere: an export file, a reindex on another host). A change the store
  makes records its event inside its own transaction instead: call
  ``AuditChain.append(conn, [AuditEntry(...)])`` as the last statement of the store
  method's work function (docs/architecture.md, "Audit events").
- :meth:`AuditService.failed_auth` for a refused credential, aggregated (see
  :class:`FailedAuthLog`) so that a flood of bad keys is not a flood of writes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ragd.audit import (
    ANONYMOUS,
    AuditCheckpoint,
    AuditContext,
    AuditEntry,
    AuditEvent,
    AuditFilters,
    AuditPruned,
    acting_as,
)
from ragd.config import Settings
from ragd.domain import Page
from ragd.errors import InvalidInput
from ragd.limits import Limits
from ragd.services.audit_verify import AuditVerdict, verify_chain
from ragd.signing import Signer, Verifier, load_or_create_signer, load_verifier
from ragd.store.base import AuditReader, Store

# Filters name an action, an actor or an id: none of them is longer than this.
MAX_FILTER_CHARS = 128


class AuditService:
    def __init__(self, store: Store, settings: Settings, limits: Limits) -> None:
        self.store = store
        self.settings = settings
        self.limits = limits
        self.failed_auths = FailedAuthLog(store)
        self._signer: Signer | None = None

    def signer(self) -> Signer:
        """The deployment's signing key (``RAGD_AUDIT_SIGNING_KEY_FILE``, or the data
        directory's own, created on first use with mode 0600)."""
        if self._signer is None:
            self._signer = load_or_create_signer(
                self.settings.audit_signing_key_file, self.settings.data_dir
            )
        return self._signer

    def public_key_pem(self) -> str:
        return self.signer().pem()

    def record(
        self, action: str, target: Sequence[str] = (), detail: Mapping[str, Any] | None = None
    ) -> int:
        """Append one event in a transaction of its own; its seq. ``detail`` is small
        JSON (counts, hashes, no document text, no floats)."""
        return self.store.record_audit([AuditEntry(action, tuple(target), detail)])

    def list_page(
        self, filters: AuditFilters, *, limit: int | None, cursor: str | None
    ) -> Page[AuditEvent]:
        for name in ("action", "actor", "target"):
            value = getattr(filters, name)
            if value is not None and not 1 <= len(value) <= MAX_FILTER_CHARS:
                raise InvalidInput(f"{name} must be 1-{MAX_FILTER_CHARS} characters")
        size = limit or self.limits.default_page_size
        if not 1 <= size <= self.limits.page_size:
            raise InvalidInput(f"limit must be between 1 and {self.limits.page_size}")
        filters = replace(
            filters, since=_utc(filters.since, "since"), until=_utc(filters.until, "until")
        )
        return self.store.list_audit_events(filters, limit=size, cursor=cursor)

    def verify(self, public_keys: Sequence[Path] = ()) -> AuditVerdict:
        """Check every hash, link and checkpoint signature, each checkpoint against the
        key its ``key_id`` names among ``public_keys`` (PEM files: an auditor's own
        copies), or else among the deployment's signing key and
        ``RAGD_AUDIT_PUBLIC_KEY_FILES`` (its keys before a rotation)."""

        def check(reader: AuditReader) -> AuditVerdict:
            # A database that was never migrated fails here, before a key is made for it.
            reader.head()
            return verify_chain(reader, self._verifiers(public_keys))

        return self.store.read_audit(check)

    def _verifiers(self, public_keys: Sequence[Path]) -> list[Verifier]:
        if public_keys:
            return [load_verifier(path) for path in public_keys]
        retired = self.settings.audit_public_key_files
        return [self.signer(), *(load_verifier(Path(path)) for path in retired)]

    def checkpoint(self) -> AuditCheckpoint | None:
        """Sign the chain head unless it is signed already (on shutdown)."""
        return self.store.checkpoint_audit()

    def prune(self, before: dt.datetime) -> AuditPruned:
        """Delete events up to the newest checkpoint signed at or before ``before``; that
        checkpoint anchors what remains, so the chain still verifies."""
        when = _utc(before, "before")
        assert when is not None
        return self.store.prune_audit(when)

    def close(self) -> None:
        """On shutdown: write the pending failed-authentication counts, sign the head."""
        self.failed_auths.flush()
        self.checkpoint()


def _utc(when: dt.datetime | None, name: str) -> dt.datetime | None:
    """``when`` in UTC (a naive one is taken as UTC); a time that UTC cannot hold (the
    year 1 at +01:00) is the caller's mistake, not a server error."""
    if when is None:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidInput(f"{name} is out of range") from None


@dataclass
class _Source:
    window_start: float
    pending: int = 0
    reason: str = ""
    client: str | None = None


class FailedAuthLog:
    """Failed authentications as audit events, at most one per source a minute.

    A source is the presented key's prefix, or the client address when no well-formed
    key was presented. The first failure of a source writes an event at once; later
    ones within :attr:`WINDOW_S` are counted, and the next event of that source says how
    many (``detail.count``: failures since its previous event). At most
    :attr:`MAX_EVENTS_PER_WINDOW` events are written per window by one process; failures
    beyond are counted under the source ``*``. Pending counts are written on shutdown
    (a process killed with SIGKILL loses them: at most a window's counts per source).
    The secret of a presented key never reaches this class.
    """

    WINDOW_S = 60.0
    MAX_EVENTS_PER_WINDOW = 60
    MAX_SOURCES = 10_000

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._sources: dict[str, _Source] = {}
        self._window_start = time.monotonic()
        self._written = 0

    def note(self, *, key_prefix: str | None, client: str | None, reason: str) -> bool:
        """Count one failure; write its event now when due. Whether one was written."""
        entry = self.count(key_prefix=key_prefix, client=client, reason=reason)
        if entry is None:
            return False
        self.write(entry, client=client)
        return True

    def count(
        self, *, key_prefix: str | None, client: str | None, reason: str
    ) -> AuditEntry | None:
        """Count one failure without touching the database; the event to write now, if
        one is due. For an event loop: only a due event needs a thread (:meth:`write`),
        so a flood of bad keys costs a lock and a counter each, not a thread hop."""
        source = f"key:{key_prefix}" if key_prefix else f"address:{client or 'unknown'}"
        return self._due(source, client, reason)

    def write(self, entry: AuditEntry, *, client: str | None) -> None:
        """Append an event :meth:`count` said is due (blocking: a database write)."""
        with acting_as(AuditContext(actor=ANONYMOUS, client=client)):
            self.store.record_audit([entry])

    def flush(self) -> None:
        """Write every pending count (shutdown)."""
        with self._lock:
            pending = [(name, s) for name, s in self._sources.items() if s.pending]
            self._sources.clear()
        for name, source in pending:
            with acting_as(AuditContext(actor=ANONYMOUS, client=source.client)):
                self.store.record_audit([_failed(name, source.pending, source.reason)])

    def _due(self, source: str, client: str | None, reason: str) -> AuditEntry | None:
        now = time.monotonic()
        with self._lock:
            if now - self._window_start >= self.WINDOW_S:
                self._window_start, self._written = now, 0
                self._forget_quiet(now)
            known = self._sources.get(source)
            if known is not None and now - known.window_start < self.WINDOW_S:
                known.pending += 1
                known.reason, known.client = reason, client
                return None
            if self._written >= self.MAX_EVENTS_PER_WINDOW or (
                known is None and len(self._sources) >= self.MAX_SOURCES
            ):
                overflow = self._sources.setdefault("*", _Source(window_start=now))
                overflow.pending += 1
                overflow.reason = "many sources"
                return None
            count = 1 + (known.pending if known is not None else 0)
            self._sources[source] = _Source(window_start=now, reason=reason, client=client)
            self._written += 1
            return _failed(source, count, reason)

    def _forget_quiet(self, now: float) -> None:
        """Drop the sources whose window ended with nothing pending (bounded memory)."""
        quiet = [
            name
            for name, s in self._sources.items()
            if not s.pending and now - s.window_start >= self.WINDOW_S
        ]
        for name in quiet:
            del self._sources[name]


def _failed(source: str, count: int, reason: str) -> AuditEntry:
    kind, _, name = source.partition(":")
    detail: dict[str, Any] = {"reason": reason, "count": count}
    if kind == "key":
        detail["key_prefix"] = name
    elif kind == "*":
        detail["source"] = "*"
    return AuditEntry("auth.failed", (), detail)


__all__ = ["MAX_FILTER_CHARS", "AuditService", "FailedAuthLog"]
