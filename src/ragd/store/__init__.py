"""Storage: one Store protocol, chosen from settings in :func:`open_store`."""

from __future__ import annotations

from ragd.config import Settings
from ragd.errors import InvalidInput
from ragd.store.base import Store


def open_store(settings: Settings) -> Store:
    """The store for the configured database URL (migrations are run by the caller)."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        from ragd.store.sqlite.store import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql", "postgres:")):
        from ragd.store.postgres.store import PostgresStore

        return PostgresStore(url, settings)
    raise InvalidInput(
        f"RAGD_DATABASE_URL: unsupported database {url.split(':', 1)[0]!r}; "
        "use sqlite:///path or postgresql+psycopg://user:password@host/db"
    )


__all__ = ["Store", "open_store"]
