"""The operations settings: defaults, comma lists from the environment, clear errors."""

from __future__ import annotations

import pytest

from ragd.config import DEFAULT_METRICS_ALLOW, load_settings
from ragd.errors import InvalidInput


def test_defaults() -> None:
    settings = load_settings()
    assert settings.rate_limit_enabled is True
    assert settings.rate_limit == "60/minute;1000/hour"
    assert settings.rate_limit_fail_open is True
    # Bulk work fits: a 5,000-file folder is 50 batches of 100 (RAGD_MAX_BATCH_DOCUMENTS),
    # under a minute of the request budget and under three of the documents budget.
    assert settings.ingest_rate_limit == "60/minute;1000/hour"
    assert settings.ingest_documents_rate_limit == "2000/minute;20000/hour"
    assert settings.max_batch_documents == 100 and settings.max_batch_mb == 100
    assert settings.rate_limit_admin is False
    assert settings.redis_url is None
    assert settings.cors_origins == []
    assert settings.trusted_hosts == ["*"]
    assert settings.metrics_allow == list(DEFAULT_METRICS_ALLOW)
    assert settings.sentry_dsn is None and settings.otel_endpoint is None
    assert settings.shutdown_grace_s == 30


def test_comma_lists_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGD_CORS_ORIGINS", "https://a.example, http://b.example:8080")
    monkeypatch.setenv("RAGD_TRUSTED_HOSTS", "api.example.com,*.internal")
    monkeypatch.setenv("RAGD_METRICS_ALLOW", "10.1.0.0/16, ::1")
    monkeypatch.setenv("RAGD_REDIS_URL", "  ")
    settings = load_settings()
    assert settings.cors_origins == ["https://a.example", "http://b.example:8080"]
    assert settings.trusted_hosts == ["api.example.com", "*.internal"]
    assert settings.metrics_allow == ["10.1.0.0/16", "::1"]
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rate_limit", "lots", "RAGD_RATE_LIMIT"),
        ("ingest_rate_limit", "5 a minute", "RAGD_INGEST_RATE_LIMIT"),
        ("ingest_documents_rate_limit", "many", "RAGD_INGEST_DOCUMENTS_RATE_LIMIT"),
        ("max_batch_documents", "0", "RAGD_MAX_BATCH_DOCUMENTS"),
        ("max_batch_documents", "1001", "RAGD_MAX_BATCH_DOCUMENTS"),
        ("max_batch_mb", "0", "RAGD_MAX_BATCH_MB"),
        ("redis_url", "http://cache:6379", "RAGD_REDIS_URL"),
        ("metrics_allow", "prometheus.local", "RAGD_METRICS_ALLOW"),
        ("cors_origins", "app.example.com", "RAGD_CORS_ORIGINS"),
        ("trusted_hosts", "bad host", "RAGD_TRUSTED_HOSTS"),
        ("otel_endpoint", "collector:4318", "RAGD_OTEL_ENDPOINT"),
        ("shutdown_grace_s", "-1", "RAGD_SHUTDOWN_GRACE_S"),
        ("rate_limit_key_prefix", "has space", "RAGD_RATE_LIMIT_KEY_PREFIX"),
    ],
)
def test_bad_values_name_the_variable(field: str, value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        load_settings(**{field: value})
    assert message in raised.value.detail


def test_a_redis_password_is_not_echoed() -> None:
    with pytest.raises(InvalidInput) as raised:
        load_settings(redis_url="http://user:hunter2@cache:6379")
    assert "hunter2" not in raised.value.detail
