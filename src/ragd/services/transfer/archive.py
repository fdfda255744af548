"""The archive as a tar stream: staged and packed on export, unpacked and verified on
import.

Why a tar: it streams both ways (``tarfile``'s ``w|`` and ``r|`` modes never seek), any
system can list and unpack one, and its members are plain files a data tool opens.
The manifest goes first, so a reader checks the signature before it keeps a byte of
anything else; every member is then hashed as it streams past, into a staging
directory, and nothing is imported until the last one matched.

Export writes the members to a staging directory first: a member's size goes in its tar
header and its hash in the manifest, and neither is known before it is written.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from ragd.domain import ChatMessage, ChatSession, ChunkRecord, Collection, Document
from ragd.errors import InvalidInput
from ragd.services.transfer import tables
from ragd.services.transfer.manifest import (
    CHAT_MESSAGES,
    CHAT_SESSIONS,
    CHUNKS,
    COLLECTION,
    DOCUMENT_ID,
    DOCUMENTS,
    MANIFEST,
    MAX_COLLECTION_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_SIGNATURE_BYTES,
    SIGNATURE,
    SOURCES_DIR,
    Manifest,
    UntrustedArchive,
    check_signature,
    parse_manifest,
)
from ragd.signing import Verifier

_COPY = 1024 * 1024
# Members in the order they are packed after the manifest and its signature.
_TABLES = (COLLECTION, DOCUMENTS, CHUNKS, CHAT_SESSIONS, CHAT_MESSAGES)


class StagingSink:
    """An :class:`~ragd.store.base.ExportSink` that writes the archive's members into
    ``root``: Parquet tables a batch at a time, one file per kept source."""

    def __init__(
        self, root: Path, *, with_chats: bool, progress: Callable[[int], None] | None = None
    ) -> None:
        self.root = root
        self.with_chats = with_chats
        self._progress = progress
        self.collection: Collection | None = None
        self.sources = 0
        self._writers: dict[str, tables.TableWriter] = {}

    def start(self, collection: Collection) -> None:
        self._close_writers()
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / SOURCES_DIR).mkdir(parents=True)
        self.collection = collection
        self.sources = 0
        self._writers = {
            DOCUMENTS: tables.TableWriter(self.root / DOCUMENTS, tables.DOCUMENTS_SCHEMA),
            CHUNKS: tables.TableWriter(
                self.root / CHUNKS, tables.chunks_schema(collection.embedding_dim)
            ),
        }
        if self.with_chats:
            self._writers[CHAT_SESSIONS] = tables.TableWriter(
                self.root / CHAT_SESSIONS, tables.CHAT_SESSIONS_SCHEMA
            )
            self._writers[CHAT_MESSAGES] = tables.TableWriter(
                self.root / CHAT_MESSAGES, tables.CHAT_MESSAGES_SCHEMA
            )

    def documents(self, batch: Sequence[Document]) -> None:
        self._writers[DOCUMENTS].write(tables.document_columns(batch))
        if self._progress is not None:
            self._progress(len(batch))

    def source(self, document_id: str, content: bytes) -> None:
        if not DOCUMENT_ID.match(document_id):
            raise InvalidInput(f"document id {document_id[:60]!r} cannot name an archive member")
        (self.root / SOURCES_DIR / document_id).write_bytes(content)
        self.sources += 1

    def chunks(self, batch: Sequence[ChunkRecord]) -> None:
        assert self.collection is not None
        columns = tables.chunk_columns(batch, self.collection.embedding_dim)
        self._writers[CHUNKS].write(columns)
        if self._progress is not None:
            self._progress(len(batch))

    def chat_sessions(self, batch: Sequence[ChatSession]) -> None:
        self._writers[CHAT_SESSIONS].write(tables.session_columns(batch))

    def chat_messages(self, batch: Sequence[ChatMessage]) -> None:
        self._writers[CHAT_MESSAGES].write(tables.message_columns(batch))

    def finish(self) -> dict[str, int]:
        """Close the tables, write ``collection.json``; the counts for the manifest."""
        assert self.collection is not None, "the store never started the export"
        counts = {name: writer.rows for name, writer in self._writers.items()}
        self._close_writers()
        c = self.collection
        described = {
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "embedding_model": c.embedding_model,
            "embedding_dim": c.embedding_dim,
            "created_at": c.created_at.isoformat(),
            "updated_at": c.updated_at.isoformat(),
        }
        (self.root / COLLECTION).write_text(json.dumps(described, indent=1), encoding="utf-8")
        return {
            "documents": counts[DOCUMENTS],
            "chunks": counts[CHUNKS],
            "sources": self.sources,
            "chat_sessions": counts.get(CHAT_SESSIONS, 0),
            "chat_messages": counts.get(CHAT_MESSAGES, 0),
        }

    def members(self) -> list[str]:
        """Every staged member's name, in packing order."""
        names = [name for name in _TABLES if (self.root / name).exists()]
        sources = sorted(p.name for p in (self.root / SOURCES_DIR).iterdir())
        return names + [SOURCES_DIR + name for name in sources]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(_COPY):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def pack(out: IO[bytes], root: Path, members: Sequence[str], manifest: bytes, sig: bytes) -> None:
    """Write the tar stream: manifest, signature, then ``members`` from ``root``."""
    now = int(time.time())
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((MANIFEST, manifest), (SIGNATURE, sig)):
            tar.addfile(_info(name, len(data), now), io.BytesIO(data))
        for name in members:
            path = root / name
            with path.open("rb") as f:
                tar.addfile(_info(name, path.stat().st_size, now), f)


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    return info


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unpacked:
    """A verified archive's members in ``root``: everything matched the manifest."""

    root: Path
    manifest: Manifest
    key_id: str | None


def unpack(stream: BinaryIO, root: Path, trusted: Verifier, *, allow_unsigned: bool) -> Unpacked:
    """Read the tar stream into ``root``, verifying as it goes; ``InvalidInput`` (or
    :class:`UntrustedArchive`) at the first thing that is not as the manifest says."""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            return _unpack(tar, root, trusted, allow_unsigned=allow_unsigned)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidInput(f"the archive is truncated or damaged ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return str(exc)[:120] or type(exc).__name__


def _unpack(
    tar: tarfile.TarFile, root: Path, trusted: Verifier, *, allow_unsigned: bool
) -> Unpacked:
    members: Iterator[tarfile.TarInfo] = iter(tar)
    first = next(members, None)
    if first is None or first.name != MANIFEST:
        raise InvalidInput("not a ragd export archive: it does not start with its manifest")
    manifest_data = _small(tar, first, MAX_MANIFEST_BYTES)
    manifest = parse_manifest(manifest_data)
    second = next(members, None)
    pending: list[tarfile.TarInfo] = []
    if second is not None and second.name == SIGNATURE:
        signature = _small(tar, second, MAX_SIGNATURE_BYTES)
        key_id = check_signature(manifest_data, signature, trusted, allow_unsigned=allow_unsigned)
    elif allow_unsigned:
        key_id = None
        pending = [] if second is None else [second]
    else:
        raise UntrustedArchive(
            "the archive is not signed: pass --allow-unsigned to import it on the strength "
            "of its hashes alone"
        )
    seen: set[str] = set()
    for member in itertools.chain(pending, members):
        _extract(tar, member, root, manifest, seen)
    missing = sorted(set(manifest.members) - seen)
    if missing:
        raise InvalidInput(
            f"the archive is truncated: {len(missing)} member(s) missing, such as {missing[0]}"
        )
    return Unpacked(root=root, manifest=manifest, key_id=key_id)


def _small(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if not member.isfile() or member.size > limit:
        raise InvalidInput(f"the archive's {member.name} is not a file of at most {limit} bytes")
    handle = tar.extractfile(member)
    assert handle is not None
    data = handle.read()
    if len(data) != member.size:
        raise InvalidInput(f"the archive is truncated inside {member.name}")
    return data


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, manifest: Manifest, seen: set[str]
) -> None:
    name = member.name
    expected = manifest.members.get(name)
    if expected is None:
        raise InvalidInput(f"the archive holds {name[:100]!r}, which its manifest does not list")
    if name in seen:
        raise InvalidInput(f"the archive holds {name} twice")
    if not member.isfile():
        raise InvalidInput(f"the archive's {name} is not a regular file")
    if member.size != expected.size:
        raise InvalidInput(f"the archive's {name} does not have the size its manifest says")
    handle = tar.extractfile(member)
    assert handle is not None
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while block := handle.read(_COPY):
            digest.update(block)
            out.write(block)
            size += len(block)
    if size != expected.size:
        raise InvalidInput(f"the archive is truncated inside {name}")
    if digest.hexdigest() != expected.sha256:
        raise InvalidInput(
            f"the archive's {name} does not match its SHA-256 in the manifest: "
            "it was altered or damaged"
        )
    seen.add(name)


def read_collection(root: Path) -> dict[str, Any]:
    """``collection.json`` of an unpacked archive, as a dict (the caller checks values)."""
    path = root / COLLECTION
    if path.stat().st_size > MAX_COLLECTION_BYTES:
        raise InvalidInput("the archive's collection.json is too large")
    try:
        value = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("the archive's collection.json is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("the archive's collection.json is not an object")
    return value
