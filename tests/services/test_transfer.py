"""Export and import through the service, on real SQLite files and a real PostgreSQL:
round trips between the two, encryption, and every way an archive can be wrong (each
must be refused before a row is written)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ragd.audit import AuditFilters
from ragd.container import Container
from ragd.domain import NewChatMessage
from ragd.embedding import LocalEmbedder
from ragd.embedding.openai_compat import OpenAICompatEmbedder
from ragd.errors import Conflict, InvalidInput
from ragd.services.transfer.crypto import KdfParams, WrongPassphrase
from ragd.services.transfer.manifest import UntrustedArchive, signature_bytes
from ragd.signing import Signer, load_or_create_signer
from tests.databases import PostgresForTests
from tests.embedding.fake_embeddings import FakeEmbeddings
from tests.services.transfer_kit import (
    fingerprint,
    flip_byte,
    member_offset,
    members,
    open_container,
    repack,
    seed,
)

FAST = KdfParams(log2_n=12, r=8, p=1)  # the format under test, at a test's cost


def table_counts(container: Container) -> dict[str, int]:
    engine = container.store.engine  # type: ignore[attr-defined]
    names = ("collections", "documents", "document_sources", "chunks", "chat_sessions")
    with engine.connect() as conn:
        return {n: int(conn.execute(text(f"SELECT count(*) FROM {n}")).scalar_one()) for n in names}


@pytest.fixture
def source(tmp_path: Path, database_url: str, embedder: LocalEmbedder) -> Iterator[Container]:
    with open_container(tmp_path / "source", database_url, embedder) as container:
        container.transfer.kdf = FAST
        yield container


@pytest.fixture
def exported(source: Container, tmp_path: Path) -> tuple[Path, str]:
    """A seeded collection exported (plain) from ``source``; the archive and the id."""
    cid = seed(source)
    archive = tmp_path / "history.ragd"
    source.transfer.export(cid, archive, with_chats=True)
    return archive, cid


def new_url(kind: str, path: Path, postgres: PostgresForTests) -> str:
    """A fresh database of ``kind``: the SQLite file ``path``, or a new PostgreSQL one."""
    return f"sqlite:///{path}" if kind == "sqlite" else postgres.new_database()


def add_chat(container: Container, collection_id: str) -> None:
    """A session over the collection whose answer cites a real chunk."""
    hit = container.search.search("Tower Bridge", collections=[collection_id], top_k=1)[0]
    session = container.store.add_chat_session(
        key_id=None, title="bridges", system_prompt=None, collection_ids=[collection_id]
    )
    citation = {"n": 1, "document_id": hit.document_id, "chunk_id": hit.chunk_id, "title": "t"}
    container.store.add_chat_messages(
        session.id,
        [
            NewChatMessage(role="user", content="When?", citations=[]),
            NewChatMessage(role="assistant", content="In 1894 [1].", citations=[citation]),
        ],
    )


@pytest.mark.parametrize("start", ["sqlite", "postgresql"])
def test_round_trip_between_sqlite_and_postgresql_keeps_search_results(
    start: str, tmp_path: Path, postgres: PostgresForTests, embedder: LocalEmbedder
) -> None:
    """A → B (the other database) → C (A's kind): C answers every query exactly as A did,
    in every mode; B, on the other engine, ranks identically by vector."""
    other = "postgresql" if start == "sqlite" else "sqlite"
    kinds = (start, other, start)
    urls = [new_url(kind, tmp_path / f"{i}.db", postgres) for i, kind in enumerate(kinds)]
    first, second = tmp_path / "first.ragd", tmp_path / "second.ragd"
    with open_container(tmp_path / "a", urls[0], embedder) as a:
        cid = seed(a)
        add_chat(a, cid)
        before = fingerprint(a, cid)
        done = a.transfer.export(cid, first, with_chats=True)
        assert done.counts["documents"] == 4 and done.counts["chat_messages"] == 2
        a_key = a.signer()
    with open_container(tmp_path / "b", urls[1], embedder) as b:
        imported = b.transfer.import_archive(first, trusted=a_key)
        assert imported.embeddings_reused and imported.outcome.document_ids_kept
        b_id = imported.outcome.collection.id
        vector_part = slice(2 * 5, 3 * 5)
        assert fingerprint(b, b_id)[vector_part] == before[vector_part]
        b.transfer.export(b_id, second, with_chats=True)
        b_key = b.signer()
    with open_container(tmp_path / "c", urls[2], embedder) as c:
        back = c.transfer.import_archive(second, trusted=b_key)
        collection = back.outcome.collection
        assert (collection.name, collection.description) == ("history", "places and machines")
        assert (collection.document_count, back.outcome.chat_sessions) == (4, 1)
        assert fingerprint(c, collection.id) == before
        session = c.store.list_chat_sessions(None, limit=10)[0]
        assert session.collection_ids == (collection.id,)
        answer = c.store.list_chat_messages(session.id, limit=10).items[1]
        cited = answer.citations[0]
        chunk = c.store.get_chunks([cited["chunk_id"]])[cited["chunk_id"]]
        assert "1894" in chunk.text and chunk.document_id == cited["document_id"]
    for url in urls:
        if url.startswith("postgresql"):
            postgres.drop_database(url)


def test_encrypted_round_trip_and_wrong_passphrase(
    source: Container, tmp_path: Path, embedder: LocalEmbedder
) -> None:
    cid = seed(source)
    archive = tmp_path / "secret.ragd"
    summary = source.transfer.export(cid, archive, passphrase="correct horse")
    assert summary.encrypted
    assert archive.read_bytes().startswith(b"RAGD-ENC")
    assert b"Tower Bridge" not in archive.read_bytes()
    before = table_counts(source)
    with pytest.raises(WrongPassphrase):
        source.transfer.import_archive(archive, name="copy", passphrase="wrong horse")
    with pytest.raises(InvalidInput, match="encrypted"):
        source.transfer.import_archive(archive, name="copy")
    assert table_counts(source) == before
    done = source.transfer.import_archive(archive, name="copy", passphrase="correct horse")
    assert done.outcome.collection.document_count == 4
    assert not done.outcome.document_ids_kept  # the originals are still here
    assert fingerprint(source, done.outcome.collection.id) == fingerprint(source, cid)


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_flipped_byte_anywhere_is_refused_and_nothing_is_written(
    source: Container, tmp_path: Path, encrypted: bool
) -> None:
    cid = seed(source)
    archive = tmp_path / "flip.ragd"
    source.transfer.export(cid, archive, passphrase="pw" if encrypted else None)
    before = table_counts(source)
    size = archive.stat().st_size
    if encrypted:
        offsets = [100, size // 2, size - 5]
    else:
        offsets = [member_offset(archive, "chunks.parquet") + 200, size // 2]
    for offset in offsets:
        damaged = tmp_path / f"damaged-{offset}.ragd"
        damaged.write_bytes(archive.read_bytes())
        flip_byte(damaged, offset)
        with pytest.raises(InvalidInput):
            source.transfer.import_archive(damaged, name="copy", passphrase="pw")
        assert table_counts(source) == before


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_truncated_archive_is_refused(source: Container, tmp_path: Path, encrypted: bool) -> None:
    cid = seed(source)
    archive = tmp_path / "cut.ragd"
    source.transfer.export(cid, archive, passphrase="pw" if encrypted else None)
    data = archive.read_bytes()
    before = table_counts(source)
    if encrypted:  # any cut loses the last frame's tag
        cuts = [len(data) // 3, len(data) - 1, 40]
    else:  # a cut inside the content (the tar's zero padding after it carries nothing)
        last = members(archive)[-1][0]
        cuts = [len(data) // 3, last.offset_data + last.size - 1, 40]
    for keep in cuts:
        cut = tmp_path / f"cut-{keep}.ragd"
        cut.write_bytes(data[:keep])
        with pytest.raises(InvalidInput):
            source.transfer.import_archive(cut, name="copy", passphrase="pw")
    assert table_counts(source) == before


def test_an_altered_manifest_fails_its_signature(
    source: Container, exported: tuple[Path, str], tmp_path: Path
) -> None:
    archive, _ = exported
    manifest = dict(members(archive))
    raw = next(data for info, data in members(archive) if info.name == "manifest.json")
    altered = json.loads(raw)
    altered["collection"]["name"] = "renamed"
    forged = tmp_path / "forged.ragd"
    repack(archive, forged, {"manifest.json": json.dumps(altered).encode()})
    before = table_counts(source)
    with pytest.raises(InvalidInput, match="does not match its signature"):
        source.transfer.import_archive(forged, name="copy")
    assert table_counts(source) == before
    assert manifest  # the original archive was read whole


def test_an_altered_member_fails_its_hash(
    source: Container, exported: tuple[Path, str], tmp_path: Path
) -> None:
    archive, _ = exported
    data = dict((info.name, body) for info, body in members(archive))
    source_name = next(n for n in data if n.startswith("sources/") and b"1894" in data[n])
    forged = tmp_path / "forged.ragd"
    repack(archive, forged, {source_name: data[source_name].replace(b"1894", b"1994")})
    before = table_counts(source)
    with pytest.raises(InvalidInput, match="SHA-256"):
        source.transfer.import_archive(forged, name="copy")
    assert table_counts(source) == before


def test_an_archive_signed_by_another_key(
    source: Container, exported: tuple[Path, str], tmp_path: Path
) -> None:
    """Re-signed by a stranger: refused unless that key is named as trusted, or unsigned
    archives are allowed; an archive without a signature is refused the same way."""
    archive, _ = exported
    stranger = load_or_create_signer(None, tmp_path / "stranger")
    raw = next(data for info, data in members(archive) if info.name == "manifest.json")
    resigned = tmp_path / "resigned.ragd"
    repack(archive, resigned, {"manifest.sig": signature_bytes(raw, stranger)})
    with pytest.raises(UntrustedArchive, match="--public-key"):
        source.transfer.import_archive(resigned, name="copy")
    done = source.transfer.import_archive(resigned, name="copy", trusted=stranger)
    assert done.key_id == stranger.key_id
    done = source.transfer.import_archive(resigned, name="copy2", allow_unsigned=True)
    assert done.key_id is None and done.outcome.documents == 4


def test_a_newer_format_version_is_refused_with_a_clear_message(
    source: Container, exported: tuple[Path, str], tmp_path: Path
) -> None:
    archive, _ = exported
    signer: Signer = source.signer()
    raw = next(data for info, data in members(archive) if info.name == "manifest.json")
    future = json.loads(raw)
    future["format_version"] = 2
    body = json.dumps(future).encode()
    newer = tmp_path / "newer.ragd"
    repack(archive, newer, {"manifest.json": body, "manifest.sig": signature_bytes(body, signer)})
    before = table_counts(source)
    with pytest.raises(InvalidInput, match="format version 2 is newer"):
        source.transfer.import_archive(newer, name="copy")
    assert table_counts(source) == before


def test_a_name_clash_is_a_conflict_and_a_new_name_imports(
    source: Container, exported: tuple[Path, str]
) -> None:
    archive, cid = exported
    before = table_counts(source)
    with pytest.raises(Conflict, match="--collection"):
        source.transfer.import_archive(archive)
    assert table_counts(source) == before
    done = source.transfer.import_archive(archive, name="history-copy")
    copy = done.outcome.collection
    assert copy.name == "history-copy"
    assert fingerprint(source, copy.id) == fingerprint(source, cid)
    # The audit chain has both, and still verifies with them.
    imported = source.store.list_audit_events(
        AuditFilters(action="collection.import"), limit=5, cursor=None
    ).items
    assert [(e.target, e.detail["chunks"]) for e in imported] == [((copy.id,), 5)]
    export_events = source.store.list_audit_events(
        AuditFilters(action="collection.export", target=cid), limit=5, cursor=None
    ).items
    assert export_events[0].detail["documents"] == 4
    assert source.audit.verify().ok


def test_a_damaged_vector_in_the_database_fails_the_export_and_leaves_no_file(
    source: Container, tmp_path: Path
) -> None:
    """Tampering with the real database: a stored vector of the wrong length."""
    cid = seed(source)
    engine = source.store.engine  # type: ignore[attr-defined]
    short = "[0.5,0.5]" if source.store.dialect == "postgresql" else b"\x00" * 8
    with engine.begin() as conn:
        first = conn.execute(text("SELECT min(id) FROM chunks")).scalar_one()
        conn.execute(
            text("UPDATE chunks SET embedding = :v WHERE id = :id"), {"v": short, "id": first}
        )
    archive = tmp_path / "broken.ragd"
    with pytest.raises(InvalidInput, match="floats"):
        source.transfer.export(cid, archive)
    assert not archive.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_another_model_requeues_the_documents_for_embedding(
    tmp_path: Path, database_url: str, embedder: LocalEmbedder
) -> None:
    """The target embeds with another model: the chunks' vectors are useless there, so
    the documents are queued again from their sources and become searchable."""
    with open_container(tmp_path / "a", database_url, embedder) as a:
        cid = seed(a)
        archive = tmp_path / "a.ragd"
        a.transfer.export(cid, archive)
        key = a.signer()
    raw = next(data for info, data in members(archive) if info.name == "manifest.json")
    assert json.loads(raw)["embedding"] == {"model": "all-MiniLM-L6-v2", "dimension": 384}
    with FakeEmbeddings() as server:
        other = OpenAICompatEmbedder(base_url=server.base_url, model="fake-embed", api_key=None)
        target_url = f"sqlite:///{tmp_path / 'b.db'}"
        with open_container(tmp_path / "b", target_url, other) as b:
            done = b.transfer.import_archive(archive, trusted=key)
            assert not done.embeddings_reused
            assert (done.outcome.requeued, done.outcome.chunks) == (4, 0)
            collection = done.outcome.collection
            assert collection.embedding_model == "fake-embed"
            b.new_worker().run_until_idle()
            hits = b.search.search("Tower Bridge", collections=[collection.id], mode="vector")
            assert hits and hits[0].title == "bridges"
