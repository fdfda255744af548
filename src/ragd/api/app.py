"""The HTTP API, built by :func:`create_app` from one Settings object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.middleware.gzip import GZipMiddleware

from ragd import __version__
from ragd.api.contract import install_error_responses
from ragd.api.http_metrics import HttpMetricsMiddleware
from ragd.api.middleware import RequestContextMiddleware
from ragd.api.middleware.allow import AllowMiddleware, MethodTable
from ragd.api.openapi import install_openapi
from ragd.api.problems import install_problem_handlers
from ragd.api.ratelimit import install_rate_limits, open_rate_limiter
from ragd.api.routes import (
    audit,
    chat,
    collections,
    documents,
    evaluations,
    health,
    jobs,
    keys,
    metrics,
    openai_compat,
    search,
    sources,
    transfer,
    ui,
)
from ragd.api.routes import mcp as mcp_http
from ragd.api.routes.transfer import IMPORTS_PATH
from ragd.api.security import SecurityHeadersMiddleware, TrustedHostMiddleware, add_cors
from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.services.keys import AuthMode
from ragd.telemetry.logging import configure_logging
from ragd.telemetry.tracing import init_observability

log = structlog.get_logger(__name__)

# Multipart framing and form fields around the file itself.
_BODY_OVERHEAD_BYTES = 1024 * 1024
# Below about a kilobyte gzip saves less than a TCP packet and still costs CPU.
_GZIP_MIN_BYTES = 1024
# Every router of the app, in the order their routes are matched.
_ROUTERS = tuple(
    module.router
    for module in (
        health,
        metrics,
        collections,
        documents,
        sources,
        search,
        chat,
        openai_compat,
        keys,
        audit,
        evaluations,
        jobs,
        transfer,
        mcp_http,
        ui,
    )
)


def create_app(settings: Settings, *, container: Container | None = None) -> FastAPI:
    """A ready-to-serve app. Pass ``container`` to share one (tests, embedded use);
    otherwise the app builds its own on start-up and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        active = container or Container(settings)
        await run_in_threadpool(active.database.migrate)
        await run_in_threadpool(active.audit.signer)  # made on first start; a bad file stops us
        _log_auth_mode(await run_in_threadpool(active.keys.prepare, settings))
        active.embedder.start_loading()
        if owned and settings.inprocess_worker:
            active.start_background_worker()
        app.state.container = active
        limiter = open_rate_limiter(app, settings)
        log.info(
            "ragd started",
            version=__version__,
            database=active.database.dialect,
            embedding_model=settings.embedding_model,
            generator=active.generator.name,
            inprocess_worker=owned and settings.inprocess_worker,
        )
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(active.close_audit)
                await run_in_threadpool(active.close)
            await limiter.close()
            close_observability()
            log.info("ragd stopped")

    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="ragd",
        version=__version__,
        summary="Self-hosted retrieval-augmented generation: ingest, search, cited answers.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    close_observability = init_observability(settings, app)
    # Middleware, innermost first (each add wraps the ones before it):
    # The full Allow of each path: its routes and FastAPI's own pages (/docs...).
    app.add_middleware(
        AllowMiddleware,
        table=MethodTable([*app.routes, *(r for router in _ROUTERS for r in router.routes)]),
    )
    install_rate_limits(app)  # X-RateLimit-* from the verdict of the limiter dependency
    app.add_middleware(TrustedHostMiddleware, allowed=settings.trusted_hosts)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_upload_bytes + _BODY_OVERHEAD_BYTES,
        max_batch_bytes=settings.max_batch_bytes + _BODY_OVERHEAD_BYTES,
        max_concurrent_requests=settings.max_concurrent_requests,
        queue_timeout_s=settings.queue_timeout_ms / 1000,
        body_caps={IMPORTS_PATH: settings.max_import_bytes + _BODY_OVERHEAD_BYTES},
    )
    add_cors(app, settings)  # outside request-context, so its 413/500 stay readable
    # Large JSON (search results, lists) when the client accepts gzip; text/event-stream
    # is excluded by Starlette, so streamed answers are never buffered.
    app.add_middleware(GZipMiddleware, minimum_size=_GZIP_MIN_BYTES, compresslevel=5)
    app.add_middleware(HttpMetricsMiddleware)  # counts every response, 500s included
    app.add_middleware(SecurityHeadersMiddleware)  # on everything, outermost
    for router in _ROUTERS:
        app.include_router(router)
    install_error_responses(app)  # after every router, so routes added later get it too
    install_openapi(app, settings.limits())
    return app


def create_app_from_env() -> FastAPI:
    """The app factory for ``ragd serve --workers N``: each worker process builds its
    own app from the environment (``uvicorn ragd.api.app:create_app_from_env --factory``)."""
    return create_app(load_settings())


def _log_auth_mode(mode: AuthMode) -> None:
    """Say loudly at start when requests are not checked against keys."""
    if mode == "disabled":
        log.warning("authentication is disabled (RAGD_AUTH_DISABLED=true): every client is admin")
    elif mode == "loopback-only":
        log.warning(
            "no API keys exist: serving loopback clients only; create a key with "
            "'ragd keys create --name NAME --scope admin' or set RAGD_ADMIN_KEY"
        )
    else:
        log.info("API keys required for /v1")
