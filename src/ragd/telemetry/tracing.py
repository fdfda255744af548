"""Optional error reporting (Sentry) and tracing (OpenTelemetry).

Both are off unless configured, and then nothing of them is imported or sent: the
imports live inside the functions below. They come from the ``observability`` extra
(``pip install 'ragd[observability]'``); a setting without its package stops start-up
with a message that says so, rather than silently running unobserved.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI

from ragd import __version__
from ragd.config import Settings
from ragd.errors import InvalidInput

log = structlog.get_logger(__name__)

_EXTRA_HINT = "install it with: pip install 'ragd[observability]'"
_NOT_TRACED = "livez,readyz,metrics"
_sentry_on = False


_SENTRY_MODULES = ("sentry_sdk",)
_OTEL_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation.fastapi",
)


def require_installed(settings: Settings) -> None:
    """Raise :class:`InvalidInput` when a configured integration's package is missing."""
    missing = []
    if settings.sentry_dsn is not None and not _importable(_SENTRY_MODULES):
        missing.append("RAGD_SENTRY_DSN is set but sentry-sdk is not installed")
    if settings.otel_endpoint is not None and not _importable(_OTEL_MODULES):
        missing.append("RAGD_OTEL_ENDPOINT is set but the OpenTelemetry SDK is not installed")
    if missing:
        raise InvalidInput("; ".join(missing) + f"; {_EXTRA_HINT}")


def _importable(modules: tuple[str, ...]) -> bool:
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def init_observability(settings: Settings, app: FastAPI) -> Callable[[], None]:
    """Start what is configured; returns the function that flushes it at shutdown."""
    require_installed(settings)
    closers: list[Callable[[], None]] = []
    if settings.sentry_dsn is not None:
        closers.append(_init_sentry(settings))
    if settings.otel_endpoint is not None:
        closers.append(_init_otel(settings, app))

    def close() -> None:
        for closer in closers:
            try:
                closer()
            except Exception as exc:  # never let telemetry break shutdown
                log.warning("observability shutdown failed", error_type=type(exc).__name__)

    return close


def capture_exception(exc: BaseException) -> None:
    """Report an unhandled error to Sentry when it is on (a no-op otherwise)."""
    if _sentry_on:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)


def _init_sentry(settings: Settings) -> Callable[[], None]:
    import sentry_sdk

    global _sentry_on
    assert settings.sentry_dsn is not None
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=f"ragd@{__version__}",
        send_default_pii=False,  # no cookies, user or client addresses
        # Stack frames hold the ASGI scope (Authorization headers) and documents; request
        # bodies hold documents and questions. Neither leaves this machine.
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,  # traces are OpenTelemetry's job
    )
    _sentry_on = True
    log.info("sentry error reporting on")

    def close() -> None:
        global _sentry_on
        _sentry_on = False
        sentry_sdk.flush(timeout=2.0)

    return close


def _init_otel(settings: Settings, app: FastAPI) -> Callable[[], None]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    assert settings.otel_endpoint is not None
    endpoint = settings.otel_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    resource = Resource.create(
        {"service.name": settings.otel_service_name, "service.version": __version__}
    )
    provider = TracerProvider(resource=resource)
    exporter: Any = OTLPSpanExporter(endpoint=endpoint, timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=_NOT_TRACED, exclude_spans=["receive", "send"]
    )
    log.info("opentelemetry tracing on", service=settings.otel_service_name)
    return provider.shutdown
