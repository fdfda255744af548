"""The embedding cache over SQL: :class:`~ragd.store.base.EmbeddingCache` for every
database, keyed by (model, text hash)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from ragd.domain import Vector
from ragd.store.sql.convert import vector_from_bytes, vector_to_bytes
from ragd.store.sql.database import Database
from ragd.store.tables import embedding_cache

# Hashes per lookup statement: below every database's bound-parameter limit.
_CACHE_LOOKUP_BATCH = 500


class SqlEmbeddingCache:
    """Rows of ``embedding_cache``; a vector once cached is never replaced."""

    _db: Database

    def cached_embeddings(self, model: str, text_hashes: Iterable[str]) -> dict[str, Vector]:
        wanted = list(dict.fromkeys(text_hashes))

        def work(conn: Connection) -> dict[str, Vector]:
            found: dict[str, Vector] = {}
            for start in range(0, len(wanted), _CACHE_LOOKUP_BATCH):
                batch = wanted[start : start + _CACHE_LOOKUP_BATCH]
                rows = conn.execute(
                    select(embedding_cache.c.text_hash, embedding_cache.c.embedding).where(
                        embedding_cache.c.model == model,
                        embedding_cache.c.text_hash.in_(batch),
                    )
                ).all()
                found.update((h, vector_from_bytes(e)) for h, e in rows)
            return found

        return self._db.read(work)

    def cache_embeddings(self, model: str, vectors: dict[str, Vector]) -> None:
        if not vectors:
            return
        rows = [
            {"model": model, "text_hash": h, "embedding": vector_to_bytes(v)}
            for h, v in vectors.items()
        ]
        statement = self._db.dialect.insert_ignore(embedding_cache)
        self._db.write(lambda conn: conn.execute(statement, rows))


__all__ = ["SqlEmbeddingCache"]
