"""Who is calling, and what they may touch: API key format, scopes and the principal.

Pure values with no storage or HTTP, so the settings (``RAGD_ADMIN_KEY``), the key
service, the services that scope by collection and the API dependency share one
definition of a key and of a scope.

A key reads ``rgd_<prefix>_<secret>``: the prefix is public (it names the key in lists
and logs, and finds its row), the secret is 32 random bytes. Only the sha-256 of the
whole key is stored; a high-entropy secret needs no slow hash.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import string
from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
_RANK: dict[Scope, int] = {"read": 0, "write": 1, "admin": 2}

KEY_PREFIX_LENGTH = 8
_SECRET_BYTES = 32
# The prefix has no '_' or '-', so the first two underscores always split the key.
_KEY = re.compile(r"^rgd_(?P<prefix>[A-Za-z0-9]{4,16})_(?P<secret>[A-Za-z0-9_-]{32,256})$")
_PREFIX_ALPHABET = string.ascii_letters + string.digits
KEY_FORMAT_HELP = (
    "must look like rgd_<prefix>_<secret>: a prefix of 4-16 letters or digits and a secret "
    "of at least 32 characters from A-Z a-z 0-9 _ -"
)


def generate_key() -> tuple[str, str]:
    """A new ``(prefix, full key)``; the full key is shown once and never stored."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(KEY_PREFIX_LENGTH))
    return prefix, f"rgd_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def key_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, or None when ``key`` cannot be one of ours."""
    match = _KEY.match(key)
    return match.group("prefix") if match else None


def hash_key(key: str) -> str:
    """What the database keeps: the sha-256 hex digest of the whole key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_loopback(host: str | None) -> bool:
    """True only for real loopback addresses (127.0.0.0/8, ::1, and ::ffff:127.x).

    Host names such as ``localhost`` or a test client's ``testclient`` are not trusted:
    the address the connection came from is.
    """
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True)
class Principal:
    """The caller of one request.

    ``collection_ids`` is None for a key that sees every collection, otherwise the only
    collections it may see; ``key_id`` is None for the anonymous principal that serves
    loopback clients before any key exists, or everyone when auth is disabled.
    """

    key_id: str | None
    prefix: str | None
    scope: Scope
    collection_ids: frozenset[str] | None = None

    def allows(self, needed: Scope) -> bool:
        return _RANK[self.scope] >= _RANK[needed]

    @property
    def limited(self) -> bool:
        return self.collection_ids is not None


ANONYMOUS = Principal(key_id=None, prefix=None, scope="admin")

# The collections a caller may see: None for all of them.
Allowed = frozenset[str] | None
