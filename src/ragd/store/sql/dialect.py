"""What differs between the databases, as one object the shared SQL calls.

The shared SQL in :mod:`ragd.store.sql` is written once, over SQLAlchemy Core; where a
database needs something of its own (how a write transaction begins, how a transaction
is retried, a lock, an index the schema cannot keep by itself) it asks its
:class:`Dialect`. Each database has exactly one: :mod:`ragd.store.sqlite.dialect` and
:mod:`ragd.store.postgres.dialect`, so reading one file tells everything that database
does differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.sql.dml import Insert

from ragd.domain import NewChunk, NewDocument

T = TypeVar("T")


class Transactions(Protocol):
    """What a dialect hook may do with the database: run one transaction.

    :class:`ragd.store.sql.database.Database` is the implementation; the hooks see only
    this, so the dialect does not import the module that imports it.
    """

    def run(self, work: Callable[[Connection], T], *, write: bool, retried: bool = True) -> T:
        """``work`` in one transaction, as :meth:`Database.run`."""
        ...


class Dialect(Protocol):
    """The hooks of one database; every one is called from a single place in store/sql."""

    name: str
    """``Store.dialect``: ``"sqlite"`` or ``"postgresql"``."""

    write_options: Mapping[str, Any]
    """Execution options for a write transaction's connection (SQLite takes its write
    lock at BEGIN with them, so two writers never deadlock upgrading a read lock)."""

    snapshot_options: Mapping[str, Any]
    """Execution options for a read transaction that must see one snapshot throughout
    (PostgreSQL's REPEATABLE READ; a SQLite read transaction is one already)."""

    def run(self, attempt: Callable[[], T]) -> T:
        """Run one transaction ``attempt`` (it opens, commits and closes its own), again
        as the database's retry policy allows; called for every retried transaction."""
        ...

    def insert_ignore(self, table: Table) -> Insert:
        """An INSERT that skips rows whose key exists."""
        ...

    def lock_migrations(self, conn: Connection) -> None:
        """Inside the migration transaction: keep concurrent ``migrate`` calls apart."""
        ...

    def after_migrate(self, db: Transactions) -> None:
        """Bring what the migrations cannot keep (indexes per vector dimension) up to
        date; not retried, as ``migrate`` is not."""
        ...

    def prepare_dimension(self, db: Transactions, dim: int) -> None:
        """Make ready for vectors of ``dim`` (an index) before a collection of that
        dimension is created or searched."""
        ...

    def lock_duplicate_check(self, conn: Connection, new: NewDocument) -> None:
        """Inside the write transaction of ``add_document``, before it looks for a
        duplicate: make the check-then-insert atomic against a racing identical upload."""
        ...

    def index_chunks(self, conn: Connection, entries: Sequence[tuple[int, str, NewChunk]]) -> None:
        """Add full-text entries for new chunks, as ``(row id, document title, chunk)``,
        in the transaction that inserted them; a database whose index is a generated
        column needs nothing here."""
        ...


__all__ = ["Dialect"]
