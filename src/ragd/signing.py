"""The Ed25519 key that signs what ragd vouches for: audit checkpoints and export manifests.

One key per deployment. It comes from ``RAGD_AUDIT_SIGNING_KEY_FILE`` when set (every
replica and worker of a production deployment must share it, or their signatures will not
verify against one public key), else it is generated into the data directory on first
use, readable by its owner only. Verification needs only the public key, which
``ragd audit pubkey`` prints, so an auditor never holds the private one.

Keys are stored as PEM (PKCS#8 private, SubjectPublicKeyInfo public): the format
``openssl pkey`` reads, so operators can inspect or generate them with standard tools.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ragd.errors import ConfigError

DEFAULT_KEY_FILENAME = "audit-signing-key.pem"
# A PEM Ed25519 key is ~120 bytes; anything far larger is not one.
_MAX_KEY_FILE_BYTES = 16 * 1024


@dataclass(frozen=True)
class Verifier:
    """A public key: checks signatures, names itself by a short fingerprint."""

    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256 over the raw public key: short enough to store
        beside every signature, long enough that two keys of one operator never collide."""
        return hashlib.sha256(self.raw()).hexdigest()[:16]

    def raw(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer(Verifier):
    """A private key and its public half."""

    private_key: Ed25519PrivateKey

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def sign_b64(self, message: bytes) -> str:
        return base64.b64encode(self.sign(message)).decode("ascii")


def signer_from_private_key(private_key: Ed25519PrivateKey) -> Signer:
    return Signer(public_key=private_key.public_key(), private_key=private_key)


def load_or_create_signer(key_file: Path | None, data_dir: Path) -> Signer:
    """The configured key, or the data directory's own, created on first use.

    The key is written whole to a private temporary file and then hard-linked into place,
    which fails if the name exists: two processes starting together on one data directory
    end with the same key (the loser reads the winner's), and nobody ever reads a key
    file that is still being written.
    """
    if key_file is not None:
        return load_signer(key_file)
    path = data_dir / DEFAULT_KEY_FILENAME
    if path.exists():
        return load_signer(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _publish_once(path, pem)
    except FileExistsError:
        return load_signer(path)
    except OSError as exc:  # a read-only container: say what to configure instead
        raise ConfigError(
            f"cannot create the audit signing key {path} ({exc.strerror}): set "
            "RAGD_AUDIT_SIGNING_KEY_FILE to the deployment's key"
        ) from exc
    return signer_from_private_key(key)


def _publish_once(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data`` (mode 0600) atomically; FileExistsError if it is
    already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, path)
    finally:
        os.unlink(temporary)


def load_signer(path: Path) -> Signer:
    """A private Ed25519 key from a PEM file, or a ConfigError that names the file."""
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: the signing key must be Ed25519")
    return signer_from_private_key(key)


def load_verifier(path: Path) -> Verifier:
    """A public key from a PEM file (a private key file is accepted too: its public half)."""
    data = _read_key_file(path)
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        return Verifier(public_key=load_signer(path).public_key)
    if not isinstance(public, Ed25519PublicKey):
        raise ConfigError(f"{path}: the public key must be Ed25519")
    return Verifier(public_key=public)


def verifier_from_pem(pem: str) -> Verifier:
    try:
        public = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ConfigError(f"not a PEM public key ({exc})") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise ConfigError("the public key must be Ed25519")
    return Verifier(public_key=public)


def _read_key_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > _MAX_KEY_FILE_BYTES:
            raise ConfigError(f"{path}: {size} bytes is not a key file")
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the key file ({exc.strerror})") from exc
