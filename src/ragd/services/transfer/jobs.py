"""Exports and imports as background jobs (kinds ``export`` and ``import``): what the
HTTP API submits, and what any worker runs.

An export job writes its archive to ``data_dir/exports/<job id>.ragd``; its result names
the download path, which any key that may read the collection can fetch until
``RAGD_EXPORT_RETENTION_H`` has passed. An import is verified whole in the request that
uploads it (so a bad archive is the caller's 4xx, and nothing is written), staged under
``data_dir/imports/``, and then written by the job in one transaction. Files live in the
data directory: with workers on other machines, that directory must be shared (or use
``ragd export`` and ``ragd import``, which need no job).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ragd.auth import Principal
from ragd.domain import JobInfo
from ragd.errors import Conflict, Forbidden, InvalidInput, NotFound, TransientError, Unavailable
from ragd.services.jobs import JobContext, JobService
from ragd.services.transfer.archive import Unpacked, file_digest, read_collection
from ragd.services.transfer.manifest import manifest_bytes, parse_manifest
from ragd.services.transfer.service import TransferService

log = structlog.get_logger(__name__)

EXPORT = "export"
IMPORT = "import"
_STAGED = re.compile(r"^import-[0-9a-f]{16}$")
_STAGED_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ExportFile:
    path: Path
    filename: str


class TransferJobs:
    """Registers the two job kinds on ``jobs`` and serves the HTTP side of them."""

    def __init__(
        self,
        transfer: TransferService,
        jobs: JobService,
        data_dir: Path,
        *,
        retention_h: float,
    ) -> None:
        self.transfer = transfer
        self.jobs = jobs
        self.exports_dir = data_dir / "exports"
        self.upload_dir = data_dir / "imports"
        self.retention_s = retention_h * 3600
        jobs.register(EXPORT, self.run_export)
        jobs.register(IMPORT, self.run_import)

    # -- export ----------------------------------------------------------------------------

    def submit_export(self, ref: str, *, with_chats: bool, caller: Principal) -> JobInfo:
        """Queue an export of a collection ``caller`` may see."""
        collection = self.transfer.collections.get(ref, allowed=caller.collection_ids, counts=False)
        return self.jobs.submit(
            kind=EXPORT,
            collection_id=collection.id,
            params={"with_chats": with_chats},
            actor=_actor(caller),
        )

    def export_file(self, job_id: str, *, caller: Principal) -> ExportFile:
        """The archive of a succeeded export job ``caller`` may see; ``NotFound`` for
        any other job or once the archive expired, ``Conflict`` while it is not done."""
        job = self.jobs.get(job_id, caller=caller)
        if job.kind != EXPORT:
            raise NotFound(f"export {job_id!r} not found")
        if job.status != "succeeded":
            raise Conflict(f"the export is {job.status}; download it once it has succeeded")
        path = self._archive(job.id)
        if not path.is_file() or self._expired(path):
            raise NotFound(f"the archive of export {job_id!r} has expired")
        filename = (job.result or {}).get("filename")
        return ExportFile(path=path, filename=filename if isinstance(filename, str) else path.name)

    def run_export(self, job: JobInfo, ctx: JobContext) -> dict[str, Any]:
        self.sweep()
        assert job.collection_id is not None
        self.exports_dir.mkdir(parents=True, exist_ok=True)
        done = self.transfer.export(
            job.collection_id,
            self._archive(job.id),
            with_chats=bool(job.params.get("with_chats")),
            actor=job.created_by,
            progress=ctx.progress,
        )
        stamp = dt.datetime.now(dt.UTC)
        expires = stamp + dt.timedelta(seconds=self.retention_s)
        return {
            "download": f"/v1/exports/{job.id}/download",
            "filename": f"{done.collection.name}-{stamp:%Y%m%d-%H%M%S}.ragd",
            "bytes": done.size,
            "counts": done.counts,
            "key_id": done.key_id,
            "expires_at": expires.isoformat(),
        }

    def _archive(self, job_id: str) -> Path:
        return self.exports_dir / f"{job_id}.ragd"

    # -- import ----------------------------------------------------------------------------

    def submit_import(
        self,
        upload: Path,
        *,
        name: str | None,
        passphrase: str | None,
        allow_unsigned: bool,
        caller: Principal,
    ) -> JobInfo:
        """Verify the uploaded archive into a staging directory (raising what is wrong
        with it), check the name is free, then queue the job that writes it."""
        if caller.limited:
            # The new collection could never be inside the key's fixed list.
            raise Forbidden("a key limited to collections cannot import collections")
        self.sweep()
        staged = self.upload_dir / f"import-{secrets.token_hex(8)}"
        staged.mkdir(parents=True)
        try:
            unpacked = self.transfer.verify_into(
                upload, staged, passphrase=passphrase, allow_unsigned=allow_unsigned
            )
            plan = self.transfer.plan(unpacked, read_collection(staged), name=name)
            (staged / _STAGED_MANIFEST).write_bytes(manifest_bytes(unpacked.manifest.raw))
            return self.jobs.submit(
                kind=IMPORT,
                collection_id=None,
                params={"staged": staged.name, "name": plan.name, "key_id": unpacked.key_id},
                actor=_actor(caller),
            )
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise

    def run_import(self, job: JobInfo, ctx: JobContext) -> dict[str, Any]:
        staged = self._staged(job.params.get("staged"))
        try:
            ctx.progress(0, 1)
            unpacked = _reload(staged, job.params.get("key_id"))
            name = job.params.get("name")
            done = self.transfer.import_unpacked(
                unpacked, name=name if isinstance(name, str) else None, actor=job.created_by
            )
        except (TransientError, Unavailable):
            raise  # retried: the staged archive stays for the next attempt
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        shutil.rmtree(staged, ignore_errors=True)
        outcome = done.outcome
        return {
            "collection_id": outcome.collection.id,
            "name": outcome.collection.name,
            "documents": outcome.documents,
            "chunks": outcome.chunks,
            "requeued": outcome.requeued,
            "chat_sessions": outcome.chat_sessions,
            "embeddings_reused": done.embeddings_reused,
            "document_ids_kept": outcome.document_ids_kept,
            "signed_by": done.key_id,
        }

    def _staged(self, name: Any) -> Path:
        if not isinstance(name, str) or not _STAGED.match(name):
            raise InvalidInput("the import job names no staged archive")
        staged = self.upload_dir / name
        if not (staged / _STAGED_MANIFEST).is_file():
            raise InvalidInput(
                "the verified archive is not on this worker's disk: it expired, or the "
                "worker does not share RAGD_DATA_DIR with the server that received it"
            )
        return staged

    # -- housekeeping ----------------------------------------------------------------------

    def sweep(self) -> int:
        """Delete archives, staged imports and uploads older than the retention; how
        many. Runs before each export and import, so no scheduler is needed."""
        removed = 0
        for directory in (self.exports_dir, self.upload_dir):
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if self._expired(path):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                    removed += 1
        if removed:
            log.info("expired exports and imports deleted", removed=removed)
        return removed

    def _expired(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime > self.retention_s
        except OSError:
            return False


def _reload(staged: Path, key_id: Any) -> Unpacked:
    """The staged archive as verified before, each member checked against its hash
    again (it waited on disk between the request and the job)."""
    manifest = parse_manifest((staged / _STAGED_MANIFEST).read_bytes())
    for name, member in manifest.members.items():
        path = staged / name
        if not path.is_file() or file_digest(path) != (member.sha256, member.size):
            raise InvalidInput(f"the staged archive's {name} changed after it was verified")
    return Unpacked(
        root=staged, manifest=manifest, key_id=key_id if isinstance(key_id, str) else None
    )


def _actor(caller: Principal) -> str:
    return caller.prefix or "anonymous"


__all__ = ["EXPORT", "IMPORT", "ExportFile", "TransferJobs"]
