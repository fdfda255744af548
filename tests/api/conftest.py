"""API fixtures: the real app over a real SQLite file, in-process and as a server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from helpers import LiveServer, free_port
from ragd.api import create_app
from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path, inprocess_worker=False, max_upload_mb=1, log_format="json"
    )


@pytest.fixture
def container(settings: Settings, embedder: LocalEmbedder) -> Iterator[Container]:
    built = Container(settings, embedder=embedder)
    built.store.migrate()
    yield built
    built.close()


@pytest.fixture
def client(settings: Settings, container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(settings, container=container)) as test_client:
        yield test_client


Drain = Callable[[], int]


@pytest.fixture
def drain(container: Container) -> Drain:
    """Process every queued document now, as the in-process worker would."""
    return container.new_worker().run_until_idle


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``ragd serve`` as a real process on its embedded defaults."""
    data_dir = tmp_path_factory.mktemp("server-data")
    log_path = data_dir / "server.log"
    port = free_port()
    env = {
        **os.environ,
        "RAGD_DATA_DIR": str(data_dir),
        "RAGD_LOG_FORMAT": "json",
        "RAGD_WORKER_POLL_INTERVAL_S": "0.1",
        "HF_HUB_OFFLINE": "1",
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ragd", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, log_path)
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_ready(server: LiveServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready in time:\n{server.log()}")
