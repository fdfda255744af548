"""An engine and its dialect: the one place a store opens a transaction.

Every transaction of the shared SQL is a function of a connection handed to
:meth:`Database.read` or :meth:`Database.write`. Both give it to the dialect's retry
policy (:meth:`Dialect.run`), so the retry is visible where the transaction is opened and
covers exactly one transaction: a write that committed is never run again because a
later read of the same call failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine

from ragd.store.sql.dialect import Dialect

T = TypeVar("T")


class Database:
    """Runs transactions on ``engine`` as ``dialect`` says."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self.engine = engine
        self.dialect = dialect

    def read(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a read transaction, retried by the dialect's policy."""
        return self.run(work, write=False)

    def write(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a write transaction, retried by the dialect's policy."""
        return self.run(work, write=True)

    def snapshot(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a read transaction that sees one snapshot from its first
        statement to its last (a verification reading the audit chain in pages)."""

        def attempt() -> T:
            options = self.dialect.snapshot_options
            with self.engine.connect().execution_options(**options) as conn, conn.begin():
                return work(conn)

        return self.dialect.run(attempt)

    def run(self, work: Callable[[Connection], T], *, write: bool, retried: bool = True) -> T:
        """``work`` in one transaction; ``retried=False`` for the calls that must answer
        at once (health checks, migrations).

        ``work`` may run more than once, so it must only touch the database and local
        values; a domain error it raises rolls the transaction back and is not retried.
        """

        def attempt() -> T:
            options = self.dialect.write_options if write else {}
            with self.engine.connect().execution_options(**options) as conn, conn.begin():
                return work(conn)

        return self.dialect.run(attempt) if retried else attempt()


__all__ = ["Database"]
