"""Background jobs (exports, imports, reindexes, syncs): submit, claim, progress, finish.

The same lease discipline as the document queue (:mod:`ragd.store.sql.leases`): a
claim leases one due job and charges it an attempt; progress extends the lease; every
finishing call checks the owner, so a worker whose lease expired and was taken over
cannot overwrite the new owner's outcome. PostgreSQL claims with ``FOR UPDATE SKIP
LOCKED``; SQLite's claim is a short write transaction (its lock is taken at BEGIN).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from ragd.domain import JobInfo, JobStatus, NewJob, Page
from ragd.errors import Conflict, NotFound
from ragd.store.base import LeaseLost
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
                    return _row(conn, job_id)
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
            _settle_abandoned(conn, now)
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
        return self._end(job_id, owner, status="succeeded", result=dict(result))

    def finish_cancelled_job(self, job_id: str, *, owner: str) -> JobInfo:
        return self._end(job_id, owner, status="cancelled")

    def _end(self, job_id: str, owner: str, **values: Any) -> JobInfo:
        def work(conn: Connection) -> Row[Any] | None:
            now = utcnow()
            ended = conn.execute(
                update(jobs)
                .where(*_held(job_id, owner))
                .values(**_ended(now), **values, error=None)
            )
            return _row(conn, job_id) if ended.rowcount else None

        row = self._db.write(work)
        if row is None:
            raise LeaseLost(f"job {job_id} is no longer leased by {owner}")
        return job_from_row(row)

    def fail_background_job(
        self, job_id: str, *, owner: str, error: str, retry_at: dt.datetime | None
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
        statement = update(jobs).where(*_held(job_id, owner)).values(**values)
        self._db.write(lambda conn: conn.execute(statement))

    def cancel_job(self, job_id: str) -> JobInfo:
        def work(conn: Connection) -> Row[Any]:
            now = utcnow()
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "queued")
                .values(**_ended(now), status="cancelled")
            )
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(cancel_requested=True, updated_at=now)
            )
            return _row(conn, job_id)

        return job_from_row(self._db.write(work))

    def release_background_jobs(self, *, owner: str) -> int:
        return int(self._db.write(lambda conn: _release(conn, jobs.c.lease_owner == owner)))

    def release_orphaned_background_jobs(
        self, *, host: str, is_alive: Callable[[int], bool]
    ) -> int:
        def work(conn: Connection) -> int:
            dead = leased_by_dead_owners(
                conn, jobs, running="running", host=host, is_alive=is_alive
            )
            return _release(conn, jobs.c.id.in_(dead), refund=False) if dead else 0

        return int(self._db.write(work))

    def active_job_counts(self) -> dict[tuple[str, str], int]:
        query = (
            select(jobs.c.kind, jobs.c.status, func.count())
            .where(jobs.c.status.in_(("queued", "running")))
            .group_by(jobs.c.kind, jobs.c.status)
        )
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return {(kind, status): int(count) for kind, status, count in rows}


def cancel_collection_jobs(conn: Connection, collection_id: str) -> None:
    """In the transaction deleting a collection: its queued jobs end cancelled, its
    running ones are asked to stop (their rows stay, as history)."""
    now = utcnow()
    of_collection = jobs.c.collection_id == collection_id
    conn.execute(
        update(jobs)
        .where(of_collection, jobs.c.status == "queued")
        .values(**_ended(now), status="cancelled")
    )
    conn.execute(
        update(jobs)
        .where(of_collection, jobs.c.status == "running")
        .values(cancel_requested=True, updated_at=now)
    )


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


def _release(conn: Connection, which: ColumnElement[bool], *, refund: bool = True) -> int:
    """Hand running jobs back: queued again (the attempt refunded on a graceful stop,
    kept after a crash), or cancelled when that was asked meanwhile."""
    now = utcnow()
    running = and_(which, jobs.c.status == "running")
    cancelled = conn.execute(
        update(jobs)
        .where(running, jobs.c.cancel_requested)
        .values(**_ended(now), status="cancelled")
    ).rowcount
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
    ).rowcount
    return int(cancelled) + int(requeued)


def _settle_abandoned(conn: Connection, now: dt.datetime) -> None:
    """Jobs whose worker vanished (lease expired) that must not run again: those whose
    cancel was asked end cancelled; those out of attempts end failed."""
    abandoned = and_(jobs.c.status == "running", jobs.c.lease_expires_at < now)
    conn.execute(
        update(jobs)
        .where(abandoned, jobs.c.cancel_requested)
        .values(**_ended(now), status="cancelled")
    )
    # The message names the attempts; it is written per row by a second, rare statement.
    exhausted = conn.execute(
        select(jobs.c.id, jobs.c.attempts).where(abandoned, jobs.c.attempts >= jobs.c.max_attempts)
    ).all()
    for job_id, attempts in exhausted:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(**_ended(now), status="failed", error=_GAVE_UP.format(attempts=attempts))
        )


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
