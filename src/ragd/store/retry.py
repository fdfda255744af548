"""Retries for a server database: transient failures are retried with backoff and jitter
until a deadline, then surface as :class:`DatabaseUnavailable` (HTTP 503).

A transient failure is one a second attempt can cure: a dropped or refused connection (the
server restarting, a failover), a serialization failure or a deadlock. Every store
transaction is safe to run again: writes either check what is there first (duplicates,
lease owners) or are idempotent. The policy runs one transaction at a time (see
:meth:`ragd.store.sql.database.Database.run`), so a write that committed is never
repeated because a later transaction of the same call failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from ragd.errors import InvalidInput, Unavailable
from ragd.telemetry.metrics import DATABASE_RETRIES, DATABASE_UNAVAILABLE

log = structlog.get_logger(__name__)

T = TypeVar("T")

# SQLSTATE classes and codes worth another attempt: connection exceptions (08...),
# serialization failure, deadlock, and the server shutting down or starting up.
_TRANSIENT_CODES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300"})


class DatabaseUnavailable(Unavailable):
    """The database could not be reached, or kept failing, until the retry deadline."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None:
        # psycopg raises OperationalError without a SQLSTATE when it cannot connect.
        return isinstance(exc, OperationalError)
    return sqlstate in _TRANSIENT_CODES or sqlstate.startswith("08")


class RetryPolicy:
    """Runs a transaction until it succeeds, fails for good, or the deadline passes.

    A run inside another run (a transaction's work opening another) is not retried by
    itself: the outer run retries the whole, so the deadline bounds it once."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._depth = threading.local()

    def run(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, again on transient failures; ``DatabaseUnavailable`` at the
        deadline, ``InvalidInput`` for text PostgreSQL cannot store."""
        if getattr(self._depth, "active", False):
            return attempt()
        self._depth.active = True
        try:
            return self._retrying(attempt)
        finally:
            self._depth.active = False

    def _retrying(self, attempt: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(initial=0.05, max=1.0, jitter=0.1),
            stop=stop_after_delay(self.deadline_s),
            before_sleep=_log_retry,
        )
        try:
            return retrying(attempt)
        except RetryError as exc:
            DATABASE_UNAVAILABLE.inc()
            cause = exc.last_attempt.exception()
            raise DatabaseUnavailable("the database is unavailable; try again shortly") from cause
        except DBAPIError as exc:
            if is_transient(exc):  # a deadline of 0 gives up at the first failure
                DATABASE_UNAVAILABLE.inc()
                raise DatabaseUnavailable("the database is unavailable; try again shortly") from exc
            if getattr(exc.orig, "sqlstate", None) == "57014":
                DATABASE_UNAVAILABLE.inc()
                raise DatabaseUnavailable("the database took too long to answer") from exc
            if _is_nul_text(exc):
                raise InvalidInput(NUL_DETAIL) from exc
            raise


NUL_DETAIL = "text must not contain NUL characters (\\u0000)"


def _is_nul_text(exc: DBAPIError) -> bool:
    """PostgreSQL text and JSONB cannot hold U+0000 (psycopg refuses it before sending;
    JSONB answers 22P05): the caller's input, not a server fault."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in ("22P05", "22021") or "NUL" in str(exc.orig)


def _log_retry(state: Any) -> None:
    DATABASE_RETRIES.inc()
    error = state.outcome.exception() if state.outcome else None
    log.warning(
        "database call failed; retrying",
        attempt=state.attempt_number,
        error_type=type(error).__name__,
    )


__all__ = ["DatabaseUnavailable", "RetryPolicy", "is_transient"]
