"""Response models of ``/v1/jobs``: a background job's state, progress and outcome."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from ragd.domain import JobInfo, JobStatus


class JobPublic(BaseModel):
    """A background job (a reindex, an export, an import, a sync) as a client sees it.
    Poll it until ``status`` is ``succeeded``, ``failed`` or ``cancelled``."""

    id: str
    kind: str = Field(description="What the job does, such as `reindex`.")
    status: JobStatus
    collection_id: str | None = Field(
        description="The collection it works on; none for jobs of the whole server."
    )
    done: int = Field(description="Units of work done (documents, for a reindex).")
    total: int | None = Field(description="Units of work in all, once known.")
    rate: float | None = Field(description="Units done per second since the job started.")
    eta: float | None = Field(
        description="Seconds until a running job should finish at its current rate."
    )
    result: dict[str, Any] | None = Field(description="What a succeeded job produced.")
    error: str | None = Field(description="Why it failed, or why its last attempt did.")
    cancel_requested: bool
    attempts: int
    max_attempts: int
    created_by: str = Field(description="Who submitted it: a key prefix, or `local`.")
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(
        description="When a queued job is due (its retry time, or when it was scheduled)."
    )

    @classmethod
    def of(cls, job: JobInfo, now: dt.datetime) -> JobPublic:
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            collection_id=job.collection_id,
            done=job.progress_done,
            total=job.progress_total,
            rate=job.rate(now),
            eta=job.eta(now),
            result=job.result,
            error=job.error,
            cancel_requested=job.cancel_requested,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
            next_attempt_at=job.next_attempt_at,
        )


class JobList(BaseModel):
    jobs: list[JobPublic]
    next_cursor: str | None
