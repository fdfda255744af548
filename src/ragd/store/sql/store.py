"""The store every database shares: the SQL aggregates over one :class:`Database`.

Why this shape: each aggregate (collections, documents, job queue, background jobs,
keys, chat, embedding cache) is a plain class of its own module that needs only a
``Database`` (an engine and its :class:`~ragd.store.sql.dialect.Dialect`); none
subclasses another or overrides a hook. :class:`SqlStore` lists them once, flat, so
that one object satisfies the :class:`~ragd.store.base.Store` protocol without dozens of
forwarding methods. What a database does differently is not an override here but its
Dialect object, plus its :class:`~ragd.store.base.SearchIndex` (the retrieval legs,
which share no SQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from ragd.domain import Filters, ScoredId, Vector
from ragd.errors import InvalidInput
from ragd.store.base import SearchLegs
from ragd.store.sql.audit import SqlAudit
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.background_jobs import SqlBackgroundJobs
from ragd.store.sql.chat import SqlChat
from ragd.store.sql.collections import SqlCollections
from ragd.store.sql.database import Database
from ragd.store.sql.documents import SqlDocuments
from ragd.store.sql.embedding_cache import SqlEmbeddingCache
from ragd.store.sql.jobs import SqlJobQueue
from ragd.store.sql.keys import SqlKeys
from ragd.store.sql.reindex import SqlReindex
from ragd.store.sql.sources import SqlSources
from ragd.store.sql.transfer import SqlTransfer


class SqlStore(
    SqlCollections,
    SqlDocuments,
    SqlJobQueue,
    SqlBackgroundJobs,
    SqlReindex,
    SqlKeys,
    SqlChat,
    SqlEmbeddingCache,
    SqlAudit,
    SqlSources,
    SqlTransfer,
):
    """A :class:`~ragd.store.base.Store` over ``db``, searching with ``search``; every
    change appends to the audit chain as ``audit`` says (default: no checkpoints)."""

    def __init__(self, db: Database, search: SearchLegs, audit: AuditChain | None = None) -> None:
        self._db = db
        self._search = search
        self._audit = audit or AuditChain()

    @property
    def dialect(self) -> str:
        return self._db.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for tests and tools that read tables directly."""
        return self._db.engine

    # -- lifecycle: answers at once, never retried ---------------------------------------

    def migrate(self) -> None:
        script_location = str(resources.files("ragd.store") / "migrations")
        config = Config()
        config.set_main_option("script_location", script_location)

        def upgrade(conn: Connection) -> None:
            self._db.dialect.lock_migrations(conn)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

        self._db.run(upgrade, write=True, retried=False)
        self._db.dialect.after_migrate(self._db)

    def check(self) -> None:
        self._db.run(lambda conn: conn.execute(text("SELECT 1")), write=False, retried=False)

    def close(self) -> None:
        self._db.engine.dispose()

    def rebuild_keyword_index(self) -> int:
        raise InvalidInput(
            f"there is no keyword index on {self._db.dialect.name}: "
            "it is for PostgreSQL with RAGD_KEYWORD_INDEX=tantivy"
        )

    # -- search legs: the inputs that can match nothing never reach the database's own ----

    def keyword_search(
        self, terms: Sequence[str], *, collection_ids: Sequence[str], filters: Filters, limit: int
    ) -> list[ScoredId]:
        if not terms or not collection_ids:
            return []
        return self._search.keyword_search(
            terms, collection_ids=collection_ids, filters=filters, limit=limit
        )

    def vector_search(
        self, vector: Vector, *, collection_ids: Sequence[str], filters: Filters, limit: int
    ) -> list[ScoredId]:
        if not collection_ids or limit <= 0:
            return []
        return self._search.vector_search(
            vector, collection_ids=collection_ids, filters=filters, limit=limit
        )


__all__ = ["SqlStore"]
