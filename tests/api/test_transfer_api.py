"""Exports and imports over HTTP on both databases: the export job and its download,
scoped like the collection; imports verified in the request (every bad archive a 4xx
problem with nothing written), then written by the job."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.config import Settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.services.transfer.crypto import KdfParams
from ragd.services.transfer.manifest import signature_bytes
from tests.api.conftest import Drain, MakeKey
from tests.api.seed import seed
from tests.helpers import LOOPBACK_CLIENT
from tests.services.transfer_kit import members, repack

OWNER = "host:1:transfer-test"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def export_archive(client: TestClient, container: Container, cid: str, key: str) -> bytes:
    """Export ``cid`` through the API (queue, run, download); the archive's bytes."""
    queued = client.post(f"/v1/collections/{cid}/exports", json={}, headers=auth(key))
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    assert queued.headers["Location"] == f"/v1/jobs/{job_id}"
    assert queued.json()["kind"] == "export" and queued.json()["status"] == "queued"
    assert container.jobs.run_once(OWNER)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["download"] == f"/v1/exports/{job_id}/download"
    assert job["result"]["counts"]["documents"] == 1
    download = client.get(job["result"]["download"], headers=auth(key))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/x-tar"
    assert "bridges-" in download.headers["content-disposition"]
    return download.content


def post_import(client: TestClient, body: bytes, key: str, **params: str) -> Any:
    return client.post(
        "/v1/imports",
        content=body,
        params=params,
        headers={**auth(key), "Content-Type": "application/octet-stream"},
    )


def test_export_download_and_import_round_trip(
    client: TestClient, container: Container, drain: Drain, make_key: MakeKey
) -> None:
    ids = seed(client, drain)
    admin = make_key("admin")
    writer = make_key("write", collections=[ids["bridges"]])
    archive = export_archive(client, container, ids["bridges"], writer)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r|") as tar:
        assert next(iter(tar)).name == "manifest.json"

    response = client.post(
        "/v1/imports",
        content=archive,
        params={"collection": "bridges-copy"},
        headers={**auth(admin), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["kind"] == "import" and response.json()["collection_id"] is None
    assert container.jobs.run_once(OWNER)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth(admin)).json()
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert (result["name"], result["documents"], result["embeddings_reused"]) == (
        "bridges-copy",
        1,
        True,
    )
    hits = client.post(
        "/v1/search",
        json={"query": "When was Tower Bridge completed?", "collections": ["bridges-copy"]},
        headers=auth(admin),
    ).json()["results"]
    assert hits and "1894" in hits[0]["text"]
    assert list((container.settings.data_dir / "imports").iterdir()) == []


def test_exports_are_scoped_like_their_collection(
    client: TestClient, container: Container, drain: Drain, make_key: MakeKey
) -> None:
    ids = seed(client, drain)
    writer = make_key("write", collections=[ids["bridges"]])
    reader_elsewhere = make_key("read", collections=[ids["lights"]])
    reader = make_key("read", collections=[ids["bridges"]])
    export_archive(client, container, ids["bridges"], writer)
    job_id = client.get("/v1/jobs", headers=auth(writer)).json()["jobs"][0]["id"]
    download = f"/v1/exports/{job_id}/download"

    assert client.get(download, headers=auth(reader)).status_code == 200
    for path in (download, f"/v1/jobs/{job_id}"):
        hidden = client.get(path, headers=auth(reader_elsewhere))
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
    other = client.post(f"/v1/collections/{ids['lights']}/exports", headers=auth(writer))
    assert other.status_code == 404
    read_only = client.post(f"/v1/collections/{ids['bridges']}/exports", headers=auth(reader))
    assert read_only.status_code == 403
    assert client.get("/v1/exports/job_nope/download", headers=auth(reader)).status_code == 404

    # An expired archive is gone: 404, and the next export sweeps it from the disk.
    archive = container.settings.data_dir / "exports" / f"{job_id}.ragd"
    old = archive.stat().st_mtime - 2 * 24 * 3600
    os.utime(archive, (old, old))
    assert client.get(download, headers=auth(reader)).status_code == 404
    export_archive(client, container, ids["bridges"], writer)
    assert not archive.exists()


def test_an_unfinished_export_cannot_be_downloaded(
    client: TestClient, container: Container, drain: Drain
) -> None:
    ids = seed(client, drain)
    job_id = client.post(f"/v1/collections/{ids['bridges']}/exports").json()["id"]
    early = client.get(f"/v1/exports/{job_id}/download")
    assert early.status_code == 409
    assert early.headers["content-type"] == "application/problem+json"


def assert_refused(
    client: TestClient, container: Container, response: Any, status: int, words: str
) -> None:
    """A problem+json refusal with nothing written: no collection, job or staged file."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]
    names = {c.name for c in container.collections.list_all()}
    assert names == {"bridges", "lights"}
    assert container.jobs.list(kind="import").items == []
    staging = container.settings.data_dir / "imports"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_bad_archives_are_refused_before_anything_is_written(
    client: TestClient, container: Container, drain: Drain, tmp_path: Path
) -> None:
    ids = seed(client, drain)
    container.transfer.kdf = KdfParams(log2_n=12)
    plain = tmp_path / "plain.ragd"
    container.transfer.export(ids["bridges"], plain)
    sealed = tmp_path / "sealed.ragd"
    container.transfer.export(ids["bridges"], sealed, passphrase="open sesame")
    body = plain.read_bytes()

    def send(data: bytes, **params: str) -> Any:
        return client.post(
            "/v1/imports",
            content=data,
            params={"collection": "copy", **params},
            headers={"Content-Type": "application/octet-stream"},
        )

    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 1
    assert_refused(client, container, send(bytes(flipped)), 422, "archive")
    assert_refused(client, container, send(body[: len(body) // 2]), 422, "truncated")
    assert_refused(client, container, send(b""), 422, "archive")
    assert_refused(client, container, send(b"not an archive at all" * 100), 422, "archive")

    raw = next(data for info, data in members(plain) if info.name == "manifest.json")
    future = json.loads(raw)
    future["format_version"] = 99
    newer_body = json.dumps(future).encode()
    newer = tmp_path / "newer.ragd"
    sig = signature_bytes(newer_body, container.signer())
    repack(plain, newer, {"manifest.json": newer_body, "manifest.sig": sig})
    assert_refused(client, container, send(newer.read_bytes()), 422, "newer")

    forged = tmp_path / "forged.ragd"
    repack(plain, forged, {"manifest.json": raw.replace(b"bridges", b"bridgez")})
    assert_refused(client, container, send(forged.read_bytes()), 422, "signature")

    wrong = client.post(
        "/v1/imports",
        content=sealed.read_bytes(),
        params={"collection": "copy"},
        headers={"Content-Type": "application/octet-stream", "X-Ragd-Passphrase": "wrong"},
    )
    assert_refused(client, container, wrong, 422, "wrong passphrase")
    assert_refused(client, container, send(sealed.read_bytes()), 422, "passphrase")

    clash = client.post(
        "/v1/imports", content=body, headers={"Content-Type": "application/octet-stream"}
    )
    assert_refused(client, container, clash, 409, "already exists")

    good = client.post(
        "/v1/imports",
        content=sealed.read_bytes(),
        params={"collection": "copy"},
        headers={"Content-Type": "application/octet-stream", "X-Ragd-Passphrase": "open sesame"},
    )
    assert good.status_code == 202, good.text


def test_imports_need_an_unlimited_admin_key(
    client: TestClient, container: Container, drain: Drain, make_key: MakeKey, tmp_path: Path
) -> None:
    ids = seed(client, drain)
    plain = tmp_path / "plain.ragd"
    container.transfer.export(ids["bridges"], plain)
    body = plain.read_bytes()
    for key in (make_key("write"), make_key("admin", collections=[ids["bridges"]])):
        refused = post_import(client, body, key, collection="copy")
        assert refused.status_code == 403
    assert {c.name for c in container.collections.list_all()} == {"bridges", "lights"}


@pytest.fixture
def small_cap_client(settings: Settings, embedder: LocalEmbedder) -> Iterator[TestClient]:
    """The app with ``RAGD_MAX_IMPORT_MB=0.01`` (10 KiB) on the same database."""
    capped = settings.model_copy(update={"max_import_mb": 0.01})
    built = Container(capped, embedder=embedder)
    built.store.migrate()
    with TestClient(create_app(capped, container=built), client=LOOPBACK_CLIENT) as client:
        yield client
    built.close()


def test_an_archive_over_the_import_cap_is_a_413(
    small_cap_client: TestClient, container: Container
) -> None:
    for body in (b"\0" * 20_000, iter([b"\0" * 8_000] * 3)):  # declared, then streamed
        response = small_cap_client.post(
            "/v1/imports",
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
    staging = container.settings.data_dir / "imports"
    assert not staging.exists() or list(staging.iterdir()) == []
