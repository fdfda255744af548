"""The last resort: an exception that escaped everything becomes a problem+json 500
carrying the request id; the traceback goes to the log and to error tracking."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from ragd.api.middleware.problem import ResponseWatch, send_problem
from ragd.telemetry.tracing import capture_exception

log = structlog.get_logger("ragd.access")


class ServerErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = ResponseWatch(send)
        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.exception("unhandled error", path=scope.get("path"))
            capture_exception(exc)
            await send_problem(
                watch, scope, 500, "Internal Server Error", "an unexpected error occurred"
            )
