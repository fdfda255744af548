"""A server killed mid-ingest resumes on restart: nothing lost, nothing duplicated."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import httpx

from tests.helpers import start_server, stop_server


def test_sigkill_mid_ingest_then_restart(tmp_path: Path) -> None:
    process, server = start_server(tmp_path, RAGD_WORKER_CLAIM_BATCH="4")
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        cid = http.post("/v1/collections", json={"name": "crash"}).json()["id"]
        ids = []
        for i in range(40):
            text = f"# Note {i}\n\n" + " ".join(f"fact{i} about topic{j}." for j in range(60))
            ids.append(
                http.post(f"/v1/collections/{cid}/documents", json={"text": text}).json()["id"]
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = [
                d["status"]
                for d in http.get(f"/v1/collections/{cid}/documents", params={"limit": 100}).json()[
                    "documents"
                ]
            ]
            if "processing" in statuses or "ready" in statuses:
                break
            time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()

    process, server = start_server(tmp_path)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                documents = http.get(
                    f"/v1/collections/{cid}/documents", params={"limit": 100}
                ).json()["documents"]
                if all(d["status"] == "ready" for d in documents):
                    break
                time.sleep(0.2)
            assert sorted(d["id"] for d in documents) == sorted(ids)
            assert all(d["status"] == "ready" for d in documents), documents
            expected = sum(d["chunk_count"] for d in documents)
            assert http.get(f"/v1/collections/{cid}").json()["chunk_count"] == expected
    finally:
        stop_server(process)
    with sqlite3.connect(tmp_path / "ragd.db") as db:
        (chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
        (indexed,) = db.execute("SELECT count(*) FROM chunks_fts").fetchone()
        (orphans,) = db.execute(
            "SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id "
            "WHERE d.id IS NULL"
        ).fetchone()
    assert chunks == expected == indexed
    assert orphans == 0
