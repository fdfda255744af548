"""/v1/jobs: watch and cancel background jobs (reindexes, exports, imports, syncs).

Scoped like collections: a key sees the jobs of the collections it may see, and the
jobs of no collection only with an unlimited admin key; anything else is a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import UNAUTHORIZED, ContainerDep, ReadKey, WriteKey
from ragd.api.schemas.bounds import page_size
from ragd.api.schemas.jobs import JobList, JobPublic
from ragd.domain import JobStatus

router = APIRouter(
    prefix="/v1/jobs", tags=["jobs"], responses=UNAUTHORIZED, route_class=JsonBodyRoute
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@router.get("", response_model=JobList)
def list_jobs(
    container: ContainerDep,
    key: ReadKey,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    status: JobStatus | None = None,
    collection_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, page_size()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JobList:
    """The jobs the key may see, newest first."""
    page = container.jobs.list(
        caller=key,
        kind=kind,
        status=status,
        collection_id=collection_id,
        limit=limit,
        cursor=cursor,
    )
    now = _now()
    return JobList(jobs=[JobPublic.of(j, now) for j in page.items], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: str, container: ContainerDep, key: ReadKey) -> JobPublic:
    """A job's status, progress (done, total, rate, ETA), result or error."""
    return JobPublic.of(container.jobs.get(job_id, caller=key), _now())


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: str, container: ContainerDep, key: WriteKey) -> JobPublic:
    """Cancel a job: a queued one ends at once; a running one stops at its next
    progress report and leaves nothing half-done (``cancel_requested`` until then);
    a finished one is returned unchanged."""
    return JobPublic.of(container.jobs.cancel(job_id, caller=key), _now())
