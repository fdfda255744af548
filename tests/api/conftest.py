"""API fixtures: the real app over a real SQLite file, in-process and as a server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragd.api import create_app
from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.helpers import LiveServer, start_server, stop_server


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
    process, server = start_server(tmp_path_factory.mktemp("server-data"))
    try:
        yield server
    finally:
        stop_server(process)
