"""The signing key: created once per data directory, private to its owner, verifiable."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ragd.errors import ConfigError
from ragd.signing import (
    DEFAULT_KEY_FILENAME,
    load_or_create_signer,
    load_verifier,
    verifier_from_pem,
)


def test_key_is_created_once_with_owner_only_mode(tmp_path: Path) -> None:
    first = load_or_create_signer(None, tmp_path)
    path = tmp_path / DEFAULT_KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signer(None, tmp_path)
    assert again.key_id == first.key_id


def test_concurrent_first_starts_end_with_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: load_or_create_signer(None, tmp_path).key_id, range(16)))
    assert len(ids) == 1


def test_signature_verifies_with_public_key_only(tmp_path: Path) -> None:
    signer = load_or_create_signer(None, tmp_path)
    public = tmp_path / "public.pem"
    public.write_text(signer.pem())
    verifier = load_verifier(public)
    signature = signer.sign(b"seq=7 hash=abc")
    assert verifier.verify(signature, b"seq=7 hash=abc")
    assert not verifier.verify(signature, b"seq=7 hash=abd")
    assert verifier_from_pem(signer.pem()).key_id == signer.key_id


def test_configured_key_file_wins_over_data_dir(tmp_path: Path) -> None:
    made = load_or_create_signer(None, tmp_path / "a")
    configured = load_or_create_signer(tmp_path / "a" / DEFAULT_KEY_FILENAME, tmp_path / "b")
    assert configured.key_id == made.key_id
    assert not (tmp_path / "b" / DEFAULT_KEY_FILENAME).exists()


@pytest.mark.parametrize("content", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nxx\n"])
def test_a_file_that_is_not_a_key_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"key\.pem"):
        load_or_create_signer(path, tmp_path)


def test_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_or_create_signer(tmp_path / "absent.pem", tmp_path)


def test_a_data_dir_where_no_key_can_be_made_is_a_config_error(tmp_path: Path) -> None:
    """A read-only container without RAGD_AUDIT_SIGNING_KEY_FILE: the message says what
    to set, instead of an OSError in the middle of a write."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="RAGD_AUDIT_SIGNING_KEY_FILE"):
        load_or_create_signer(None, blocker / "data")
