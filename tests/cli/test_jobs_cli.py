"""``ragd jobs list|show|cancel`` on a real data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragd.cli.app import app
from ragd.config import load_settings
from ragd.domain import NewJob
from ragd.store import open_store

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RAGD_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}


def test_list_show_cancel(env: dict[str, str]) -> None:
    empty = runner.invoke(app, ["jobs", "list", "--json"], env=env)
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.output) == []
    # The jobs of a feature's kind, as its service would queue them.
    store = open_store(load_settings(data_dir=env["RAGD_DATA_DIR"]))
    try:
        store.migrate()
        made = [
            store.submit_job(
                NewJob(
                    kind="export", collection_id=None, params={}, created_by="local", max_attempts=3
                )
            )
            for _ in range(2)
        ]
    finally:
        store.close()

    listed = runner.invoke(app, ["jobs", "list", "--json"], env=env)
    assert [job["id"] for job in json.loads(listed.output)] == [made[1].id, made[0].id]
    table = runner.invoke(app, ["jobs", "list", "--status", "queued"], env=env)
    assert made[0].id in table.output and "export" in table.output

    shown = runner.invoke(app, ["jobs", "show", made[0].id, "--json"], env=env)
    record = json.loads(shown.output)
    assert record["status"] == "queued" and record["done"] == 0 and record["eta"] is None

    cancelled = runner.invoke(app, ["jobs", "cancel", made[0].id], env=env)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    plain = runner.invoke(app, ["jobs", "show", made[0].id], env=env)
    assert "status: cancelled" in plain.output

    for args in (["show", "job_missing"], ["cancel", "job_missing"]):
        missing = runner.invoke(app, ["jobs", *args], env=env)
        assert missing.exit_code == 1 and "not found" in missing.output
    bad = runner.invoke(app, ["jobs", "list", "--status", "sleeping"], env=env)
    assert bad.exit_code == 2
    unknown = runner.invoke(app, ["jobs", "list", "--collection", "nope"], env=env)
    assert unknown.exit_code == 1 and "not found" in unknown.output
