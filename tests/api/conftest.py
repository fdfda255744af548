"""API fixtures: the real app over a real database of each kind, in-process and as a server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LOOPBACK_CLIENT, REMOTE_CLIENT, LiveServer, start_server, stop_server
from tests.redis_server import running_redis


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Every API test runs once on a SQLite file and once on PostgreSQL."""
    return load_settings(
        data_dir=tmp_path,
        database_url=database_url,
        inprocess_worker=False,
        max_upload_mb=1,
        log_format="json",
    )


@pytest.fixture
def container(settings: Settings, embedder: LocalEmbedder) -> Iterator[Container]:
    built = Container(settings, embedder=embedder)
    built.store.migrate()
    yield built
    built.close()


@pytest.fixture
def app(settings: Settings, container: Container) -> FastAPI:
    return create_app(settings, container=container)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client on this machine (127.0.0.1): served without a key until one exists."""
    with TestClient(app, client=LOOPBACK_CLIENT) as test_client:
        yield test_client


@pytest.fixture
def remote_client(app: FastAPI) -> Iterator[TestClient]:
    """A client from another machine (10.0.0.2): always needs a key."""
    with TestClient(app, client=REMOTE_CLIENT) as test_client:
        yield test_client


MakeKey = Callable[..., str]


@pytest.fixture
def make_key(container: Container) -> MakeKey:
    """Create a key through the key service and return its full secret:
    ``make_key("read")``, ``make_key("write", collections=[cid])``."""

    def make(scope: str, *, collections: list[str] | None = None, name: str = "test") -> str:
        return container.keys.create(name, scope, collections).secret

    return make


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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis (see ``tests.redis_server``); give each test its own key prefix."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


LLM_SECRET = "sk-test-abcdefghijklmnop"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    """A real HTTP server speaking the OpenAI chat-completions protocol."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def llm_container(tmp_path: Path, embedder: LocalEmbedder, llm: FakeOpenAI) -> Iterator[Container]:
    """A container whose generator is the OpenAI-compatible one, pointed at ``llm``."""
    settings = load_settings(
        data_dir=tmp_path,
        inprocess_worker=False,
        llm_base_url=llm.base_url,
        llm_model="fake-model",
        llm_api_key=LLM_SECRET,
        llm_max_retries=0,
        log_format="json",
    )
    container = Container(settings, embedder=embedder)
    yield container
    container.close()


@pytest.fixture
def llm_client(llm_container: Container) -> Iterator[tuple[TestClient, Container]]:
    app = create_app(llm_container.settings, container=llm_container)
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        yield client, llm_container
