"""One validated settings object, read from ``RAGD_*`` variables and ``.env``.

Built through :func:`load_settings` rather than at import time so that tests, the CLI and
the server each point it where they need; every bad value becomes one readable
:class:`~ragd.errors.InvalidInput` naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ragd.auth import KEY_FORMAT_HELP, key_prefix
from ragd.errors import InvalidInput
from ragd.limits import CEILINGS, Limits

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

# Settings that hold a credential, and may instead be read from a file named by
# RAGD_<NAME>_FILE (Docker and Kubernetes secrets are files: a value in the environment
# shows up in `docker inspect`, /proc/<pid>/environ and every child process).
SECRET_FILE_SETTINGS = (
    "admin_key",
    "llm_api_key",
    "embedding_api_key",
    "database_url",
    "database_password",
    "redis_url",
    "sentry_dsn",
)
FILE_SUFFIX = "_FILE"
# A secret is a line, not a document: refuse to read a file that is plainly not one.
_MAX_SECRET_FILE_BYTES = 64 * 1024


def secret_file_variables() -> list[str]:
    """The ``RAGD_*_FILE`` names ragd reads, for documentation and deployment checks."""
    return [f"RAGD_{name.upper()}{FILE_SUFFIX}" for name in SECRET_FILE_SETTINGS]


def read_secret_file(variable: str, path: str) -> str:
    """The secret in ``path`` without one trailing newline (``echo`` and most editors
    add one); anything unreadable is a start-up error naming the variable."""
    where = Path(path)
    try:
        size = where.stat().st_size
        if size > _MAX_SECRET_FILE_BYTES:
            raise InvalidInput(
                f"invalid configuration: {variable}: {path} is {size} bytes; a secret file "
                f"holds one value (at most {_MAX_SECRET_FILE_BYTES} bytes)"
            )
        content = where.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidInput(
            f"invalid configuration: {variable}: cannot read {path} ({reason})"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"invalid configuration: {variable}: {path} is not UTF-8 text") from None
    value = content.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise InvalidInput(f"invalid configuration: {variable}: {path} is empty")
    return value


class SecretFileSource(PydanticBaseSettingsSource):
    """``RAGD_<NAME>_FILE`` for every credential in :data:`SECRET_FILE_SETTINGS`, from
    the environment or ``.env`` (the environment wins, as for every setting). Setting a
    value both ways is refused rather than one silently winning."""

    def __init__(self, settings_cls: type[BaseSettings], *sources: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.sources = sources  # highest priority first

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads all fields at once

    def _lookup(self, key: str) -> str | None:
        for source in self.sources:
            value = source.env_vars.get(key)
            if value is not None and value.strip():
                return value
        return None

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in SECRET_FILE_SETTINGS:
            variable = f"RAGD_{name.upper()}"
            path = self._lookup(f"ragd_{name}_file")
            if path is None:
                continue
            if self._lookup(f"ragd_{name}") is not None:
                raise InvalidInput(
                    f"invalid configuration: {variable} and {variable}{FILE_SUFFIX} are both "
                    "set; set only one"
                )
            found[name] = read_secret_file(variable + FILE_SUFFIX, path)
        return found


class Settings(BaseSettings):
    """Everything an operator can configure; the names are the public contract."""

    model_config = SettingsConfigDict(
        env_prefix="RAGD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("./ragd-data"), description="Where the SQLite file lives.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file in data_dir."
    )
    database_password: SecretStr | None = Field(
        None, description="Password for the URL's user, when the URL carries none (no escaping)."
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
    # Parallel workers a search statement may start (PostgreSQL's
    # max_parallel_workers_per_gather, set per statement); -1 keeps the server's.
    search_parallel_workers: int = Field(
        0,
        ge=-1,
        le=64,
        description="PostgreSQL: parallel workers per search statement; -1: the server's "
        "setting. 0 because starting workers cost ~7 ms per vector search (docs/scaling.md).",
    )
    # Keyword search on PostgreSQL: a tantivy index beside the database gives the BM25
    # statement its candidates (``pip install 'ragd[keyword-index]'``); see docs/scaling.md.
    keyword_index: Literal["off", "tantivy"] = Field(
        "off", description="PostgreSQL: `tantivy` keeps a keyword index for fast BM25."
    )
    keyword_index_dir: Path | None = Field(
        None, description="Where this host's keyword index lives; default data_dir/keyword-index."
    )
    keyword_index_interval_s: float = Field(1.0, ge=0, le=3600)
    keyword_candidates: int = Field(100, ge=10, le=100_000)
    keyword_exact_below: int = Field(10_000, ge=0, le=10_000_000)
    keyword_log_retention_s: float = Field(
        7 * 86_400,
        ge=60,
        le=366 * 86_400,
        description="An indexer silent this long no longer holds back keyword_log pruning; "
        "its index is rebuilt when it returns.",
    )

    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, description="sentence-transformers model name or path."
    )
    embedding_device: str = "cpu"
    embedding_base_url: str | None = Field(
        None, description="OpenAI-compatible /embeddings API; unset = the local model."
    )
    embedding_api_key: SecretStr | None = None
    embedding_batch_size: int = Field(64, ge=1, le=4096)
    embedding_backend: Literal["torch", "onnx"] = Field(
        "onnx", description="Local model runner: onnx (ONNX Runtime, faster) or torch."
    )
    embedding_threads: int = Field(
        0, ge=0, le=256, description="CPU threads per local model call; 0 = the runtime's default."
    )
    embedding_onnx_dir: Path | None = Field(
        None,
        description="Where the local model's ONNX export is kept; default ~/.cache/ragd/onnx "
        "($XDG_CACHE_HOME).",
    )
    query_cache_size: int = Field(
        1024, ge=0, le=1_000_000, description="Query embeddings kept per process; 0 = no cache."
    )

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
    parse_max_cells: int = Field(
        200_000,
        ge=1,
        le=1_000_000_000,
        description="Spreadsheet or CSV cells read, empty ones too.",
    )
    # ZIP containers (DOCX, PPTX, XLSX, EPUB), checked from the central directory before
    # anything is extracted, at upload and again in the worker.
    zip_max_members: int = Field(10_000, ge=1, le=10_000_000)
    zip_max_uncompressed_mb: float = Field(512.0, gt=0, le=1_048_576)
    zip_max_ratio: float = Field(
        100.0, ge=1, le=100_000, description="Per member over 1 MiB: inflated / compressed size."
    )

    max_upload_mb: float = Field(50.0, gt=0, le=10_240)
    max_import_mb: float = Field(
        2048.0, gt=0, le=1_048_576, description="Cap on an archive sent to POST /v1/imports."
    )
    export_retention_h: float = Field(
        24.0,
        gt=0,
        le=8760,
        description="How long an export job's archive stays downloadable (and a staged "
        "import waits) before it is deleted.",
    )
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

    # Synced sources (URL lists, sitemaps, spreadsheets, folders; see the README).
    sources_folder_roots: CommaList = Field(
        default_factory=list,
        description="Folders under which folder sources may live; empty = folder sources off.",
    )
    sources_max_items: int = Field(
        10_000, ge=1, le=1_000_000, description="Items (pages, rows, files) one source may list."
    )
    sources_min_interval_s: int = Field(
        60, ge=1, le=86_400, description="The shortest schedule interval a source may ask for."
    )
    sources_poll_s: float = Field(
        5.0, gt=0, le=3600, description="How often workers look for sources due to sync."
    )
    webhook_tolerance_s: int = Field(
        300, ge=10, le=3600, description="How far a webhook's timestamp may be from now."
    )

    search_top_k: int = Field(10, ge=1, le=100)
    # Field limits (ragd.limits): the ceilings are Limits' defaults; these settings can
    # tighten them, and the OpenAPI document shows the configured values.
    max_query_chars: int = Field(CEILINGS.query_chars, ge=1, le=CEILINGS.query_chars)
    max_top_k: int = Field(CEILINGS.top_k, ge=1, le=CEILINGS.top_k)
    max_page_size: int = Field(CEILINGS.page_size, ge=1, le=CEILINGS.page_size)
    max_metadata_bytes: int = Field(CEILINGS.metadata_bytes, ge=64, le=CEILINGS.metadata_bytes)
    max_url_chars: int = Field(CEILINGS.url_chars, ge=16, le=CEILINGS.url_chars)
    max_filter_keys: int = Field(CEILINGS.filter_keys, ge=1, le=CEILINGS.filter_keys)
    max_filter_key_chars: int = Field(CEILINGS.filter_key_chars, ge=1, le=CEILINGS.filter_key_chars)
    max_batch_documents: int = Field(
        100,
        ge=1,
        le=CEILINGS.batch_documents,
        description="Documents in one documents:batch request.",
    )
    max_batch_mb: float = Field(
        100.0, gt=0, le=10_240, description="Body of one documents:batch request, in MB."
    )
    rrf_k: int = Field(60, ge=1, le=10_000)
    hybrid_fusion: Literal["adaptive", "convex", "rrf"] = "adaptive"
    hybrid_keyword_weight: float = Field(0.3, ge=0, le=1)
    hybrid_final_keyword_weight: float = Field(0.05, ge=0, le=1)
    hybrid_feedback_docs: int = Field(5, ge=0, le=50)
    hybrid_feedback_weight: float = Field(1.0, ge=0, le=10)
    hybrid_feedback_leg: Literal["search", "rescore"] = Field(
        "search",
        description="search: the fed-back vector searches again; rescore: it re-scores "
        "the first pass's candidates (one vector search fewer).",
    )

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
    auth_cache_ttl_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="How long a process trusts a key it has checked (and whether any key "
        "exists) before asking the database again; bounds how late a revocation made by "
        "another process takes effect. 0: ask on every request.",
    )

    audit_signing_key_file: Path | None = Field(
        None,
        description="Ed25519 PEM key signing audit checkpoints and exports; default: "
        "generated in data_dir.",
    )
    audit_public_key_files: CommaList = Field(
        [],
        description="More public keys (PEM files, comma-separated) whose checkpoints "
        "verification accepts beside the signing key's own: the keys before a rotation.",
    )
    audit_checkpoint_every: int = Field(
        1000,
        ge=1,
        le=10_000_000,
        description="Sign a checkpoint of the audit chain every this many events (and on "
        "shutdown).",
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
        "60/minute;1000/hour",
        description="Document POSTs (single or batch), a request budget of their own.",
    )
    ingest_documents_rate_limit: str = Field(
        "2000/minute;20000/hour",
        description="Documents added per key (or address): a batch spends one per item.",
    )
    rate_limit_admin: bool = Field(
        False, description="Also limit admin keys and the keyless loopback mode."
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
    # 64: on 2 cores a search costs ~30 ms of CPU, so 64 at once is already ~1 s of work
    # queued in the process; more only adds latency. Streamed answers mostly wait on the
    # LLM, and 64 leaves room for many of them. Per process: --workers N admits N times it.
    max_concurrent_requests: int = Field(
        64, ge=1, le=100_000, description="Requests served at once per process; more wait."
    )
    queue_timeout_ms: int = Field(
        2000, ge=0, le=600_000, description="How long a request waits for a slot before a 503."
    )
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then ``RAGD_*_FILE`` secrets, then the environment and ``.env``."""
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, EnvSettingsSource)
        files = SecretFileSource(settings_cls, env_settings, dotenv_settings)
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings

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

    @field_validator("admin_key", "database_password", mode="before")
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

    @field_validator("rate_limit", "ingest_rate_limit", "ingest_documents_rate_limit")
    @classmethod
    def _limits(cls, value: str) -> str:
        try:
            parsed = parse_many(value)
        except ValueError:
            parsed = []
        if not parsed:
            raise ValueError("must look like '60/minute;1000/hour'")
        return value

    @field_validator(
        "metrics_allow",
        "cors_origins",
        "trusted_hosts",
        "sources_folder_roots",
        "audit_public_key_files",
        mode="before",
    )
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

    @field_validator("sources_folder_roots")
    @classmethod
    def _absolute_roots(cls, value: list[str]) -> list[str]:
        for item in value:
            if not Path(item).is_absolute():
                raise ValueError(f"{item!r} is not an absolute path")
        return value

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_budget(cls, value: int, info: Any) -> int:
        budget = info.data.get("chunk_max_tokens")
        if budget is not None and value >= budget:
            raise ValueError("must be smaller than RAGD_CHUNK_MAX_TOKENS")
        return value

    def limits(self) -> Limits:
        """The input bounds these settings put in force (the ceilings, tightened by the
        ``RAGD_MAX_*`` settings), for the services and the OpenAPI document."""
        return Limits(
            query_chars=self.max_query_chars,
            top_k=self.max_top_k,
            page_size=self.max_page_size,
            metadata_bytes=self.max_metadata_bytes,
            url_chars=self.max_url_chars,
            filter_keys=self.max_filter_keys,
            filter_key_chars=self.max_filter_key_chars,
            batch_documents=self.max_batch_documents,
        )

    @field_validator("database_password")
    @classmethod
    def _password_needs_a_server_url(cls, value: SecretStr | None, info: Any) -> SecretStr | None:
        if value is None:
            return value
        raw = info.data.get("database_url")
        try:
            url = make_url(raw) if raw else None
        except ArgumentError:
            url = None
        if url is None or url.get_backend_name() == "sqlite":
            raise ValueError("needs a PostgreSQL RAGD_DATABASE_URL to go with it")
        if url.password is not None:
            raise ValueError("RAGD_DATABASE_URL already has a password; leave it out of the URL")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``ragd.db`` inside the data directory, with
        ``database_password`` filled in (unescaped: SQLAlchemy quotes it)."""
        if self.database_url:
            if self.database_password is None:
                return self.database_url
            url = make_url(self.database_url).set(
                password=self.database_password.get_secret_value()
            )
            return url.render_as_string(hide_password=False)
        return f"sqlite:///{(self.data_dir / 'ragd.db').resolve()}"

    @property
    def resolved_embedding_onnx_dir(self) -> Path:
        """A cache shared by every data directory of this user: the export depends only
        on the model's weights (its folder name says which), not on any one database."""
        if self.embedding_onnx_dir:
            return self.embedding_onnx_dir
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "ragd" / "onnx"

    @property
    def resolved_keyword_index_dir(self) -> Path:
        return self.keyword_index_dir or self.data_dir / "keyword-index"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_import_bytes(self) -> int:
        return int(self.max_import_mb * 1024 * 1024)

    @property
    def max_batch_bytes(self) -> int:
        return int(self.max_batch_mb * 1024 * 1024)


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
