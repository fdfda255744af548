"""The embedded store: one SQLite file, FTS5 for keywords, numpy for vectors."""

from __future__ import annotations

from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.database import Database
from ragd.store.sql.store import SqlStore
from ragd.store.sqlite.dialect import SqliteDialect, create_sqlite_engine
from ragd.store.sqlite.search_index import SqliteSearchIndex


class SqliteStore(SqlStore):
    """The shared SQL over a SQLite file, with its dialect and search legs."""

    def __init__(self, url: str, audit: AuditChain | None = None) -> None:
        db = Database(create_sqlite_engine(url), SqliteDialect())
        super().__init__(db, SqliteSearchIndex(db), audit)


__all__ = ["SqliteStore"]
