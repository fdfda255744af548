"""The key service on a real SQLite store: hashing, constant-time checks, revocation,
``last_used_at`` throttling and the ``RAGD_ADMIN_KEY`` bootstrap upsert."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from ragd.auth import key_prefix
from ragd.embedding import LocalEmbedder
from ragd.errors import InvalidInput, NotFound, Unauthorized
from ragd.services.collections import CollectionService
from ragd.services.keys import KeyService
from ragd.store.sqlite.store import SqliteStore
from ragd.store.tables import api_keys, utcnow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(f"sqlite:///{tmp_path}/ragd.db")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def collections(store: SqliteStore, embedder: LocalEmbedder) -> CollectionService:
    return CollectionService(store, embedder)


@pytest.fixture
def keys(store: SqliteStore, collections: CollectionService) -> KeyService:
    return KeyService(store, collections)


def stored_rows(store: SqliteStore) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(api_keys)).all()]


def test_created_key_has_the_documented_shape_and_only_its_hash_is_stored(
    keys: KeyService, store: SqliteStore
) -> None:
    created = keys.create("ci", "write")
    secret = created.secret
    prefix = key_prefix(secret)
    assert prefix == created.key.prefix
    assert len(prefix) == 8 and prefix.isalnum()
    assert secret.startswith(f"rgd_{prefix}_")
    assert len(secret.removeprefix(f"rgd_{prefix}_")) >= 43  # 32 random bytes, base64url

    [row] = stored_rows(store)
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    secret_part = secret.split("_", 2)[2]
    assert all(secret_part not in str(value) for value in row.values())
    with store.engine.connect() as conn:
        dump = "\n".join(conn.connection.dbapi_connection.iterdump())  # type: ignore[union-attr]
    assert secret_part not in dump


def test_authenticate_returns_scope_and_collection_limit(
    keys: KeyService, collections: CollectionService
) -> None:
    notes = collections.create("notes")
    created = keys.create("reader", "read", ["notes"])  # a name resolves to the id
    principal = keys.authenticate(created.secret)
    assert principal.key_id == created.key.id
    assert principal.prefix == created.key.prefix
    assert principal.scope == "read"
    assert principal.collection_ids == frozenset({notes.id})
    assert principal.allows("read") and not principal.allows("write")
    unlimited = keys.authenticate(keys.create("all", "admin").secret)
    assert unlimited.collection_ids is None and unlimited.allows("admin")


def test_wrong_unknown_and_malformed_keys_go_through_compare_digest(
    keys: KeyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = keys.create("real", "read").secret
    calls: list[tuple[str, str]] = []
    original = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    attempts = [
        real[:-1] + ("A" if real[-1] != "A" else "B"),  # right prefix, wrong secret
        f"rgd_zzzzzzzz_{'x' * 43}",  # unknown prefix
        "not-a-key",  # malformed
    ]
    for attempt in attempts:
        with pytest.raises(Unauthorized, match="not valid"):
            keys.authenticate(attempt)
    assert len(calls) == len(attempts)  # every path compares, found or not
    assert calls[0][1] == hashlib.sha256(real.encode()).hexdigest()
    keys.authenticate(real)
    assert len(calls) == len(attempts) + 1


def test_revoked_key_is_refused_and_revoking_again_keeps_the_time(keys: KeyService) -> None:
    created = keys.create("old", "read")
    first = keys.revoke(created.key.id)
    assert first.revoked_at is not None
    with pytest.raises(Unauthorized, match="revoked"):
        keys.authenticate(created.secret)
    assert keys.revoke(created.key.id).revoked_at == first.revoked_at
    assert not keys.any_active()
    with pytest.raises(NotFound):
        keys.revoke("key_missing")


def test_last_used_at_is_written_at_most_once_a_minute(
    keys: KeyService, store: SqliteStore
) -> None:
    created = keys.create("busy", "read")
    assert created.key.last_used_at is None
    keys.authenticate(created.secret)
    first = store.get_key(created.key.id).last_used_at
    assert first is not None
    keys.authenticate(created.secret)
    assert store.get_key(created.key.id).last_used_at == first  # no write within a minute

    earlier = utcnow() - dt.timedelta(minutes=2)
    with store.engine.begin() as conn:
        conn.execute(
            update(api_keys).where(api_keys.c.id == created.key.id).values(last_used_at=earlier)
        )
    keys.authenticate(created.secret)
    later = store.get_key(created.key.id).last_used_at
    assert later is not None and later > earlier + dt.timedelta(minutes=1)


def test_bootstrap_upserts_an_admin_key_and_respects_revocation(
    keys: KeyService, store: SqliteStore
) -> None:
    assert not keys.any_active()
    bootstrap = f"rgd_boot0001_{'s' * 40}"
    stored = keys.bootstrap(bootstrap)
    assert stored.scope == "admin" and stored.collection_ids is None
    assert keys.authenticate(bootstrap).scope == "admin"
    assert keys.any_active()
    assert keys.bootstrap(bootstrap).id == stored.id  # idempotent on restart
    assert len(stored_rows(store)) == 1

    keys.revoke(stored.id)
    assert keys.bootstrap(bootstrap).revoked_at is not None  # a restart does not revive it
    rotated = f"rgd_boot0001_{'t' * 40}"
    assert keys.bootstrap(rotated).revoked_at is None  # a new secret does
    assert keys.authenticate(rotated).key_id == stored.id
    with pytest.raises(Unauthorized):
        keys.authenticate(bootstrap)


def test_create_validates_name_scope_and_collections(keys: KeyService) -> None:
    with pytest.raises(InvalidInput, match="scope"):
        keys.create("x", "root")
    with pytest.raises(InvalidInput, match="name"):
        keys.create("   ", "read")
    with pytest.raises(InvalidInput, match="does not exist"):
        keys.create("x", "read", ["nope"])
    with pytest.raises(InvalidInput, match="at least one"):
        keys.create("x", "read", [])


def test_migration_creates_the_keys_table(store: SqliteStore) -> None:
    with store.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(keys)"))}
    assert version is not None and version >= "0002"
    assert {"id", "name", "prefix", "key_hash", "scope", "collection_ids"} <= columns
    assert {"created_at", "last_used_at", "revoked_at"} <= columns


# -- the in-process cache (RAGD_AUTH_CACHE_TTL_S) -------------------------------------------


def test_a_cached_key_needs_no_database_and_revoking_here_ends_it_at_once(
    store: SqliteStore, collections: CollectionService
) -> None:
    keys = KeyService(store, collections, cache_ttl_s=300)
    created = keys.create("cached", "read")
    assert keys.cached(created.secret) is None  # never checked yet
    principal = keys.authenticate(created.secret)
    assert keys.cached(created.secret) == principal
    assert keys.cached(created.secret + "x") is None
    # The row's hash changed under the cache: the cache answers, the database is not asked.
    with store.engine.begin() as conn:
        conn.execute(update(api_keys).values(key_hash="0" * 64))
    assert keys.authenticate(created.secret) == principal
    keys.revoke(created.key.id)
    assert keys.cached(created.secret) is None
    with pytest.raises(Unauthorized):
        keys.authenticate(created.secret)


def test_a_revocation_by_another_process_takes_effect_within_the_ttl(
    store: SqliteStore, collections: CollectionService
) -> None:
    serving = KeyService(store, collections, cache_ttl_s=0.2)
    elsewhere = KeyService(store, collections)  # `ragd keys revoke`, another worker
    created = elsewhere.create("shared", "read")
    serving.authenticate(created.secret)
    elsewhere.revoke(created.key.id)
    time.sleep(0.25)  # past the TTL
    with pytest.raises(Unauthorized, match="revoked"):
        serving.authenticate(created.secret)


def test_a_failed_check_is_not_cached(store: SqliteStore, collections: CollectionService) -> None:
    keys = KeyService(store, collections, cache_ttl_s=300)
    created = keys.create("late", "read")
    with store.engine.begin() as conn:
        conn.execute(update(api_keys).values(revoked_at=utcnow()))
    with pytest.raises(Unauthorized):
        keys.authenticate(created.secret)
    with store.engine.begin() as conn:
        conn.execute(update(api_keys).values(revoked_at=None))
    assert keys.authenticate(created.secret).key_id == created.key.id


def test_whether_any_key_exists_is_cached_and_creating_one_clears_it(
    store: SqliteStore, collections: CollectionService
) -> None:
    keys = KeyService(store, collections, cache_ttl_s=300)
    elsewhere = KeyService(store, collections)
    assert not keys.any_active()
    elsewhere.create("other process", "read")
    assert not keys.any_active()  # within the TTL, this process has not heard yet
    created = keys.create("here", "read")
    assert keys.any_active()
    keys.revoke(created.key.id)
    assert keys.any_active()  # the other process's key is still active
