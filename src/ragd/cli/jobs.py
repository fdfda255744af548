"""``ragd jobs list|show|cancel``: background jobs (reindexes, exports, imports, syncs).

The CLI works on the database directly, as the operator of the machine: it sees every
job, like an unlimited admin key.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from ragd.cli.common import JsonOpt, _container, console
from ragd.domain import JobInfo, JobStatus

jobs_app = typer.Typer(help="List, show and cancel background jobs.", no_args_is_help=True)


def job_record(job: JobInfo, now: dt.datetime) -> dict[str, Any]:
    """A job as ``--json`` prints it: the fields of ``GET /v1/jobs/{id}``."""
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "collection_id": job.collection_id,
        "done": job.progress_done,
        "total": job.progress_total,
        "rate": job.rate(now),
        "eta": job.eta(now),
        "result": job.result,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_by": job.created_by,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at and job.started_at.isoformat(),
        "finished_at": job.finished_at and job.finished_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


def progress_text(job: JobInfo) -> str:
    if job.progress_total is None:
        return str(job.progress_done) if job.progress_done else ""
    return f"{job.progress_done}/{job.progress_total}"


@jobs_app.command("list")
def jobs_list(
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Only jobs of this collection.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=100)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List background jobs, newest first."""
    with _container() as container:
        collection_id = None
        if collection is not None:
            collection_id = container.collections.get(collection, counts=False).id
        page = container.jobs.list(
            kind=kind, status=status, collection_id=collection_id, limit=limit
        )
    now = dt.datetime.now(dt.UTC)
    if as_json:
        console.print_json(json.dumps([job_record(job, now) for job in page.items]))
        return
    # Ids are copied whole from here: never wrapped.
    table = Table(Column("id", no_wrap=True), "kind", "status", "collection", "progress", "created")
    for job in page.items:
        table.add_row(
            job.id,
            job.kind,
            job.status,
            job.collection_id or "",
            progress_text(job),
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@jobs_app.command("show")
def jobs_show(job_id: str, as_json: JsonOpt = False) -> None:
    """Show one job: status, progress, rate, ETA, result or error."""
    with _container() as container:
        job = container.jobs.get(job_id)
    record = job_record(job, dt.datetime.now(dt.UTC))
    if as_json:
        console.print_json(json.dumps(record))
        return
    for name, value in record.items():
        if value is not None:
            console.print(f"[bold]{name}[/bold]: {value}", highlight=False)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    """Cancel a job: a queued one at once, a running one at its next progress report."""
    with _container() as container:
        job = container.jobs.cancel(job_id)
    if job.status == "running":
        console.print(f"cancel requested: {job.id} stops at its next progress report")
    else:
        console.print(f"{job.id} is {job.status}")
