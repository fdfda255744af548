"""``ragd reindex --collection`` on a real database of each kind: it queues the job, runs
it here with a progress bar, and prints what the collection became."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragd.cli.app import app
from tests.embedding.fake_embeddings import DIM, FakeEmbeddings
from tests.services.reindex_helpers import document_text

runner = CliRunner()


@pytest.fixture
def fake() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, database_url: str, fake: FakeEmbeddings) -> dict[str, str]:
    return {
        "RAGD_DATA_DIR": str(tmp_path / "data"),
        "RAGD_DATABASE_URL": database_url,
        "RAGD_EMBEDDING_BASE_URL": fake.base_url,
        "RAGD_EMBEDDING_MODEL": "fake-embed",
        "RAGD_WORKER_POLL_INTERVAL_S": "0.1",
        "HF_HUB_OFFLINE": "1",
    }


def test_reindex_with_a_progress_bar(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(5):
        (folder / f"doc-{i}.md").write_text(document_text(i))
    ingested = runner.invoke(app, ["ingest", str(folder), "--collection", "kb"], env=env)
    assert ingested.exit_code == 0, ingested.output

    result = runner.invoke(app, ["reindex", "--collection", "kb", "--chunk-size", "16"], env=env)
    assert result.exit_code == 0, result.output
    assert "reindex queued as job job_" in result.output
    assert "reindexing" in result.output and "5/5" in result.output  # the progress bar
    assert "reindexed 5 documents into" in result.output and f"{DIM} dimensions" in result.output

    listed = json.loads(runner.invoke(app, ["jobs", "list", "--json"], env=env).output)
    assert [(j["kind"], j["status"], j["done"], j["total"]) for j in listed] == [
        ("reindex", "succeeded", 5, 5)
    ]
    assert listed[0]["result"]["chunk_max_tokens"] == 16

    detached = runner.invoke(app, ["reindex", "-c", "kb", "--detach"], env=env)
    assert detached.exit_code == 0 and "reindexing" not in detached.output
    busy = runner.invoke(app, ["reindex", "-c", "kb"], env=env)
    assert busy.exit_code == 1 and "being reindexed already" in busy.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reindex"], "give --collection NAME or --keyword"),
        (["reindex", "-c", "nope"], "not found"),
        (["reindex", "-c", "kb", "--model", "other-model"], "RAGD_EMBEDDING_MODEL"),
        (["reindex", "-c", "kb", "--chunk-size", "15"], "Usage:"),  # typer checks the bound
    ],
)
def test_reindex_refuses_what_it_cannot_do(
    env: dict[str, str], args: list[str], message: str
) -> None:
    assert runner.invoke(app, ["collections", "create", "kb"], env=env).exit_code == 0
    result = runner.invoke(app, args, env=env)
    assert result.exit_code != 0 and message in result.output
