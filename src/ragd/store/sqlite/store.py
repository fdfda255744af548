"""The embedded store: one SQLite file, FTS5 for keywords, numpy for vectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ragd.store.base import SearchIndex
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.database import Database
from ragd.store.sql.store import SqlStore
from ragd.store.sqlite.dialect import SqliteDialect, create_sqlite_engine
from ragd.store.sqlite.search_index import SqliteSearchIndex

T = TypeVar("T")


class SqliteStore(SqlStore):
    """The shared SQL over a SQLite file, with its dialect and search legs."""

    def __init__(self, url: str, audit: AuditChain | None = None) -> None:
        db = Database(create_sqlite_engine(url), SqliteDialect())
        self._index = SqliteSearchIndex(db)
        super().__init__(db, self._index, audit)

    def search_snapshot(self, work: Callable[[SearchIndex], T]) -> T:
        """A hybrid search's legs in one read transaction
        (:class:`~ragd.store.base.SnapshotSearch`)."""
        return self._index.search_snapshot(work)


__all__ = ["SqliteStore"]
