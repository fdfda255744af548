"""``ragd sources add|list|sync|remove|rotate-secret`` on a real data directory and a
real folder, no server."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ragd.cli.app import app

runner = CliRunner()


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_sources_add_list_sync_remove(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    (root / "handbook").mkdir(parents=True)
    (root / "handbook" / "leave.md").write_text("# Leave\n\nEveryone gets 25 days of leave.")
    env = {
        "RAGD_DATA_DIR": str(tmp_path / "data"),
        "RAGD_SOURCES_FOLDER_ROOTS": str(root),
        "HF_HUB_OFFLINE": "1",
    }
    run(env, "collections", "create", "handbook")
    added = json.loads(
        run(
            env,
            *("sources", "add", "handbook", "--type", "folder"),
            *("--location", str(root / "handbook"), "--mapping", '{"patterns": ["*.md"]}'),
            "--json",
        )
    )
    source_id = added["id"]
    assert added["secret"].startswith("whsec_") and added["last_status"] == "never"

    synced = json.loads(run(env, "sources", "sync", source_id, "--json"))
    assert (synced["status"], synced["added"]) == ("ok", 1)
    assert "25 days" in run(env, "search", "how many days of leave", "-c", "handbook")

    listed = json.loads(run(env, "sources", "list", "handbook", "--json"))
    assert [s["id"] for s in listed] == [source_id]
    assert listed[0]["last_items"]["added"] == 1 and "secret" not in listed[0]
    assert source_id in run(env, "sources", "list", "handbook")

    rotated = run(env, "sources", "rotate-secret", source_id)
    assert "whsec_" in rotated and added["secret"] not in rotated

    assert "1 documents" in run(env, "sources", "remove", source_id, "--yes")
    assert json.loads(run(env, "sources", "list", "handbook", "--json")) == []


def test_sources_add_refuses_bad_input(tmp_path: Path) -> None:
    env = {"RAGD_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    run(env, "collections", "create", "c")
    out = run(env, "sources", "add", "c", "--type", "folder", "--location", "/srv", code=1)
    assert "RAGD_SOURCES_FOLDER_ROOTS" in out
    bad = ("sources", "add", "c", "-t", "spreadsheet", "-l", "https://a.example/s.csv")
    assert "JSON" in run(env, *bad, "--mapping", "{nope", code=2)
    assert "not found" in run(env, "sources", "sync", "src_missing", code=1)
