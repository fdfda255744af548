"""Graceful shutdown of a real server: SIGTERM during an ingest hands the document back
to the queue (no ``processing`` row with a lease left behind, no attempt charged), and a
request in flight when SIGTERM arrives still gets its answer."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import start_server


def _big_document() -> str:
    # About 1,500 chunks of unique text: embedding it takes far longer than stopping.
    paragraphs = [
        f"## Part {i}\n\n" + " ".join(f"term{i}x{j}" for j in range(150)) for i in range(400)
    ]
    return "# Archive\n\n" + "\n\n".join(paragraphs)


def test_sigterm_mid_ingest_requeues_the_document(tmp_path: Path) -> None:
    process, server = start_server(tmp_path, RAGD_SHUTDOWN_GRACE_S="2")
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            cid = http.post("/v1/collections", json={"name": "archive"}).json()["id"]
            created = http.post(f"/v1/collections/{cid}/documents", json={"text": _big_document()})
            assert created.status_code == 202, created.text
            document_id = created.json()["id"]
            deadline = time.monotonic() + 60
            while http.get(f"/v1/documents/{document_id}").json()["status"] != "processing":
                assert time.monotonic() < deadline, "the worker never claimed the document"
                time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly: exit status -15.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM), server.log()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    with sqlite3.connect(tmp_path / "ragd.db") as db:
        status, owner, lease, attempts = db.execute(
            "SELECT status, lease_owner, lease_expires_at, attempts FROM documents WHERE id = ?",
            (document_id,),
        ).fetchone()
    assert (status, owner, lease, attempts) == ("queued", None, None, 0), server.log()
    log = server.log()
    assert '"released": 1' in log, log
    assert "Application shutdown complete" in log


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    process, server = start_server(tmp_path, RAGD_SHUTDOWN_GRACE_S="20")
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            cid = http.post("/v1/collections", json={"name": "late"}).json()["id"]
            started = threading.Event()

            def slow_body() -> Iterator[bytes]:
                yield b'{"text": "Sent slowly, '
                started.set()
                time.sleep(1.0)  # SIGTERM arrives while the body is still on its way
                yield b'and still accepted."}'

            def terminate() -> None:
                started.wait(30)
                process.send_signal(signal.SIGTERM)

            killer = threading.Thread(target=terminate)
            killer.start()
            response = http.post(
                f"/v1/collections/{cid}/documents",
                content=slow_body(),
                headers={"content-type": "application/json"},
            )
            killer.join()
        assert response.status_code == 202, response.text
        assert process.wait(timeout=60) in (0, -signal.SIGTERM), server.log()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.base_url}/livez")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
