"""Background jobs (exports, imports, reindexes, syncs): submit, claim, progress, finish.

The same lease discipline as the document queue (:mod:`ragd.store.sql.leases`): a
claim leases one due job and charges it an attempt; progress extends the lease; every
finishing call checks the owner, so a worker whose lease expired and was taken over
cannot overwrite the new owner's outcome. PostgreSQL claims with ``FOR UPDATE SKIP
LOCKED``; SQLite's claim is a short write transaction (its lock is taken at BEGIN).

Every change of a job's state appends its audit event (``f"{kind}.{step}"``, see
:data:`ragd.audit.JOB_STEPS`) in the transaction that makes it: the statements that
change jobs return the rows they changed (``RETURNING``), so auditing costs no extra
round trip, and a poll that finds nothing to claim or settle appends nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from ragd.audit import AuditEntry, job_action, result_counts
from ragd.domain import JobInfo, JobStatus, NewJob, Page
from ragd.errors import Conflict, NotFound
from ragd.store.base import LeaseLost
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.convert import decode_cursor, encode_cursor
from ragd.store.sql.database import Database
from ragd.store.sql.leases import due, leased_by_dead_owners
from ragd.store.tables import jobs, new_id, utcnow

_ERROR_CHARS = 2000
_GAVE_UP = "gave up: the job's worker stopped {attempts} times without finishing it"
# Submitting with a dedup key: insert-or-find, again if the queued job found was claimed
# between the two statements (it is then no longer queued, so a new one may be).
_SUBMIT_TRIES = 5


class SqlBackgroundJobs:
    """Background-job operations over the ``jobs`` table."""

    _db: Database
    _audit: AuditChain

    def submit_job(self, new: NewJob) -> JobInfo:
        now = utcnow()
        values = {
            "kind": new.kind,
            "status": "queued",
            "collection_id": new.collection_id,
            "params": dict(new.params),
            "progress_done": 0,
            "attempts": 0,
            "max_attempts": new.max_attempts,
            "next_attempt_at": new.run_at or now,
            "cancel_requested": False,
            "dedup_key": new.dedup_key,
            "created_by": new.created_by,
            "created_at": now,
            "updated_at": now,
        }

        def work(conn: Connection) -> Row[Any]:
            for _ in range(_SUBMIT_TRIES):
                job_id = new_id("job")
                # The partial unique index on queued dedup keys decides, so two racing
                # submissions still make one job.
                inserted = conn.execute(
                    self._db.dialect.insert_ignore(jobs)
                    .values(id=job_id, **values)
                    .returning(jobs.c.id)
                ).first()
                if inserted is not None:
                    row = _row(conn, job_id)
                    detail = {"max_attempts": new.max_attempts}
                    self._audit.append(conn, [_event(row, "submit", detail)])
                    return row
                if new.dedup_key is None:
                    continue  # an id collision: draw another
                found = conn.execute(
                    select(jobs).where(jobs.c.dedup_key == new.dedup_key, jobs.c.status == "queued")
                ).first()
                if found is not None:
                    return found
            raise Conflict(f"could not queue a job for dedup key {new.dedup_key!r}; try again")

        return job_from_row(self._db.write(work))

    def get_job(self, job_id: str) -> JobInfo:
        return job_from_row(self._db.read(lambda conn: _row(conn, job_id)))

    def list_jobs(
        self,
        *,
        kind: str | None = None,
        status: JobStatus | None = None,
        collection_ids: Sequence[str] | None = None,
        include_unscoped: bool = True,
        limit: int,
        cursor: str | None = None,
    ) -> Page[JobInfo]:
        query = select(jobs)
        if kind is not None:
            query = query.where(jobs.c.kind == kind)
        if status is not None:
            query = query.where(jobs.c.status == status)
        scope: list[ColumnElement[bool]] = []
        if collection_ids is None:
            scope.append(jobs.c.collection_id.is_not(None))
        elif collection_ids:
            scope.append(jobs.c.collection_id.in_(list(collection_ids)))
        if include_unscoped:
            scope.append(jobs.c.collection_id.is_(None))
        if collection_ids is None and include_unscoped:
            scope = []  # everything
        elif not scope:
            return Page(items=[], next_cursor=None)
        if scope:
            query = query.where(or_(*scope))
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    jobs.c.created_at < created_at,
                    and_(jobs.c.created_at == created_at, jobs.c.id < last_id),
                )
            )
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        rows = self._db.read(lambda conn: conn.execute(query).all())
        items = [job_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(
            items=items,
            next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None,
        )

    def claim_background_job(
        self, *, owner: str, kinds: Sequence[str], lease_s: float
    ) -> JobInfo | None:
        if not kinds:
            return None

        def work(conn: Connection) -> Row[Any] | None:
            now = utcnow()
            events = _settle_abandoned(conn, now)
            row = _claim(conn, owner, kinds, lease_s, now)
            if row is not None:
                events.append(_event(row, "start", {"attempt": int(row.attempts)}))
            self._audit.append(conn, events)
            return row

        row = self._db.write(work)
        return None if row is None else job_from_row(row)

    def update_job_progress(
        self, job_id: str, *, owner: str, done: int, total: int | None, lease_s: float
    ) -> bool:
        def work(conn: Connection) -> bool | None:
            now = utcnow()
            values: dict[str, Any] = {
                "progress_done": done,
                "lease_expires_at": now + dt.timedelta(seconds=lease_s),
                "updated_at": now,
            }
            if total is not None:
                values["progress_total"] = total
            changed = conn.execute(update(jobs).where(*_held(job_id, owner)).values(**values))
            if not changed.rowcount:
                return None
            return bool(
                conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar()
            )

        cancel = self._db.write(work)
        if cancel is None:
            raise LeaseLost(f"job {job_id} is no longer leased by {owner}")
        return cancel

    def finish_job(self, job_id: str, *, owner: str, result: Mapping[str, Any]) -> JobInfo:
        detail = {"result": result_counts(result)}
        return self._end(job_id, owner, "finish", detail, status="succeeded", result=dict(result))

    def finish_cancelled_job(self, job_id: str, *, owner: str) -> JobInfo:
        return self._end(job_id, owner, "cancel", {}, status="cancelled")

    def _end(
        self, job_id: str, owner: str, step: str, detail: dict[str, Any], **values: Any
    ) -> JobInfo:
        def work(conn: Connection) -> Row[Any] | None:
            now = utcnow()
            ended = conn.execute(
                update(jobs)
                .where(*_held(job_id, owner))
                .values(**_ended(now), **values, error=None)
            )
            if not ended.rowcount:
                return None
            row = _row(conn, job_id)
            event = _event(row, step, {"attempt": int(row.attempts), **detail})
            self._audit.append(conn, [event])
            return row

        row = self._db.write(work)
        if row is None:
            raise LeaseLost(f"job {job_id} is no longer leased by {owner}")
        return job_from_row(row)

    def fail_background_job(
        self,
        job_id: str,
        *,
        owner: str,
        error: str,
        retry_at: dt.datetime | None,
        error_type: str | None = None,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {"error": error[:_ERROR_CHARS]}
        if retry_at is None:
            values.update(_ended(now))
            values["status"] = "failed"
        else:
            values.update(
                status="queued",
                next_attempt_at=retry_at,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        statement = (
            update(jobs).where(*_held(job_id, owner)).values(**values).returning(*_EVENT_COLUMNS)
        )
        detail: dict[str, Any] = {"error_type": (error_type or "error")[:64]}
        if retry_at is not None:
            detail["reason"] = "retry"

        def work(conn: Connection) -> None:
            row = conn.execute(statement).first()
            if row is not None:
                step = "fail" if retry_at is None else "requeue"
                event = _event(row, step, {"attempt": int(row.attempts), **detail})
                self._audit.append(conn, [event])

        self._db.write(work)

    def cancel_job(self, job_id: str) -> JobInfo:
        def work(conn: Connection) -> Row[Any]:
            events = _cancel(conn, jobs.c.id == job_id)
            row = _row(conn, job_id)
            self._audit.append(conn, events)
            return row

        return job_from_row(self._db.write(work))

    def release_background_jobs(self, *, owner: str) -> int:
        def work(conn: Connection) -> int:
            events = _release(conn, jobs.c.lease_owner == owner)
            self._audit.append(conn, events)
            return len(events)

        return int(self._db.write(work))

    def release_orphaned_background_jobs(
        self, *, host: str, is_alive: Callable[[int], bool]
    ) -> int:
        def work(conn: Connection) -> int:
            dead = leased_by_dead_owners(
                conn, jobs, running="running", host=host, is_alive=is_alive
            )
            if not dead:
                return 0
            events = _release(conn, jobs.c.id.in_(dead), refund=False)
            self._audit.append(conn, events)
            return len(events)

        return int(self._db.write(work))

    def active_job_counts(self) -> dict[tuple[str, str], int]:
        query = (
            select(jobs.c.kind, jobs.c.status, func.count())
            .where(jobs.c.status.in_(("queued", "running")))
            .group_by(jobs.c.kind, jobs.c.status)
        )
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return {(kind, status): int(count) for kind, status, count in rows}


def cancel_collection_jobs(conn: Connection, collection_id: str) -> list[AuditEntry]:
    """In the transaction deleting a collection: its queued jobs end cancelled, its
    running ones are asked to stop (their rows stay, as history). Returns their audit
    events, for the caller to append with its own."""
    return _cancel(conn, jobs.c.collection_id == collection_id, reason="collection_deleted")


def _cancel(
    conn: Connection, which: ColumnElement[bool], *, reason: str | None = None
) -> list[AuditEntry]:
    """End the queued jobs among ``which`` cancelled and ask the running ones to stop
    (once: a repeated request changes nothing); the events of both."""
    now = utcnow()
    ended = conn.execute(
        update(jobs)
        .where(which, jobs.c.status == "queued")
        .values(**_ended(now), status="cancelled")
        .returning(*_EVENT_COLUMNS)
    ).all()
    asked = conn.execute(
        update(jobs)
        .where(which, jobs.c.status == "running", jobs.c.cancel_requested.is_(False))
        .values(cancel_requested=True, updated_at=now)
        .returning(*_EVENT_COLUMNS)
    ).all()
    detail = {} if reason is None else {"reason": reason}
    return [_event(row, "cancel", detail) for row in ended] + [
        _event(row, "cancel_request", {"attempt": int(row.attempts), **detail}) for row in asked
    ]


def _claim(
    conn: Connection, owner: str, kinds: Sequence[str], lease_s: float, now: dt.datetime
) -> Row[Any] | None:
    """Lease the longest-due job of ``kinds`` to ``owner``: its row, or None."""
    candidate = (
        select(jobs.c.id)
        .where(jobs.c.kind.in_(list(kinds)), due(jobs, running="running", now=now))
        .order_by(jobs.c.next_attempt_at, jobs.c.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    job_id = conn.execute(candidate).scalar()
    if job_id is None:
        return None
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=now + dt.timedelta(seconds=lease_s),
            attempts=jobs.c.attempts + 1,
            started_at=func.coalesce(jobs.c.started_at, now),
            updated_at=now,
        )
    )
    return _row(conn, job_id)


def _held(job_id: str, owner: str) -> tuple[ColumnElement[bool], ...]:
    """The job, while ``owner`` holds its lease."""
    return (jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")


def _ended(now: dt.datetime) -> dict[str, Any]:
    return {
        "lease_owner": None,
        "lease_expires_at": None,
        "next_attempt_at": None,
        "finished_at": now,
        "updated_at": now,
    }


def _release(
    conn: Connection, which: ColumnElement[bool], *, refund: bool = True
) -> list[AuditEntry]:
    """Hand running jobs back: queued again (the attempt refunded on a graceful stop,
    kept after a crash), or cancelled when that was asked meanwhile; their events."""
    now = utcnow()
    running = and_(which, jobs.c.status == "running")
    reason = "worker_stopped" if refund else "worker_died"
    cancelled = conn.execute(
        update(jobs)
        .where(running, jobs.c.cancel_requested)
        .values(**_ended(now), status="cancelled")
        .returning(*_EVENT_COLUMNS)
    ).all()
    requeued = conn.execute(
        update(jobs)
        .where(running)
        .values(
            status="queued",
            attempts=jobs.c.attempts - 1 if refund else jobs.c.attempts,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=now,
            updated_at=now,
        )
        .returning(*_EVENT_COLUMNS)
    ).all()
    # The attempt that was interrupted (a refunded one is no longer counted).
    charged = 1 if refund else 0
    return [
        _event(row, "cancel", {"attempt": int(row.attempts), "reason": reason}) for row in cancelled
    ] + [
        _event(
            row,
            "requeue",
            {"attempt": int(row.attempts) + charged, "reason": reason, "refunded": refund},
        )
        for row in requeued
    ]


def _settle_abandoned(conn: Connection, now: dt.datetime) -> list[AuditEntry]:
    """Jobs whose worker vanished (lease expired) that must not run again: those whose
    cancel was asked end cancelled; those out of attempts end failed. Their events."""
    abandoned = and_(jobs.c.status == "running", jobs.c.lease_expires_at < now)
    cancelled = conn.execute(
        update(jobs)
        .where(abandoned, jobs.c.cancel_requested)
        .values(**_ended(now), status="cancelled")
        .returning(*_EVENT_COLUMNS)
    ).all()
    # The message names the attempts; it is written per row by a second, rare statement.
    exhausted = conn.execute(
        select(*_EVENT_COLUMNS).where(abandoned, jobs.c.attempts >= jobs.c.max_attempts)
    ).all()
    for row in exhausted:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == row.id)
            .values(**_ended(now), status="failed", error=_GAVE_UP.format(attempts=row.attempts))
        )
    detail = {"reason": "abandoned"}
    return [_event(r, "cancel", {"attempt": int(r.attempts), **detail}) for r in cancelled] + [
        _event(r, "fail", {"attempt": int(r.attempts), **detail}) for r in exhausted
    ]


# What a job's audit event needs of its row.
_EVENT_COLUMNS = (jobs.c.id, jobs.c.kind, jobs.c.collection_id, jobs.c.attempts)


def _event(row: Any, step: str, detail: dict[str, Any]) -> AuditEntry:
    """The event of one step of the job in ``row``: ``f"{kind}.{step}"``, naming the job
    and its collection."""
    target = (row.id,) if row.collection_id is None else (row.id, row.collection_id)
    return AuditEntry(job_action(row.kind, step), target, detail)


def _row(conn: Connection, job_id: str) -> Row[Any]:
    found = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if found is None:
        raise NotFound(f"job {job_id!r} not found")
    return found


def job_from_row(row: Row[Any]) -> JobInfo:
    m = row._mapping
    return JobInfo(
        id=m["id"],
        kind=m["kind"],
        status=m["status"],
        collection_id=m["collection_id"],
        params=dict(m["params"] or {}),
        result=None if m["result"] is None else dict(m["result"]),
        progress_done=m["progress_done"],
        progress_total=m["progress_total"],
        error=m["error"],
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        next_attempt_at=m["next_attempt_at"],
        cancel_requested=bool(m["cancel_requested"]),
        dedup_key=m["dedup_key"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
    )


__all__ = ["SqlBackgroundJobs", "cancel_collection_jobs", "job_from_row"]
