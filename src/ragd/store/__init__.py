"""Storage: one Store protocol, chosen from settings in :func:`open_store`."""

from __future__ import annotations

import functools

from ragd.config import Settings
from ragd.errors import InvalidInput
from ragd.signing import load_or_create_signer
from ragd.store.base import Store
from ragd.store.sql.audit_chain import AuditChain


def open_store(settings: Settings) -> Store:
    """The store for the configured database URL (migrations are run by the caller)."""
    url = settings.resolved_database_url
    audit = audit_chain(settings)
    if url.startswith("sqlite"):
        from ragd.store.sqlite.store import SqliteStore

        return SqliteStore(url, audit)
    if url.startswith(("postgresql", "postgres:")):
        from ragd.store.postgres.store import PostgresStore

        return PostgresStore(url, settings, audit)
    raise InvalidInput(
        f"RAGD_DATABASE_URL: unsupported database {url.split(':', 1)[0]!r}; "
        "use sqlite:///path or postgresql+psycopg://user:password@host/db"
    )


def audit_chain(settings: Settings) -> AuditChain:
    """Checkpoints every ``RAGD_AUDIT_CHECKPOINT_EVERY`` events, signed by the deployment
    key (loaded at the first checkpoint, or earlier by whoever asks for it)."""
    signer = functools.cache(
        lambda: load_or_create_signer(settings.audit_signing_key_file, settings.data_dir)
    )
    return AuditChain(checkpoint_every=settings.audit_checkpoint_every, signer=signer)


__all__ = ["Store", "audit_chain", "open_store"]
