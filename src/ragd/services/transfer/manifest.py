"""The archive's table of contents and its signature.

``manifest.json`` names every other member with its size and SHA-256, and says what the
archive holds (format version, ragd version, the collection, its embedding model and
dimension, counts). ``manifest.sig`` is an Ed25519 signature over the manifest's exact
bytes by the deployment's audit key (:mod:`ragd.signing`), with that key's public half
so that a reader can name the key it was made with. Signing the manifest signs
everything: each member must match its hash before anything is imported.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from ragd.errors import ConfigError, InvalidInput
from ragd.signing import Signer, Verifier, verifier_from_pem

FORMAT = "ragd-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
COLLECTION = "collection.json"
DOCUMENTS = "documents.parquet"
CHUNKS = "chunks.parquet"
CHAT_SESSIONS = "chat_sessions.parquet"
CHAT_MESSAGES = "chat_messages.parquet"
SOURCES_DIR = "sources/"
# Documents ids are ``doc_`` and hex today; any id ragd ever made fits this.
DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_COLLECTION_BYTES = 1024 * 1024


class UntrustedArchive(InvalidInput):
    """The manifest is signed by a key the importer does not trust, or not signed."""


def member_allowed(name: str) -> bool:
    """Whether ``name`` may appear in an archive (never a path that climbs or is absolute)."""
    if name in (COLLECTION, DOCUMENTS, CHUNKS, CHAT_SESSIONS, CHAT_MESSAGES):
        return True
    return name.startswith(SOURCES_DIR) and bool(DOCUMENT_ID.match(name.removeprefix(SOURCES_DIR)))


@dataclass(frozen=True)
class Member:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A parsed, checked manifest; ``raw`` is the whole document as written."""

    raw: dict[str, Any]
    members: dict[str, Member]

    @property
    def embedding_model(self) -> str:
        return str(self.raw["embedding"]["model"])

    @property
    def embedding_dim(self) -> int:
        return int(self.raw["embedding"]["dimension"])

    @property
    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.raw["counts"].items()}

    @property
    def with_chats(self) -> bool:
        return bool(self.raw.get("with_chats"))


def manifest_bytes(raw: dict[str, Any]) -> bytes:
    return json.dumps(raw, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")


def signature_bytes(manifest: bytes, signer: Signer) -> bytes:
    document = {
        "algorithm": "Ed25519",
        "key_id": signer.key_id,
        "public_key": signer.pem(),
        "signature": signer.sign_b64(manifest),
    }
    return json.dumps(document, indent=1, sort_keys=True).encode("utf-8")


def parse_manifest(data: bytes) -> Manifest:
    """The manifest, checked for shape and version before anything else is read."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("the archive's manifest is not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InvalidInput("not a ragd export archive (its manifest names no ragd format)")
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInput("the archive's manifest has no valid format_version")
    if version > FORMAT_VERSION:
        raise InvalidInput(
            f"the archive's format version {version} is newer than this ragd reads "
            f"({FORMAT_VERSION}): upgrade ragd to import it"
        )
    try:
        members = {name: _member(name, value) for name, value in raw["members"].items()}
        embedding, counts = raw["embedding"], raw["counts"]
        if not isinstance(embedding["model"], str) or not _count(embedding["dimension"]):
            raise ValueError("embedding")
        if not all(isinstance(k, str) and _count(v) for k, v in counts.items()):
            raise ValueError("counts")
    except (KeyError, TypeError, AttributeError, ValueError):
        raise InvalidInput("the archive's manifest is malformed") from None
    for required in (COLLECTION, DOCUMENTS, CHUNKS):
        if required not in members:
            raise InvalidInput(f"the archive's manifest does not list {required}")
    return Manifest(raw=raw, members=members)


def check_signature(
    manifest: bytes, signature: bytes, trusted: Verifier, *, allow_unsigned: bool
) -> str | None:
    """The signing key's id when the manifest carries a valid signature by ``trusted``.

    A signature that does not match the manifest under the key it names is tampering and
    always refused. A valid one by another key, or none at all, is refused unless
    ``allow_unsigned`` (the member hashes are still checked; they then only catch
    damage, not a forger). Returns ``None`` for an archive let in unsigned."""
    try:
        document = json.loads(signature)
        named = verifier_from_pem(document["public_key"])
        raw_signature = base64.b64decode(document["signature"], validate=True)
    except (
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        AttributeError,
        binascii.Error,
    ):
        raise InvalidInput("the archive's signature file is malformed") from None
    except ConfigError:
        raise InvalidInput("the archive's signature names no usable public key") from None
    if not named.verify(raw_signature, manifest):
        raise InvalidInput(
            "the archive's manifest does not match its signature: it was altered after export"
        )
    if named.key_id == trusted.key_id:
        return named.key_id
    if allow_unsigned:
        return None
    raise UntrustedArchive(
        f"the archive is signed by key {named.key_id}, not by the trusted key "
        f"{trusted.key_id}: pass that deployment's public key (--public-key), or "
        "--allow-unsigned to import it on the strength of its hashes alone"
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _member(name: Any, value: Any) -> Member:
    if not isinstance(name, str) or not member_allowed(name):
        raise ValueError(name)
    sha, size = value["sha256"], value["size"]
    if not isinstance(sha, str) or not _SHA256.match(sha) or not _count(size):
        raise ValueError(name)
    return Member(sha256=sha, size=size)
