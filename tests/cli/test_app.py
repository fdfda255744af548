"""The CLI on a real data directory, no server: the README's commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragd.cli.app import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RAGD_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}


def run(env: dict[str, str], *args: str, ok: bool = True) -> str:
    result = runner.invoke(app, list(args), env=env)
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


def test_collections_create_list_delete(env: dict[str, str]) -> None:
    assert "created collection" in run(env, "collections", "create", "notes", "--description", "n")
    listed = json.loads(run(env, "collections", "list", "--json"))
    assert [c["name"] for c in listed] == ["notes"]
    dup = runner.invoke(app, ["collections", "create", "notes"], env=env)
    assert dup.exit_code == 1
    assert "already exists" in dup.output
    assert "deleted" in run(env, "collections", "delete", "notes", "--yes")
    assert json.loads(run(env, "collections", "list", "--json")) == []


def test_ingest_folder_then_search_and_ask(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "bridge.md").write_text(
        "# Tower Bridge\n\nTower Bridge opened in 1894 over the River Thames in London.\n"
    )
    (folder / "sub" / "coffee.txt").write_text(
        "Espresso is made by forcing hot water through coffee.\n"
    )
    (folder / "sub" / "copy.md").write_text(
        "# Tower Bridge\n\nTower Bridge opened in 1894 over the River Thames in London.\n"
    )
    (folder / ".hidden.md").write_text("secret notes that should not be ingested")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a real pdf")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)

    result = runner.invoke(app, ["ingest", str(folder), "--collection", "kb"], env=env)
    assert result.exit_code == 1, result.output  # some files failed, and it says which
    out = result.output
    assert "broken.pdf" in out
    assert "image.png" in out
    summary = out.splitlines()
    row = next(line for line in summary if line.strip().startswith("│") and "2" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[:3] == ["2", "2", "1"]  # ready, failed, duplicate

    hits = json.loads(run(env, "search", "when did the bridge open", "--json", "-c", "kb"))
    assert "Tower Bridge" in hits[0]["text"]
    assert all("secret" not in hit["text"] for hit in hits)
    answer = json.loads(run(env, "ask", "When did Tower Bridge open?", "--json"))
    assert "1894" in answer["answer"]
    assert answer["citations"][0]["title"] == "Tower Bridge"
    table = run(env, "search", "espresso", "--mode", "keyword")
    assert "Espresso" in table


def test_errors_are_one_line_messages(env: dict[str, str], tmp_path: Path) -> None:
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "-c", "kb"], env=env)
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    empty_query = runner.invoke(app, ["search", "  "], env=env)
    assert empty_query.exit_code == 1
    assert "query must not be empty" in empty_query.output
    bad_setting = runner.invoke(app, ["migrate"], env={**env, "RAGD_CHUNK_MAX_TOKENS": "x"})
    assert bad_setting.exit_code == 2
    assert "RAGD_CHUNK_MAX_TOKENS" in bad_setting.output
    assert "schema is up to date" in run(env, "migrate")
