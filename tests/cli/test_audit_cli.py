"""``ragd audit verify`` against a real database that was tampered with directly.

Each test builds a chain of 10 events (checkpoints at seq 4 and 8), changes the database
with plain SQL the way someone with write access would (naively, or recomputing hashes
where that is possible without the signing key), and runs the real command. Each test
runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from ragd.audit import AuditEvent, canonical_json, hash_of
from ragd.cli.app import app
from ragd.config import load_settings
from ragd.signing import load_or_create_signer
from ragd.store import Store, open_store

runner = CliRunner()
EVENTS = 10


@dataclasses.dataclass
class Chain:
    store: Store
    env: dict[str, str]
    data_dir: Path

    def sql(self, statement: str, **params: Any) -> None:
        with self.store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text(statement), params)

    def events(self) -> list[AuditEvent]:
        return self.store.read_audit(lambda reader: list(reader.events()))

    def event(self, seq: int) -> AuditEvent:
        [found] = [e for e in self.events() if e.seq == seq]
        return found

    def write(self, event: AuditEvent, *, at_seq: int | None = None) -> None:
        """Store ``event`` as the row of ``at_seq`` (its own seq by default)."""
        seq = event.seq if at_seq is None else at_seq
        self.sql(
            "UPDATE audit_events SET actor = :actor, prev_hash = :prev, hash = :hash "
            "WHERE seq = :seq",
            actor=event.actor,
            prev=event.prev_hash,
            hash=event.hash,
            seq=seq,
        )

    def insert(self, event: AuditEvent) -> None:
        self.sql(
            "INSERT INTO audit_events (seq, at, actor, action, target, request_id, client, "
            "detail, prev_hash, hash) VALUES (:seq, :at, :actor, :action, :target, NULL, NULL, "
            ":detail, :prev, :hash)",
            seq=event.seq,
            target=canonical_json(list(event.target)).decode(),
            detail=canonical_json(event.detail).decode(),
            at=event.at,
            actor=event.actor,
            action=event.action,
            prev=event.prev_hash,
            hash=event.hash,
        )

    def renumber(self, seqs: range, by: int) -> None:
        """Move events ``seqs`` by ``by``, one row at a time so the key never collides."""
        for seq in sorted(seqs, reverse=by > 0):
            self.sql("UPDATE audit_events SET seq = :new WHERE seq = :old", new=seq + by, old=seq)

    def rehash_from(self, seq: int) -> None:
        """Recompute hashes and links from ``seq`` on, and the head: all a writer without
        the signing key can do to hide a change."""
        prev = self.event(seq - 1).hash
        for event in self.events():
            if event.seq < seq:
                continue
            fixed = dataclasses.replace(event, prev_hash=prev, hash="")
            fixed = dataclasses.replace(fixed, hash=hash_of(fixed))
            self.write(fixed)
            prev = fixed.hash
        self.sql("UPDATE audit_head SET hash = :hash", hash=prev)


@pytest.fixture
def chain(database_url: str, tmp_path: Path) -> Iterator[Chain]:
    data_dir = tmp_path / "data"
    settings = load_settings(database_url=database_url, data_dir=data_dir, audit_checkpoint_every=4)
    store = open_store(settings)
    store.migrate()
    for n in range(EVENTS):
        store.create_collection(name=f"c{n}", description="", embedding_model="m", embedding_dim=8)
    env = {"RAGD_DATABASE_URL": database_url, "RAGD_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    yield Chain(store, env, data_dir)
    store.close()


def verify(chain: Chain, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", *args], env=chain.env)
    return result.exit_code, result.output


def assert_broken(chain: Chain, seq: int, kind: str, *args: str) -> str:
    code, output = verify(chain, *args)
    assert code == 1, output
    assert f"first bad seq {seq}: {kind}:" in output, output
    verdict = json.loads(verify(chain, "--json", *args)[1])
    assert (verdict["ok"], verdict["first_bad_seq"], verdict["kind"]) == (False, seq, kind)
    return output


def test_an_untouched_chain_verifies(chain: Chain) -> None:
    code, output = verify(chain)
    assert code == 0, output
    assert "10 events up to seq 10" in output and "2 checkpoint" in output
    verdict = json.loads(verify(chain, "--json")[1])
    assert verdict["ok"] and verdict["first_bad_seq"] is None and verdict["checked"] == EVENTS


def test_a_modified_event(chain: Chain) -> None:
    chain.sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5")
    assert "seq 5 does not match its hash" in assert_broken(chain, 5, "modified")


def test_a_modified_event_whose_hash_was_recomputed(chain: Chain) -> None:
    changed = dataclasses.replace(chain.event(5), actor="mallory")
    chain.write(dataclasses.replace(changed, hash=hash_of(changed)))
    assert_broken(chain, 5, "modified")


def test_a_rewritten_chain_is_caught_by_its_signed_checkpoint(chain: Chain) -> None:
    chain.sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 6")
    chain.rehash_from(6)
    output = assert_broken(chain, 5, "modified")
    assert "checkpoint at seq 8" in output


@pytest.mark.parametrize("renumbered", [False, True])
def test_a_deleted_event(chain: Chain, renumbered: bool) -> None:
    chain.sql("DELETE FROM audit_events WHERE seq = 5")
    if renumbered:
        chain.renumber(range(6, EVENTS + 1), -1)
    assert_broken(chain, 5, "deleted")


@pytest.mark.parametrize("careful", [False, True])
def test_an_inserted_event(chain: Chain, careful: bool) -> None:
    chain.renumber(range(5, EVENTS + 1), +1)
    forged = dataclasses.replace(chain.event(4), seq=5, actor="mallory")
    forged = dataclasses.replace(forged, prev_hash=chain.event(4).hash, hash="0" * 64)
    if careful:  # a row that hashes and links correctly
        forged = dataclasses.replace(forged, hash=hash_of(forged))
    chain.insert(forged)
    assert_broken(chain, 5, "inserted")


def test_an_event_appended_past_the_head(chain: Chain) -> None:
    last = chain.event(EVENTS)
    forged = dataclasses.replace(last, seq=EVENTS + 1, prev_hash=last.hash, hash="")
    chain.insert(dataclasses.replace(forged, hash=hash_of(forged)))
    assert_broken(chain, EVENTS + 1, "inserted")


def test_reordered_events(chain: Chain) -> None:
    chain.sql("UPDATE audit_events SET seq = -5 WHERE seq = 5")
    chain.sql("UPDATE audit_events SET seq = 5 WHERE seq = 6")
    chain.sql("UPDATE audit_events SET seq = 6 WHERE seq = -5")
    assert "holds the event of seq 6" in assert_broken(chain, 5, "reordered")


def test_truncated_before_the_last_checkpoint(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_events WHERE seq >= 8")
    assert "checkpoint vouches for seq 8" in assert_broken(chain, 8, "truncated")


def test_truncated_after_the_last_checkpoint(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_events WHERE seq = :seq", seq=EVENTS)
    assert "its head is seq 10" in assert_broken(chain, EVENTS, "truncated")


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_checkpoints SET signature = "
        "(SELECT signature FROM audit_checkpoints WHERE seq = 8) WHERE seq = 4",
        "UPDATE audit_checkpoints SET hash = "
        "(SELECT hash FROM audit_events WHERE seq = 3) WHERE seq = 4",
    ],
    ids=["signature", "signed-hash"],
)
def test_a_bad_checkpoint_signature(chain: Chain, tamper: str) -> None:
    chain.sql(tamper)
    assert_broken(chain, 4, "bad signature")


def test_verify_with_a_public_key_file(chain: Chain, tmp_path: Path) -> None:
    own = tmp_path / "ragd.pub"
    published = runner.invoke(app, ["audit", "pubkey"], env=chain.env)
    assert published.exit_code == 0 and "BEGIN PUBLIC KEY" in published.output
    own.write_text(published.output)
    assert verify(chain, "--public-key", str(own))[0] == 0

    other = tmp_path / "other.pub"
    other.write_text(load_or_create_signer(None, tmp_path / "elsewhere").pem())
    stranger = load_or_create_signer(None, tmp_path / "elsewhere").key_id
    output = assert_broken(chain, 4, "unknown key", "--public-key", str(other))
    assert f"signed by key '{own_key_id(chain)}'" in output and stranger in output

    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    code, output = verify(chain, "--public-key", str(junk))
    assert code == 2 and "junk.pub" in output


def test_prune_keeps_it_verifiable_and_a_fake_prune_is_caught(chain: Chain) -> None:
    result = runner.invoke(app, ["audit", "prune", "--before", "2999-01-01"], env=chain.env)
    assert result.exit_code == 0 and "seq 8 anchors" in result.output, result.output
    assert verify(chain)[0] == 0
    assert [e.seq for e in chain.events()] == [9, 10, 11]
    bad = runner.invoke(app, ["audit", "prune", "--before", "yesterday"], env=chain.env)
    assert bad.exit_code == 2 and "ISO 8601" in bad.output


def test_deleting_the_start_without_a_prune_is_caught(chain: Chain) -> None:
    chain.sql("DELETE FROM audit_events WHERE seq <= 8")
    chain.sql("DELETE FROM audit_checkpoints WHERE seq < 8")
    assert "no audit.prune event" in assert_broken(chain, 1, "deleted")


def test_list_prints_the_newest_events(chain: Chain) -> None:
    result = runner.invoke(app, ["audit", "list", "--limit", "2"], env=chain.env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["seq"] for line in lines] == [10, 9]
    assert lines[0]["action"] == "collection.create" and lines[0]["actor"] == "local"


def own_key_id(chain: Chain) -> str:
    return load_or_create_signer(None, chain.data_dir).key_id


def public_key_file(path: Path, private: Path) -> Path:
    """``private``'s public half as a PEM file at ``path``, as an auditor keeps it."""
    path.write_text(load_or_create_signer(private, path.parent).pem())
    return path


def rotate(chain: Chain, new_key: Path, events: int) -> None:
    """What a rotation does: the deployment restarts with another key and goes on."""
    settings = load_settings(
        database_url=chain.env["RAGD_DATABASE_URL"],
        data_dir=chain.data_dir,
        audit_signing_key_file=new_key,
        audit_checkpoint_every=4,
    )
    store = open_store(settings)
    try:
        for n in range(events):
            store.create_collection(
                name=f"after{n}", description="", embedding_model="m", embedding_dim=8
            )
    finally:
        store.close()


def test_a_rotated_key_verifies_with_both_public_keys(chain: Chain, tmp_path: Path) -> None:
    old = public_key_file(tmp_path / "old.pub", chain.data_dir / "audit-signing-key.pem")
    new_private = tmp_path / "keys" / "new.pem"
    new_private.parent.mkdir()
    new_id = load_or_create_signer(None, new_private.parent).key_id
    (new_private.parent / "audit-signing-key.pem").rename(new_private)
    new = public_key_file(tmp_path / "new.pub", new_private)
    rotate(chain, new_private, 6)  # seq 11-16: checkpoints at 12 and 16 by the new key
    old_id = own_key_id(chain)

    code, output = verify(chain, "--public-key", str(old), "--public-key", str(new))
    assert code == 0, output
    assert f"4 checkpoint signatures (keys {old_id} (2), {new_id} (2))" in output
    verdict = json.loads(
        verify(chain, "--json", "--public-key", str(old), "--public-key", str(new))[1]
    )
    assert verdict["key_ids"] == [old_id, new_id]
    assert verdict["signed_by"] == {old_id: 2, new_id: 2}

    # The new key alone: the old checkpoints are named as signed by a key not given.
    output = assert_broken(chain, 4, "unknown key", "--public-key", str(new))
    assert f"signed by key '{old_id}'" in output and "rotation" in output
    # The old key alone: the first checkpoint of the new key is the problem.
    assert f"'{new_id}'" in assert_broken(chain, 12, "unknown key", "--public-key", str(old))

    # The deployment's own view: its new signing key, and the old one as a retired key.
    env = {
        **chain.env,
        "RAGD_AUDIT_SIGNING_KEY_FILE": str(new_private),
        "RAGD_AUDIT_PUBLIC_KEY_FILES": f"{old}",
    }
    result = runner.invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    without = runner.invoke(
        app, ["audit", "verify"], env={**env, "RAGD_AUDIT_PUBLIC_KEY_FILES": ""}
    )
    assert without.exit_code == 1 and "unknown key" in without.output

    # A checkpoint relabelled with the other key's id does not verify under that key.
    chain.sql("UPDATE audit_checkpoints SET key_id = :new WHERE seq = 8", new=new_id)
    output = assert_broken(
        chain, 8, "bad signature", "--public-key", str(old), "--public-key", str(new)
    )
    assert f"under key {new_id}" in output


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that exists but was never migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'never.db'}"
        return
    server = request.getfixturevalue("postgres")
    url = server.new_database(migrated=False)
    yield url
    server.drop_database(url)


def test_a_database_never_migrated_is_named_as_such(bare_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"RAGD_DATABASE_URL": bare_url, "RAGD_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    for command, code in ((["audit", "verify"], 2), (["audit", "verify", "--json"], 2)):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == code, result.output
        assert "no audit log: it was never migrated" in result.output
        assert "Traceback" not in result.output
    listed = runner.invoke(app, ["audit", "list"], env=env)
    assert listed.exit_code == 1 and "never migrated" in listed.output
    assert not (data_dir / "audit-signing-key.pem").exists()  # no key made for nothing
