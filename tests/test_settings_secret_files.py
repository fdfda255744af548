"""``RAGD_<NAME>_FILE``: every credential can come from a file (Docker and Kubernetes
secrets), read at start-up; both ways at once, or a file that cannot be read, is a clear
start-up error that names the variable and never repeats the secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from ragd.auth import generate_key
from ragd.config import SECRET_FILE_SETTINGS, Settings, load_settings, secret_file_variables
from ragd.errors import InvalidInput

# A valid value for each credential setting, as a file would hold it.
VALUES = {
    "admin_key": generate_key()[1],
    "llm_api_key": "sk-llm-secret",
    "embedding_api_key": "sk-embedding-secret",
    "database_url": "postgresql+psycopg://ragd:s3cret@db.internal:5432/ragd",
    "redis_url": "redis://:r3dis@redis.internal:6379/0",
    "sentry_dsn": "https://public@sentry.example/1",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray .env, and none of the credentials set by the calling shell."""
    monkeypatch.chdir(tmp_path)
    for name in SECRET_FILE_SETTINGS:
        monkeypatch.delenv(f"RAGD_{name.upper()}", raising=False)
        monkeypatch.delenv(f"RAGD_{name.upper()}_FILE", raising=False)


def plain(settings: Settings, name: str) -> str | None:
    value = getattr(settings, name)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    assert value is None or isinstance(value, str)
    return value


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def test_every_credential_setting_has_a_file_variant() -> None:
    credentials = {
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation) or name in ("database_url", "redis_url")
    }
    assert credentials == set(SECRET_FILE_SETTINGS)
    assert "RAGD_ADMIN_KEY_FILE" in secret_file_variables()


@pytest.mark.parametrize("name", sorted(VALUES))
def test_a_file_is_read_without_its_trailing_newline(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, name, VALUES[name] + "\n")
    monkeypatch.setenv(f"RAGD_{name.upper()}_FILE", str(path))
    assert plain(load_settings(), name) == VALUES[name]


def test_only_one_trailing_newline_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGD_LLM_API_KEY_FILE", str(write(tmp_path, "k", "key\n\n")))
    assert plain(load_settings(), "llm_api_key") == "key\n"
    monkeypatch.setenv("RAGD_LLM_API_KEY_FILE", str(write(tmp_path, "w", "key\r\n")))
    assert plain(load_settings(), "llm_api_key") == "key"
    monkeypatch.setenv("RAGD_LLM_API_KEY_FILE", str(write(tmp_path, "n", "key")))
    assert plain(load_settings(), "llm_api_key") == "key"


def test_a_file_in_dotenv_works_too(tmp_path: Path) -> None:
    path = write(tmp_path, "admin", VALUES["admin_key"] + "\n")
    (tmp_path / ".env").write_text(f"RAGD_ADMIN_KEY_FILE={path}\n", encoding="utf-8")
    assert plain(load_settings(), "admin_key") == VALUES["admin_key"]


def test_value_and_file_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGD_LLM_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("RAGD_LLM_API_KEY_FILE", str(write(tmp_path, "k", "sk-from-a-file")))
    with pytest.raises(InvalidInput) as caught:
        load_settings()
    message = caught.value.detail
    assert "RAGD_LLM_API_KEY and RAGD_LLM_API_KEY_FILE are both set" in message
    assert "sk-from" not in message


def test_the_value_in_dotenv_and_the_file_in_the_environment_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("RAGD_REDIS_URL=redis://localhost:6379/0\n")
    monkeypatch.setenv("RAGD_REDIS_URL_FILE", str(write(tmp_path, "r", VALUES["redis_url"])))
    with pytest.raises(InvalidInput, match="RAGD_REDIS_URL and RAGD_REDIS_URL_FILE"):
        load_settings()


def test_a_blank_value_does_not_count_as_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose.yaml blanks the value that .env may carry, so only the file reaches ragd."""
    monkeypatch.setenv("RAGD_ADMIN_KEY", "")
    monkeypatch.setenv("RAGD_ADMIN_KEY_FILE", str(write(tmp_path, "a", VALUES["admin_key"])))
    assert plain(load_settings(), "admin_key") == VALUES["admin_key"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "no-such-file", r"cannot read .*no-such-file \(No such file or directory\)"),
        (lambda d: d, r"cannot read .* \(Is a directory\)"),
        (lambda d: write(d, "empty", "\n"), ".*empty is empty"),
        (lambda d: write(d, "huge", "x" * 70_000), ".* a secret file holds one value"),
    ],
    ids=["missing", "directory", "empty", "too-large"],
)
def test_an_unreadable_file_is_a_start_up_error(
    make: object, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert callable(make)
    monkeypatch.setenv("RAGD_SENTRY_DSN_FILE", str(make(tmp_path)))
    with pytest.raises(InvalidInput, match=f"RAGD_SENTRY_DSN_FILE: {reason}"):
        load_settings()


def test_a_non_utf8_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "binary"
    path.write_bytes(b"\xff\xfe\x00secret")
    monkeypatch.setenv("RAGD_EMBEDDING_API_KEY_FILE", str(path))
    with pytest.raises(InvalidInput, match=r"RAGD_EMBEDDING_API_KEY_FILE: .* is not UTF-8"):
        load_settings()


def test_a_malformed_secret_from_a_file_is_refused_without_repeating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGD_ADMIN_KEY_FILE", str(write(tmp_path, "bad", "not-a-key-42\n")))
    with pytest.raises(InvalidInput, match=r"RAGD_ADMIN_KEY: .*rgd_<prefix>_<secret>") as caught:
        load_settings()
    assert "not-a-key-42" not in caught.value.detail


def test_database_password_is_put_into_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password of postgres' own POSTGRES_PASSWORD_FILE, used as it is: characters
    that a URL would need escaped are escaped by ragd."""
    monkeypatch.setenv("RAGD_DATABASE_URL", "postgresql+psycopg://ragd@postgres:5432/ragd")
    monkeypatch.setenv("RAGD_DATABASE_PASSWORD_FILE", str(write(tmp_path, "pg", "p@ss:w/rd#1\n")))
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://ragd@postgres:5432/ragd"
    assert settings.resolved_database_url == (
        "postgresql+psycopg://ragd:p%40ss%3Aw%2Frd%231@postgres:5432/ragd"
    )
    assert "p@ss" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "needs a PostgreSQL RAGD_DATABASE_URL"),
        ("sqlite:///x.db", "needs a PostgreSQL RAGD_DATABASE_URL"),
        ("postgresql+psycopg://ragd:other@db/ragd", "already has a password"),
    ],
)
def test_database_password_needs_a_url_without_one(url: str | None, message: str) -> None:
    overrides = {"database_password": "pw"} | ({"database_url": url} if url else {})
    with pytest.raises(InvalidInput, match=f"RAGD_DATABASE_PASSWORD: .*{message}"):
        load_settings(**overrides)


def test_the_server_refuses_to_start_with_a_missing_secret_file(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RAGD_DATA_DIR": str(tmp_path),
        "RAGD_ADMIN_KEY_FILE": str(tmp_path / "missing"),
    }
    env.pop("RAGD_ADMIN_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "ragd", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "RAGD_ADMIN_KEY_FILE: cannot read" in result.stderr
    assert "Traceback" not in result.stderr
