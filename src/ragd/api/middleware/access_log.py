"""One access line per request, with the status whoever answered it (the app, or a
refusal by the middleware inside this one) and the route template."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from ragd.api.middleware.problem import ResponseWatch

log = structlog.get_logger("ragd.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        watch = ResponseWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                route=getattr(route, "path", None),
                status=watch.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=(scope.get("client") or ("-",))[0],
            )
