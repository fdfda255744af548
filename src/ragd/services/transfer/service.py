"""Export a collection to one archive file, import one back: ``ragd export`` /
``ragd import`` and the HTTP jobs behind ``/v1/collections/{id}/exports`` and
``/v1/imports`` call these methods.

An export is written beside its destination under a hidden temporary name and renamed
into place only once complete (and synced), so a process killed half-way never leaves
a file that looks like an archive. An import verifies everything (passphrase, the
signature, every member's hash, the format version, the row counts, the name) before
it writes a row, then writes it all in one transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import structlog

from ragd import __version__
from ragd.audit import AuditEntry
from ragd.auth import Allowed
from ragd.domain import Collection, ImportOutcome, ImportPlan
from ragd.errors import Conflict, InvalidInput, NotFound
from ragd.services.collections import CollectionService, validate_description, validate_name
from ragd.services.transfer.archive import (
    StagingSink,
    Unpacked,
    file_digest,
    pack,
    read_collection,
    unpack,
)
from ragd.services.transfer.crypto import (
    DecryptingReader,
    EncryptingWriter,
    KdfParams,
    is_encrypted,
)
from ragd.services.transfer.manifest import (
    FORMAT,
    FORMAT_VERSION,
    manifest_bytes,
    signature_bytes,
)
from ragd.services.transfer.source import ArchiveSource
from ragd.signing import Signer, Verifier
from ragd.store.base import Store

log = structlog.get_logger(__name__)

EXPORT_BATCH = 2000


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    collection: Collection
    counts: dict[str, int]
    encrypted: bool
    key_id: str
    size: int


@dataclass(frozen=True)
class ImportSummary:
    outcome: ImportOutcome
    source_collection: dict[str, Any]
    key_id: str | None
    embeddings_reused: bool
    counts: dict[str, int] = field(default_factory=dict)


Progress = Callable[[int, int], None]


def _rows(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    """A counter of rows written that reports ``(done, total)`` to ``progress``."""
    if progress is None:
        return None
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        progress(done, max(total, done))

    return advance


def archive_is_encrypted(path: Path) -> bool:
    """Whether the file at ``path`` is an encrypted archive (so a passphrase is needed)."""
    try:
        with path.open("rb") as f:
            return is_encrypted(f.read(16))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


class TransferService:
    """Whole collections to and from archive files.

    ``signer`` is called when an export needs the deployment's key (so that merely
    building the service creates no key file); ``work_dir`` holds an import's unpacked
    members until it is done.

    Audit: a finished export appends ``collection.export`` (its counts, size, key); an
    import appends ``collection.import`` inside its own transaction (the store does),
    so the event exists exactly when the collection does. Starts and failures are
    logged."""

    def __init__(
        self,
        store: Store,
        collections: CollectionService,
        signer: Callable[[], Signer],
        work_dir: Path,
        *,
        kdf: KdfParams | None = None,
    ) -> None:
        self.store = store
        self.collections = collections
        self._signer = signer
        self.work_dir = work_dir
        self.kdf = kdf or KdfParams()

    # -- export --------------------------------------------------------------------------

    def export(
        self,
        ref: str,
        destination: Path,
        *,
        with_chats: bool = False,
        passphrase: str | None = None,
        allowed: Allowed = None,
        actor: str | None = None,
        progress: Progress | None = None,
    ) -> ExportSummary:
        """Write the collection ``ref`` to ``destination`` (replaced only once the new
        archive is complete); encrypted when a passphrase is given. ``progress`` hears
        ``(rows done, rows in all)`` after every batch of documents or chunks, and may
        raise to stop the export (a cancelled job): then nothing is left behind."""
        collection = self.collections.get(ref, allowed=allowed, counts=progress is not None)
        destination = destination.absolute()
        if not destination.parent.is_dir():
            raise InvalidInput(f"{destination.parent} is not a directory")
        if passphrase is not None and not passphrase:
            raise InvalidInput("the passphrase is empty")
        signer = self._signer()
        log.info("export started", collection_id=collection.id, actor=actor, chats=with_chats)
        staging = Path(tempfile.mkdtemp(prefix=".ragd-export-", dir=destination.parent))
        partial = destination.with_name(f".{destination.name}.partial-{secrets.token_hex(4)}")
        try:
            sink = StagingSink(
                staging / "members",
                with_chats=with_chats,
                progress=_rows(progress, collection.document_count + collection.chunk_count),
            )
            self.store.export_collection(
                collection.id, sink, with_chats=with_chats, batch_size=EXPORT_BATCH
            )
            counts = sink.finish()
            members = sink.members()
            manifest = manifest_bytes(
                self._manifest(sink, counts, members, with_chats=with_chats, signer=signer)
            )
            with partial.open("wb") as raw:
                if passphrase is None:
                    pack(raw, sink.root, members, manifest, signature_bytes(manifest, signer))
                else:
                    sealed = EncryptingWriter(raw, passphrase, params=self.kdf)
                    pack(
                        cast(IO[bytes], sealed),
                        sink.root,
                        members,
                        manifest,
                        signature_bytes(manifest, signer),
                    )
                    sealed.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, destination)
            _sync_directory(destination.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            partial.unlink(missing_ok=True)
        assert sink.collection is not None
        summary = ExportSummary(
            path=destination,
            collection=sink.collection,
            counts=counts,
            encrypted=passphrase is not None,
            key_id=signer.key_id,
            size=destination.stat().st_size,
        )
        log.info("export finished", collection_id=collection.id, actor=actor, size=summary.size)
        detail = {**counts, "bytes": summary.size, "encrypted": summary.encrypted}
        self.store.record_audit(
            [AuditEntry("collection.export", (collection.id,), {**detail, "key_id": signer.key_id})]
        )
        return summary

    def _manifest(
        self,
        sink: StagingSink,
        counts: dict[str, int],
        members: list[str],
        *,
        with_chats: bool,
        signer: Signer,
    ) -> dict[str, Any]:
        c = sink.collection
        assert c is not None
        listed = {}
        for name in members:
            sha, size = file_digest(sink.root / name)
            listed[name] = {"sha256": sha, "size": size}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "ragd_version": __version__,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "source_database": self.store.dialect,
            "collection": {
                "id": c.id,
                "name": c.name,
                "description": c.description,
                "created_at": c.created_at.isoformat(),
            },
            "embedding": {"model": c.embedding_model, "dimension": c.embedding_dim},
            "counts": counts,
            "with_chats": with_chats,
            "members": listed,
            "signing_key_id": signer.key_id,
        }

    # -- import --------------------------------------------------------------------------

    @contextmanager
    def verified(
        self,
        archive: Path,
        *,
        passphrase: str | None = None,
        trusted: Verifier | None = None,
        allow_unsigned: bool = False,
    ) -> Iterator[Unpacked]:
        """The archive unpacked into a scratch directory and verified, removed on exit.

        ``trusted`` is the key the manifest must be signed with (default: this
        deployment's own). Raises before yielding when anything is off: a wrong or
        missing passphrase, an altered or truncated archive, an untrusted signature, a
        format version newer than this ragd reads, row counts that disagree."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="import-", dir=self.work_dir))
        try:
            yield self.verify_into(
                archive,
                scratch,
                passphrase=passphrase,
                trusted=trusted,
                allow_unsigned=allow_unsigned,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def verify_into(
        self,
        archive: Path,
        directory: Path,
        *,
        passphrase: str | None = None,
        trusted: Verifier | None = None,
        allow_unsigned: bool = False,
    ) -> Unpacked:
        """:meth:`verified` into ``directory``, which the caller owns (and removes)."""
        with archive.open("rb") as raw:
            unpacked = self._unpack(
                raw,
                directory,
                passphrase=passphrase,
                trusted=trusted or self._signer(),
                allow_unsigned=allow_unsigned,
            )
        ArchiveSource(unpacked, with_vectors=False).check_counts()
        return unpacked

    def _unpack(
        self,
        raw: BinaryIO,
        scratch: Path,
        *,
        passphrase: str | None,
        trusted: Verifier,
        allow_unsigned: bool,
    ) -> Unpacked:
        head = raw.read(16)
        raw.seek(0)
        if not is_encrypted(head):
            return unpack(raw, scratch, trusted, allow_unsigned=allow_unsigned)
        if passphrase is None:
            raise InvalidInput("the archive is encrypted: a passphrase is needed to import it")
        plain = DecryptingReader(raw, passphrase)
        unpacked = unpack(cast(BinaryIO, plain), scratch, trusted, allow_unsigned=allow_unsigned)
        # The tar ends before the stream does; the last frame must still authenticate.
        plain.drain()
        return unpacked

    def import_archive(
        self,
        archive: Path,
        *,
        name: str | None = None,
        passphrase: str | None = None,
        trusted: Verifier | None = None,
        allow_unsigned: bool = False,
        actor: str | None = None,
    ) -> ImportSummary:
        """Verify ``archive`` and create its collection (as ``name`` when given) with
        everything in it, all or nothing. Vectors are kept when this deployment embeds
        with the archive's model and dimension; otherwise the documents are queued to be
        embedded again by the workers from their kept sources."""
        with self.verified(
            archive, passphrase=passphrase, trusted=trusted, allow_unsigned=allow_unsigned
        ) as unpacked:
            return self.import_unpacked(unpacked, name=name, actor=actor)

    def import_unpacked(
        self, unpacked: Unpacked, *, name: str | None = None, actor: str | None = None
    ) -> ImportSummary:
        """The write half of :meth:`import_archive`, for an archive already verified."""
        described = read_collection(unpacked.root)
        plan = self.plan(unpacked, described, name=name)
        log.info("import started", collection=plan.name, actor=actor, key_id=unpacked.key_id)
        source = ArchiveSource(unpacked, with_vectors=plan.reuse_embeddings)
        try:
            outcome = self.store.import_collection(plan, source)
        except Exception as exc:
            log.warning("import failed", collection=plan.name, error=type(exc).__name__)
            raise
        log.info("import finished", collection_id=outcome.collection.id, chunks=outcome.chunks)
        return ImportSummary(
            outcome=outcome,
            source_collection=described,
            key_id=unpacked.key_id,
            embeddings_reused=plan.reuse_embeddings,
            counts=unpacked.manifest.counts,
        )

    def plan(
        self, unpacked: Unpacked, described: dict[str, Any], *, name: str | None = None
    ) -> ImportPlan:
        """What the import will create; ``Conflict`` now when the name is taken (the
        transaction checks again)."""
        manifest = unpacked.manifest
        chosen = name if name is not None else described.get("name")
        if not isinstance(chosen, str):
            raise InvalidInput("the archive's collection has no name")
        chosen = validate_name(chosen)
        description = described.get("description", "")
        if not isinstance(description, str):
            raise InvalidInput("the archive's collection description is not text")
        if (
            described.get("embedding_model") != manifest.embedding_model
            or described.get("embedding_dim") != manifest.embedding_dim
        ):
            raise InvalidInput("the archive's collection.json and manifest disagree on the model")
        self._require_free(chosen)
        embedder = self.collections.embedder
        target_model, target_dim = embedder.model_name, embedder.dimension
        reuse = manifest.embedding_model == target_model and manifest.embedding_dim == target_dim
        return ImportPlan(
            name=chosen,
            description=validate_description(description),
            embedding_model=manifest.embedding_model if reuse else target_model,
            embedding_dim=manifest.embedding_dim if reuse else target_dim,
            reuse_embeddings=reuse,
            with_chats=manifest.with_chats,
            signed_by=unpacked.key_id,
        )

    def _require_free(self, name: str) -> None:
        try:
            self.store.get_collection_by_name(name, counts=False)
        except NotFound:
            return
        raise Conflict(
            f"a collection named {name!r} already exists: import under another name "
            "(--collection NEW_NAME)"
        )


def _sync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
