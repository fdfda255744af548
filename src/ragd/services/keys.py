"""API keys: create (the secret is shown once), list, revoke, and authenticate.

Shared by the CLI (``ragd keys ...``), the admin HTTP routes and the auth dependency.
The database holds only the sha-256 of each key; a presented key is hashed and compared
with :func:`hmac.compare_digest`, and ``last_used_at`` is written at most once a minute
per key so that authenticating is not a write per request.

Authenticating is also not a *read* per request: a key that checked out is trusted for
``RAGD_AUTH_CACHE_TTL_S`` seconds (by the hash of the presented key; the secret itself is
never kept), and so is the answer to "does any key exist". Revoking or creating a key
through this service clears both at once in this process; a revocation made by another
process (another ``--workers`` process, a replica, ``ragd keys revoke``) takes effect here
within the TTL. A failed check is never cached: it asks the database every time.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import structlog

from ragd.auth import SCOPES, Principal, Scope, generate_key, hash_key, key_prefix
from ragd.config import Settings
from ragd.domain import ApiKey, NewApiKey
from ragd.errors import Conflict, InvalidInput, NotFound, Unauthorized
from ragd.limits import CEILINGS
from ragd.services.collections import CollectionService
from ragd.store.base import Store
from ragd.store.tables import utcnow

log = structlog.get_logger(__name__)

# How a server authenticates: "keys" once any active key exists; "loopback-only" until
# then (the secure default); "disabled" when RAGD_AUTH_DISABLED=true.
AuthMode = Literal["keys", "loopback-only", "disabled"]

LAST_USED_EVERY = dt.timedelta(minutes=1)
BOOTSTRAP_NAME = "bootstrap admin (RAGD_ADMIN_KEY)"
# Compared against when no key has the presented prefix, so that an unknown prefix and
# a wrong secret go through the same hash-and-compare path.
_NO_SUCH_KEY_HASH = hash_key("rgd_none0000_" + "0" * 43)
_CREATE_ATTEMPTS = 3
# More distinct valid keys than this in one TTL is not a deployment this cache is for:
# it then starts afresh rather than growing.
_CACHE_MAX_KEYS = 10_000


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its full secret, which exists only here and in the reply."""

    key: ApiKey
    secret: str


def validate_key_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > CEILINGS.key_name_chars:
        raise InvalidInput(f"key name must be 1-{CEILINGS.key_name_chars} characters")
    return name


def validate_scope(scope: str) -> Scope:
    for known in SCOPES:
        if scope == known:
            return known
    raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")


class AuthCache:
    """What a process remembers of recent key checks, each entry for ``ttl_s`` seconds:
    principals by key hash, and whether any active key exists."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._principals: dict[str, tuple[float, Principal]] = {}
        self._any_active: tuple[float, bool] | None = None

    def principal(self, key_hash: str) -> Principal | None:
        with self._lock:
            found = self._principals.get(key_hash)
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1]

    def remember(self, key_hash: str, principal: Principal) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._principals) >= _CACHE_MAX_KEYS:
                self._principals.clear()
            self._principals[key_hash] = (time.monotonic() + self.ttl_s, principal)

    def any_active(self) -> bool | None:
        found = self._any_active
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1]

    def remember_any_active(self, value: bool) -> None:
        if self.ttl_s > 0:
            self._any_active = (time.monotonic() + self.ttl_s, value)

    def clear(self) -> None:
        with self._lock:
            self._principals.clear()
            self._any_active = None


class KeyService:
    def __init__(
        self, store: Store, collections: CollectionService, *, cache_ttl_s: float = 0.0
    ) -> None:
        self.store = store
        self.collections = collections
        self.cache = AuthCache(cache_ttl_s)

    def create(self, name: str, scope: str, collections: Sequence[str] | None = None) -> CreatedKey:
        """A new key; ``collections`` (ids or names) limits it, None means all."""
        new_name, new_scope = validate_key_name(name), validate_scope(scope)
        allowed = self._collection_ids(collections)
        for attempt in range(_CREATE_ATTEMPTS):
            prefix, secret = generate_key()
            record = NewApiKey(new_name, prefix, hash_key(secret), new_scope, allowed)
            try:
                created = CreatedKey(self.store.add_key(record), secret)
            except Conflict:  # the same random prefix twice: 62^8 makes this rare
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
                continue
            self.cache.clear()  # "no key exists yet" is no longer true
            return created
        raise AssertionError("unreachable")

    def _collection_ids(self, refs: Sequence[str] | None) -> tuple[str, ...] | None:
        if refs is None:
            return None
        if not refs:
            raise InvalidInput("name at least one collection, or none for a key that sees all")
        ids = []
        for ref in dict.fromkeys(refs):
            try:
                ids.append(self.collections.get(ref).id)
            except NotFound:
                raise InvalidInput(f"collection {ref!r} does not exist") from None
        return tuple(ids)

    def list_all(self) -> list[ApiKey]:
        return self.store.list_keys()

    def revoke(self, key_id: str) -> ApiKey:
        revoked = self.store.revoke_key(key_id)
        self.cache.clear()  # takes effect in this process at once
        return revoked

    def any_active(self) -> bool:
        """Whether any key can be used: until one can, the server serves loopback only."""
        cached = self.cache.any_active()
        if cached is not None:
            return cached
        active = self.store.has_active_keys()
        self.cache.remember_any_active(active)
        return active

    def prepare(self, settings: Settings) -> AuthMode:
        """Run at start-up: store ``RAGD_ADMIN_KEY`` if set, then say which mode holds."""
        if settings.admin_key is not None:
            self.bootstrap(settings.admin_key.get_secret_value())
        if settings.auth_disabled:
            return "disabled"
        return "keys" if self.any_active() else "loopback-only"

    def bootstrap(self, key: str) -> ApiKey:
        """Store ``RAGD_ADMIN_KEY`` as an admin key that sees every collection."""
        prefix = key_prefix(key)
        if prefix is None:
            raise InvalidInput("RAGD_ADMIN_KEY: not an rgd_<prefix>_<secret> key")
        stored = self.store.upsert_key(
            NewApiKey(BOOTSTRAP_NAME, prefix, hash_key(key), "admin", None)
        )
        self.cache.clear()
        if stored.revoked_at is not None:
            log.warning("RAGD_ADMIN_KEY is revoked; set a new one to use it", key_prefix=prefix)
        return stored

    def cached(self, presented: str) -> Principal | None:
        """The principal behind ``presented`` if it checked out within the TTL, without
        touching the database (so an event loop may call it); None means: ask
        :meth:`authenticate`."""
        return self.cache.principal(hash_key(presented))

    def authenticate(self, presented: str) -> Principal:
        """The principal behind a presented key, or :class:`Unauthorized`."""
        presented_hash = hash_key(presented)
        cached = self.cache.principal(presented_hash)
        if cached is not None:
            return cached
        prefix = key_prefix(presented)
        stored = self.store.find_key(prefix) if prefix else None
        expected = stored.key_hash if stored is not None else _NO_SUCH_KEY_HASH
        matches = hmac.compare_digest(presented_hash, expected)
        if stored is None or not matches:
            raise Unauthorized("the API key is not valid")
        if stored.revoked_at is not None:
            raise Unauthorized("the API key has been revoked")
        self._note_use(stored)
        allowed = None if stored.collection_ids is None else frozenset(stored.collection_ids)
        principal = Principal(
            key_id=stored.id, prefix=stored.prefix, scope=stored.scope, collection_ids=allowed
        )
        self.cache.remember(presented_hash, principal)
        return principal

    def _note_use(self, key: ApiKey) -> None:
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
            self.store.touch_key(key.id, now, unless_since=now - LAST_USED_EVERY)
