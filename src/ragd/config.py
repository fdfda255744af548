"""One validated settings object, read from ``RAGD_*`` variables and ``.env``.

Built through :func:`load_settings` rather than at import time so that tests, the CLI and
the server each point it where they need; every bad value becomes one readable
:class:`~ragd.errors.InvalidInput` naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragd.errors import InvalidInput

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Everything an operator can configure; the names are the public contract."""

    model_config = SettingsConfigDict(
        env_prefix="RAGD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("./ragd-data"), description="Where the SQLite file lives.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file in data_dir."
    )

    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, description="sentence-transformers model name or path."
    )
    embedding_device: str = "cpu"
    embedding_batch_size: int = Field(64, ge=1, le=4096)

    chunk_max_tokens: int = Field(200, ge=16, le=8192)
    chunk_overlap_tokens: int = Field(32, ge=0, le=1024)

    max_upload_mb: float = Field(50.0, gt=0, le=10_240)
    allow_private_urls: bool = False
    url_timeout_s: float = Field(15.0, gt=0, le=600)

    inprocess_worker: bool = True
    worker_poll_interval_s: float = Field(0.5, gt=0, le=60)
    worker_lease_s: float = Field(300.0, ge=5, le=86_400)
    worker_max_attempts: int = Field(3, ge=1, le=100)
    worker_retry_base_s: float = Field(2.0, ge=0, le=3600)
    worker_claim_batch: int = Field(16, ge=1, le=1000)

    search_top_k: int = Field(10, ge=1, le=100)
    rrf_k: int = Field(60, ge=1, le=10_000)

    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(60.0, gt=0, le=3600)
    llm_max_retries: int = Field(2, ge=0, le=10)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("llm_base_url", "database_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("llm_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_budget(cls, value: int, info: Any) -> int:
        budget = info.data.get("chunk_max_tokens")
        if budget is not None and value >= budget:
            raise ValueError("must be smaller than RAGD_CHUNK_MAX_TOKENS")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``ragd.db`` inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ragd.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus ``overrides``; explain every bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"RAGD_{field.upper()}: {error['msg']}")
        raise InvalidInput("invalid configuration: " + "; ".join(problems)) from None
