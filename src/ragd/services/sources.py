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
import time
from dataclasses import dataclass
from typing import Any

from ragd.auth import Allowed
from ragd.config import Settings
from ragd.domain import SOURCE_TYPES, NewSource, Source, SourceType
from ragd.errors import InvalidInput, NotFound, Unauthorized
from ragd.ingest.fetch import check_url
from ragd.ingest.sources.folder import check_patterns, resolve_folder
from ragd.ingest.sources.spreadsheet import check_mapping
from ragd.limits import Limits
from ragd.services.collections import CollectionService
from ragd.services.source_sync import SourceSyncer, SyncProgress
from ragd.store.base import Store
from ragd.store.tables import utcnow

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
        settings: Settings,
        limits: Limits,
    ) -> None:
        self.store = store
        self.collections = collections
        self.syncer = syncer
        self.settings = settings
        self.limits = limits

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

    # -- webhooks ------------------------------------------------------------------------

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
