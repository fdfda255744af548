"""Exports and imports over HTTP, as background jobs.

``POST /v1/collections/{id}/exports`` queues an export (202, the job; ``Location`` is the
job to poll); the finished job's ``result.download`` is ``GET /v1/exports/{job_id}/download``,
readable by any key that may read the collection until ``RAGD_EXPORT_RETENTION_H`` has
passed. ``POST /v1/imports`` (admin) takes the archive as the request body, verifies all
of it before answering (a bad archive is a 4xx problem and nothing is written), then
queues the import itself as a job.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ragd.api.bodies import JsonBodyRoute
from ragd.api.contract import problem_responses
from ragd.api.deps import UNAUTHORIZED, ContainerDep, KeyAdmin, ReadKey, WriteKey
from ragd.api.schemas.jobs import JobPublic
from ragd.api.schemas.transfer import IMPORT_OPENAPI
from ragd.errors import PayloadTooLarge

router = APIRouter(tags=["export and import"], responses=UNAUTHORIZED, route_class=JsonBodyRoute)

IMPORTS_PATH = "/v1/imports"


class ExportCreate(BaseModel):
    """What to export besides the collection's documents, sources and chunks."""

    with_chats: bool = Field(False, description="Include chat sessions over the collection.")


@router.post(
    "/v1/collections/{collection_id}/exports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    summary="Export a collection to a signed archive, as a background job",
)
def create_export(
    collection_id: str,
    container: ContainerDep,
    key: WriteKey,
    response: Response,
    body: ExportCreate | None = None,
) -> JobPublic:
    """Queue an export; poll the job (``Location``) until ``succeeded``, then download
    the archive from ``result.download``."""
    job = container.transfer_jobs.submit_export(
        collection_id,
        with_chats=body.with_chats if body else False,
        caller=key,
    )
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.of(job, job.updated_at)


@router.get(
    "/v1/exports/{job_id}/download",
    response_class=FileResponse,
    responses={200: {"content": {"application/x-tar": {}}, "description": "The archive"}},
    summary="Download a finished export's archive",
)
def download_export(job_id: str, container: ContainerDep, key: ReadKey) -> FileResponse:
    """The archive of a succeeded export job (404 once it has expired)."""
    found = container.transfer_jobs.export_file(job_id, caller=key)
    return FileResponse(found.path, media_type="application/x-tar", filename=found.filename)


@router.post(
    IMPORTS_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    summary="Import a collection from an archive (verified now, written by a job)",
    responses=problem_responses(409, 413),
    openapi_extra=IMPORT_OPENAPI,
)
async def create_import(
    request: Request,
    container: ContainerDep,
    key: KeyAdmin,  # before the body: nobody else gets an upload stored
    response: Response,
    collection: Annotated[
        str | None, Query(max_length=200, description="Import under this name instead.")
    ] = None,
    allow_unsigned: Annotated[
        bool,
        Query(description="Accept an archive not signed by this deployment's key."),
    ] = False,
    passphrase: Annotated[
        str | None,
        Header(
            alias="X-Ragd-Passphrase",
            max_length=1024,
            description="The passphrase of an encrypted archive.",
        ),
    ] = None,
) -> JobPublic:
    """Verify the archive in the body (signature, every member's hash, the format
    version, the name; an encrypted one with ``X-Ragd-Passphrase``), then queue its
    import. Any problem is answered now and nothing is written."""
    upload = await _receive(
        request, container.transfer_jobs.upload_dir, container.settings.max_import_bytes
    )
    try:
        job = await run_in_threadpool(
            container.transfer_jobs.submit_import,
            upload,
            name=collection,
            passphrase=passphrase,
            allow_unsigned=allow_unsigned,
            caller=key,
        )
    finally:
        upload.unlink(missing_ok=True)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.of(job, job.updated_at)


async def _receive(request: Request, directory: Path, cap: int) -> Path:
    """The body streamed to a file in ``directory``, refused past ``cap`` bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for piece in request.stream():
                size += len(piece)
                if size > cap:
                    raise PayloadTooLarge(f"the archive is larger than {cap} bytes")
                out.write(piece)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
