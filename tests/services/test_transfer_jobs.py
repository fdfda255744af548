"""The export and import job kinds on both databases: a cancelled export leaves no file,
and a staged import whose files changed on disk after verification fails its job with
nothing written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragd.auth import ANONYMOUS
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.services.jobs import JobCancelled, JobContext
from tests.services.transfer_kit import fill, open_container

OWNER = "host:1:transfer-jobs"


@pytest.fixture
def container(tmp_path: Path, database_url: str, embedder: LocalEmbedder) -> Iterator[Container]:
    with open_container(tmp_path / "data", database_url, embedder) as built:
        yield built


def test_a_cancelled_export_leaves_no_file(container: Container) -> None:
    cid = fill(container.store, "big", documents=20, chunks_per_document=50)
    job = container.jobs.submit(kind="export", collection_id=cid, params={}, actor="local")
    claimed = container.store.claim_background_job(owner=OWNER, kinds=["export"], lease_s=60)
    assert claimed is not None and claimed.id == job.id
    assert container.jobs.cancel(job.id).cancel_requested
    ctx = JobContext(container.store, claimed, owner=OWNER, lease_s=60, stop=threading.Event())
    with pytest.raises(JobCancelled):
        container.transfer_jobs.run_export(claimed, ctx)
    exports = container.settings.data_dir / "exports"
    assert list(exports.iterdir()) == []


def test_a_staged_import_changed_on_disk_fails_its_job(
    container: Container, tmp_path: Path
) -> None:
    cid = fill(container.store, "big", documents=5, chunks_per_document=4)
    archive = tmp_path / "big.ragd"
    container.transfer.export(cid, archive)
    job = container.transfer_jobs.submit_import(
        archive, name="copy", passphrase=None, allow_unsigned=False, caller=ANONYMOUS
    )
    staged = next((container.settings.data_dir / "imports").iterdir())
    chunks = staged / "chunks.parquet"
    data = bytearray(chunks.read_bytes())
    data[len(data) // 2] ^= 1
    chunks.write_bytes(bytes(data))

    assert container.jobs.run_once(OWNER)
    failed = container.jobs.get(job.id)
    assert failed.status == "failed"
    assert failed.error is not None and "changed after it was verified" in failed.error
    assert [c.name for c in container.collections.list_all()] == ["big"]
    assert not staged.exists()
