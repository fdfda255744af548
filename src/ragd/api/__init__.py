"""The HTTP API, built by :func:`create_app` from one Settings object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from ragd import __version__
from ragd.api.middleware import RequestContextMiddleware
from ragd.api.problems import install_problem_handlers
from ragd.api.routes import collections, documents, health, search
from ragd.config import Settings
from ragd.container import Container
from ragd.logging_setup import configure_logging
from ragd.schemas import TextDocumentCreate, UrlDocumentCreate

log = structlog.get_logger(__name__)

# Multipart framing and form fields around the file itself.
_BODY_OVERHEAD_BYTES = 1024 * 1024


def create_app(settings: Settings, *, container: Container | None = None) -> FastAPI:
    """A ready-to-serve app. Pass ``container`` to share one (tests, embedded use);
    otherwise the app builds its own on start-up and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        active = container or Container(settings)
        await run_in_threadpool(active.store.migrate)
        active.embedder.start_loading()
        if owned and settings.inprocess_worker:
            active.start_background_worker()
        app.state.container = active
        log.info(
            "ragd started",
            version=__version__,
            database=active.store.dialect,
            embedding_model=settings.embedding_model,
            generator=active.generator.name,
            inprocess_worker=owned and settings.inprocess_worker,
        )
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(active.close)
            log.info("ragd stopped")

    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="ragd",
        version=__version__,
        summary="Self-hosted retrieval-augmented generation: ingest, search, cited answers.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_upload_bytes + _BODY_OVERHEAD_BYTES,
    )
    for module in (health, collections, documents, search):
        app.include_router(module.router)
    _document_schemas_in_openapi(app)
    return app


def _document_schemas_in_openapi(app: FastAPI) -> None:
    """The document upload route reads its body by content type itself, so FastAPI does
    not see its JSON models; add them to the schema so ``$ref``s in the route resolve."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (TextDocumentCreate, UrlDocumentCreate):
                components[model.__name__] = model.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
