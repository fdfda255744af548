"""Everything SQLite does differently from the shared SQL, in one object.

One file, one process or several on one machine: the write lock is taken at BEGIN
(``BEGIN IMMEDIATE``), which also serializes migrations and duplicate checks, so most
hooks have nothing to do. Full text is an FTS5 table the store fills itself; there is
no vector index (the search index keeps matrices in memory) and no retry (a busy file
waits ``busy_timeout``, a missing one is no transient failure).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from ragd.domain import NewChunk, NewDocument

if TYPE_CHECKING:
    from ragd.store.sql.dialect import Transactions

T = TypeVar("T")

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=NORMAL",
)
_INSERT_FTS = text(
    "INSERT INTO chunks_fts(rowid, title, headings, body) VALUES (:id, :title, :headings, :body)"
)


def create_sqlite_engine(url: str) -> Engine:
    """An engine whose transactions SQLite runs the way a server needs: WAL, foreign
    keys, a busy timeout, and ``BEGIN IMMEDIATE`` for writes."""
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=False
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        for pragma in _PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class SqliteDialect:
    """The :class:`~ragd.store.sql.dialect.Dialect` of an embedded SQLite file."""

    name = "sqlite"
    # Read by ``_on_begin`` above: a write takes the lock at BEGIN, so two writers never
    # deadlock upgrading a read lock.
    write_options: Mapping[str, Any] = {"sqlite_immediate": True}
    # In WAL mode a read transaction sees the snapshot of its first read until it ends.
    snapshot_options: Mapping[str, Any] = {}

    def run(self, attempt: Callable[[], T]) -> T:
        return attempt()

    def insert_ignore(self, table: Table) -> Insert:
        return sqlite_insert(table).on_conflict_do_nothing()

    def lock_migrations(self, conn: Connection) -> None:
        """The write lock of the migration transaction keeps migrations apart."""

    def after_migrate(self, db: Transactions) -> None:
        """Nothing outside the migrations to keep."""

    def prepare_dimension(self, db: Transactions, dim: int) -> None:
        """No vector index: the search index scans a matrix per collection."""

    def lock_duplicate_check(self, conn: Connection, new: NewDocument) -> None:
        """The write lock taken at BEGIN already makes check-then-insert atomic."""

    def index_chunks(self, conn: Connection, entries: Sequence[tuple[int, str, NewChunk]]) -> None:
        conn.execute(
            _INSERT_FTS,
            [
                {
                    "id": chunk_id,
                    "title": title,
                    "headings": " / ".join(chunk.heading_path),
                    "body": chunk.text,
                }
                for chunk_id, title, chunk in entries
            ],
        )


__all__ = ["SqliteDialect", "create_sqlite_engine"]
