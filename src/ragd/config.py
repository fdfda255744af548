"""One validated settings object, read from ``RAGD_*`` variables and ``.env``.

Built through :func:`load_settings` rather than at import time so that tests, the CLI and
the server each point it where they need; every bad value becomes one readable
:class:`~ragd.errors.InvalidInput` naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ragd.auth import KEY_FORMAT_HELP, key_prefix
from ragd.errors import InvalidInput

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

# Loopback and private networks: where a Prometheus server usually scrapes from.
DEFAULT_METRICS_ALLOW = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
# Comma-separated in the environment ("a,b"), not JSON.
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Everything an operator can configure; the names are the public contract."""

    model_config = SettingsConfigDict(
        env_prefix="RAGD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("./ragd-data"), description="Where the SQLite file lives.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file in data_dir."
    )
    # PostgreSQL only: the connection pool per process, and how long to keep retrying
    # a transient failure (connection lost, serialization failure, deadlock).
    database_pool_size: int = Field(5, ge=1, le=1000)
    database_max_overflow: int = Field(10, ge=0, le=1000)
    database_pool_timeout_s: float = Field(10.0, gt=0, le=600)
    database_connect_timeout_s: int = Field(5, ge=1, le=600)
    database_statement_timeout_ms: int = Field(30_000, ge=0, le=86_400_000)
    database_retry_deadline_s: float = Field(5.0, ge=0, le=600)
    # Vector search on PostgreSQL: HNSW candidate list size, and below how many chunks
    # in scope (collections and filters) the search is exact instead of by the index.
    hnsw_ef_search: int = Field(100, ge=1, le=1000)
    vector_exact_below: int = Field(10_000, ge=0, le=10_000_000)

    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, description="sentence-transformers model name or path."
    )
    embedding_device: str = "cpu"
    embedding_base_url: str | None = Field(
        None, description="OpenAI-compatible /embeddings API; unset = the local model."
    )
    embedding_api_key: SecretStr | None = None
    embedding_batch_size: int = Field(64, ge=1, le=4096)

    chunk_max_tokens: int = Field(200, ge=16, le=8192)
    chunk_overlap_tokens: int = Field(32, ge=0, le=1024)
    # Bounds on the work one document may cause: a small file can stand for hours of
    # parsing or millions of chunks, so these bound the output, not just the input.
    max_chunks_per_document: int = Field(
        20_000, ge=1, le=10_000_000, description="More chunks than this fail the document."
    )
    parse_timeout_s: float = Field(
        120.0, gt=0, le=86_400, description="Parsing and chunking one document; then killed."
    )
    parse_max_pages: int = Field(2_000, ge=1, le=1_000_000)
    parse_max_chars: int = Field(20_000_000, ge=1_000, le=1_000_000_000)
    parse_max_memory_mb: int = Field(
        2048, ge=0, le=1_048_576, description="Memory one parse may add, in MB; 0 = no cap."
    )

    max_upload_mb: float = Field(50.0, gt=0, le=10_240)
    allow_private_urls: bool = False
    url_timeout_s: float = Field(15.0, gt=0, le=600)

    inprocess_worker: bool = True
    worker_poll_interval_s: float = Field(0.5, gt=0, le=60)
    worker_lease_s: float = Field(300.0, ge=5, le=86_400)
    worker_max_attempts: int = Field(3, ge=1, le=100)
    worker_retry_base_s: float = Field(2.0, ge=0, le=3600)
    worker_claim_batch: int = Field(64, ge=1, le=1000)
    worker_embed_batch: int = Field(
        256,
        ge=1,
        le=4096,
        description="Texts per embedding call; a worker claims until it has this many.",
    )
    worker_concurrency: int = Field(
        1, ge=1, le=64, description="Worker threads in `ragd worker` (one shared model)."
    )

    search_top_k: int = Field(10, ge=1, le=100)
    # Field limits. The HTTP schema's own bounds are the hard ceiling; these settings can
    # tighten them, and the OpenAPI document shows the configured values.
    max_query_chars: int = Field(1000, ge=1, le=1000)
    max_top_k: int = Field(100, ge=1, le=100)
    max_page_size: int = Field(100, ge=1, le=100)
    max_metadata_bytes: int = Field(16 * 1024, ge=64, le=16 * 1024)
    max_url_chars: int = Field(2000, ge=16, le=2000)
    rrf_k: int = Field(60, ge=1, le=10_000)
    hybrid_fusion: Literal["convex", "rrf"] = "convex"
    hybrid_keyword_weight: float = Field(0.3, ge=0, le=1)
    hybrid_final_keyword_weight: float = Field(0.05, ge=0, le=1)
    hybrid_feedback_docs: int = Field(5, ge=0, le=50)
    hybrid_feedback_weight: float = Field(1.0, ge=0, le=10)

    llm_provider: Literal["openai", "anthropic"] = Field(
        "openai", description="openai: any OpenAI-compatible server; anthropic: Messages API."
    )
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(60.0, gt=0, le=3600)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_history_tokens: int = Field(
        2000, ge=0, le=200_000, description="Chat history sent for follow-up rewrites."
    )

    auth_disabled: bool = Field(
        False, description="Serve every client as admin without keys (trusted networks only)."
    )
    admin_key: SecretStr | None = Field(
        None, description="A bootstrap admin key (rgd_<prefix>_<secret>), upserted on start."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"

    # -- operations: limits, metrics, probes, headers, shutdown, tracing ----------------
    redis_url: str | None = Field(
        None, description="redis:// URL; rate-limit counters are shared through it."
    )
    rate_limit_enabled: bool = True
    rate_limit: str = Field(
        "60/minute;1000/hour", description="Per key (or client address), ';'-separated."
    )
    ingest_rate_limit: str = Field(
        "30/minute;1000/hour", description="Document POSTs, a budget of their own."
    )
    rate_limit_fail_open: bool = Field(
        True, description="Serve requests unlimited while Redis is down (else 503)."
    )
    rate_limit_key_prefix: str = Field(
        "ragd", pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Namespace of Redis keys."
    )
    metrics_allow: CommaList = Field(
        list(DEFAULT_METRICS_ALLOW), description="Addresses/CIDRs that may read /metrics."
    )
    ready_timeout_s: float = Field(2.0, gt=0, le=60)
    cors_origins: CommaList = Field(
        default_factory=list, description="Origins allowed by CORS; none if empty."
    )
    trusted_hosts: CommaList = Field(["*"], description="Host headers served: name, *.domain, *.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies whose X-Forwarded-For/-Proto are believed."
    )
    shutdown_grace_s: int = Field(30, ge=0, le=3600)
    sentry_dsn: SecretStr | None = None
    otel_endpoint: str | None = Field(None, description="OTLP/HTTP collector base URL.")
    otel_service_name: str = "ragd"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "llm_base_url",
        "embedding_base_url",
        "database_url",
        "redis_url",
        "otel_endpoint",
        "sentry_dsn",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_key")
    @classmethod
    def _key_format(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the value: it is a secret even when malformed.
        if value is not None and key_prefix(value.get_secret_value()) is None:
            raise ValueError(KEY_FORMAT_HELP)
        return value

    @field_validator("llm_base_url", "otel_endpoint", "embedding_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("rate_limit", "ingest_rate_limit")
    @classmethod
    def _limits(cls, value: str) -> str:
        try:
            parsed = parse_many(value)
        except ValueError:
            parsed = []
        if not parsed:
            raise ValueError("must look like '60/minute;1000/hour'")
        return value

    @field_validator("metrics_allow", "cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"{item!r} is not an address or CIDR (or *)") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*" and not re.fullmatch(r"https?://[^/\s]+", item):
                raise ValueError(f"{item!r} is not an origin like https://app.example.com")
        return value

    @field_validator("trusted_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"\*|(\*\.)?[A-Za-z0-9.:\[\]-]+", item):
                raise ValueError(f"{item!r} is not a host name, *.domain or *")
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
