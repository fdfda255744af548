"""/v1/audit: the audit log, newest first, and its verification (admin keys that see
every collection: the log names all of them)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import FORBIDDEN, UNAUTHORIZED, ContainerDep, KeyAdmin
from ragd.api.schemas.audit import AuditEventList, AuditEventPublic, AuditVerdictPublic
from ragd.api.schemas.bounds import page_size
from ragd.audit import AuditEvent, AuditFilters, format_at
from ragd.services.audit import MAX_FILTER_CHARS

router = APIRouter(
    prefix="/v1/audit",
    tags=["audit"],
    responses={**UNAUTHORIZED, **FORBIDDEN},
    route_class=JsonBodyRoute,
)

FilterText = Annotated[str | None, Query(min_length=1, max_length=MAX_FILTER_CHARS)]


def to_public(event: AuditEvent) -> AuditEventPublic:
    return AuditEventPublic(
        seq=event.seq,
        at=format_at(event.at),
        actor=event.actor,
        action=event.action,
        target=list(event.target),
        request_id=event.request_id,
        client=event.client,
        detail=event.detail,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


@router.get("", response_model=AuditEventList, summary="List audit events, newest first")
def list_events(
    container: ContainerDep,
    _admin: KeyAdmin,
    action: FilterText = None,
    actor: FilterText = None,
    target: Annotated[
        str | None, Query(min_length=1, max_length=MAX_FILTER_CHARS, description="An id.")
    ] = None,
    since: Annotated[dt.datetime | None, Query(description="At or after (UTC if no zone).")] = None,
    until: Annotated[dt.datetime | None, Query(description="Before (UTC if no zone).")] = None,
    limit: Annotated[int | None, page_size()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> AuditEventList:
    filters = AuditFilters(action=action, actor=actor, target=target, since=since, until=until)
    page = container.audit.list_page(filters, limit=limit, cursor=cursor)
    return AuditEventList(events=[to_public(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/verify",
    response_model=AuditVerdictPublic,
    summary="Check every hash, link and checkpoint signature of the audit log",
)
async def verify(container: ContainerDep, _admin: KeyAdmin) -> AuditVerdictPublic:
    verdict = await run_in_threadpool(container.audit.verify)
    return AuditVerdictPublic(
        ok=verdict.ok,
        checked=verdict.checked,
        checkpoints=verdict.checkpoints,
        last_seq=verdict.last_seq,
        key_id=verdict.key_id,
        first_bad_seq=verdict.first_bad_seq,
        kind=verdict.kind,
        problem=verdict.problem,
        key_ids=verdict.key_ids,
        signed_by=verdict.signed_by,
    )
