"""A real ``ragd serve`` and a real ``ragd worker`` sign the audit chain's head when they
stop on SIGTERM, and the chain verifies with the key they made on first start."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ragd.audit import AuditCheckpoint
from ragd.config import load_settings
from ragd.services.audit_verify import verify_chain
from ragd.signing import DEFAULT_KEY_FILENAME, load_or_create_signer
from ragd.store import open_store
from tests.helpers import start_server, stop_server


def checkpoints_and_verdict(data_dir: Path) -> tuple[list[AuditCheckpoint], int, bool]:
    store = open_store(load_settings(data_dir=data_dir))
    try:
        signer = load_or_create_signer(None, data_dir)
        found = store.read_audit(lambda reader: list(reader.checkpoints()))
        head = store.read_audit(lambda reader: reader.head())[0]
        verdict = store.read_audit(lambda reader: verify_chain(reader, signer))
        return found, head, verdict.ok
    finally:
        store.close()


def test_serve_signs_the_head_on_sigterm(tmp_path: Path) -> None:
    process, server = start_server(tmp_path)
    try:
        key_file = tmp_path / DEFAULT_KEY_FILENAME
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # made on first start
        created = httpx.post(f"{server.base_url}/v1/collections", json={"name": "notes"})
        assert created.status_code == 201, created.text
    finally:
        stop_server(process)
    assert "Application shutdown complete" in server.log()  # uvicorn re-raises SIGTERM
    checkpoints, head, ok = checkpoints_and_verdict(tmp_path)
    assert [c.seq for c in checkpoints] == [head] == [1]
    assert ok


def test_worker_signs_the_head_on_sigterm(tmp_path: Path) -> None:
    store = open_store(load_settings(data_dir=tmp_path))
    store.migrate()
    store.create_collection(name="notes", description="", embedding_model="m", embedding_dim=8)
    store.close()
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "RAGD_DATA_DIR": str(tmp_path), "RAGD_LOG_FORMAT": "json"}
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ragd", "worker"],
            env={**env, "HF_HUB_OFFLINE": "1"},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "worker pool started" not in log_path.read_text(errors="replace"):
            assert worker.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log_path.read_text(errors="replace")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    checkpoints, head, ok = checkpoints_and_verdict(tmp_path)
    assert [c.seq for c in checkpoints] == [head] == [1]
    assert ok
