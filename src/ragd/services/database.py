"""The database as a whole: its schema and what it holds, for the CLI and /metrics.

The edges (CLI commands, the metrics route) ask here instead of reaching into the
store, so the store stays behind the service layer.
"""

from __future__ import annotations

from ragd.config import Settings
from ragd.store import open_store
from ragd.store.base import Store
from ragd.telemetry.metrics import Inventory


class DatabaseService:
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def dialect(self) -> str:
        return self.store.dialect

    def migrate(self) -> None:
        """Create or upgrade the schema."""
        self.store.migrate()

    def rebuild_keyword_index(self) -> int:
        """Rebuild this host's keyword index from the database; chunks indexed."""
        return self.store.rebuild_keyword_index()

    def inventory(self) -> Inventory:
        """Documents by status, chunks and collections: read at every metrics scrape."""
        collections = self.store.list_collections()
        return Inventory(
            documents_by_status=self.store.status_counts(),
            chunks=sum(c.chunk_count for c in collections),
            collections=len(collections),
            oldest_queued_at=self.store.oldest_queued_at(),
            active_jobs=self.store.active_job_counts(),
        )


def migrate_database(settings: Settings) -> None:
    """Open the database, migrate it and close it again: for a parent process that
    must migrate before its workers start, without building a whole container."""
    store = open_store(settings)
    try:
        store.migrate()
    finally:
        store.close()
