"""Synced sources: create, read, and the secret shown once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ragd.domain import SourceType, SyncStatus
from ragd.limits import CEILINGS

_MAX_INTERVAL_S = 30 * 86_400
Location = Annotated[str, Field(min_length=1, max_length=4096)]


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_s: int = Field(
        ge=1,
        le=_MAX_INTERVAL_S,
        description="Seconds between syncs; at least RAGD_SOURCES_MIN_INTERVAL_S.",
    )


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: SourceType = Field(
        description="urls: a list of pages; sitemap: a sitemap.xml or sitemap index; "
        "spreadsheet: a CSV or XLSX URL, one row per document; folder: a folder on the "
        "server under RAGD_SOURCES_FOLDER_ROOTS."
    )
    location: Location | Annotated[list[Location], Field(min_length=1)] = Field(
        description=f"The URL (or, for urls, a list of up to {CEILINGS.source_urls} URLs), "
        "or the folder's absolute path on the server."
    )
    schedule: Schedule | None = Field(
        None, description="Sync every interval_s seconds; null: only by webhook or by hand."
    )
    mapping: dict[str, Any] | None = Field(
        None,
        description="spreadsheet: key_column, text_columns, optional title_column, "
        "metadata_columns and sheet; folder: patterns (globs, default all files).",
    )


class SyncCountsPublic(BaseModel):
    added: int
    updated: int
    deleted: int
    failed: int
    unchanged: int


class SourcePublic(BaseModel):
    """A source and how its last sync went. Its webhook secret is never shown here."""

    id: str
    collection_id: str
    type: SourceType
    location: str | list[str]
    mapping: dict[str, Any]
    schedule: Schedule | None
    webhook_url: str = Field(description="Where to POST signed webhooks (a path).")
    last_sync_at: dt.datetime | None
    last_status: SyncStatus
    last_items: SyncCountsPublic = Field(description="What the last sync did to the items.")
    last_error: str | None
    next_sync_at: dt.datetime | None = Field(
        description="When the schedule runs it next (null: no run is due)."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class SourceWithSecretPublic(SourcePublic):
    secret: str = Field(
        description="The webhook signing secret. Shown only in this response: store it now."
    )


class SourceList(BaseModel):
    sources: list[SourcePublic]
