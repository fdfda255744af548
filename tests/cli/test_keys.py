"""``ragd keys create/list/revoke`` on a real data directory, no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragd.auth import key_prefix
from ragd.cli.app import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RAGD_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_create_prints_the_key_once_and_list_shows_only_the_prefix(env: dict[str, str]) -> None:
    out = run(env, "keys", "create", "--name", "laptop", "--scope", "admin")
    secret = out.strip().splitlines()[-1]
    prefix = key_prefix(secret)
    assert prefix is not None and "shown only now" in out

    listed = json.loads(run(env, "keys", "list", "--json"))
    assert [(k["name"], k["prefix"], k["scope"]) for k in listed] == [("laptop", prefix, "admin")]
    assert listed[0]["collections"] is None and listed[0]["revoked_at"] is None
    table = run(env, "keys", "list")
    assert prefix in table
    assert secret.split("_", 2)[2] not in table + json.dumps(listed)


def test_create_limited_key_then_revoke(env: dict[str, str]) -> None:
    run(env, "collections", "create", "notes")
    [notes] = json.loads(run(env, "collections", "list", "--json"))
    created = json.loads(
        run(env, "keys", "create", "-n", "ci", "-s", "read", "-c", "notes", "--json")
    )
    assert created["collections"] == [notes["id"]]  # a name becomes the id
    assert created["key"].startswith(f"rgd_{created['prefix']}_")

    assert "revoked key" in run(env, "keys", "revoke", created["id"])
    [listed] = json.loads(run(env, "keys", "list", "--json"))
    assert listed["revoked_at"] is not None
    assert "not found" in run(env, "keys", "revoke", "key_missing", code=1)


def test_create_refuses_bad_scope_and_unknown_collections(env: dict[str, str]) -> None:
    assert "--scope must be one of" in run(
        env, "keys", "create", "--name", "x", "--scope", "root", code=2
    )
    assert "does not exist" in run(
        env, "keys", "create", "--name", "x", "--scope", "read", "-c", "nope", code=1
    )
    assert json.loads(run(env, "keys", "list", "--json")) == []
